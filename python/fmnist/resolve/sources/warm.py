"""fmnist's warm cache: its decompressed copies under its data root, mapped (the only files that
are). A stamp maps a file without hashing it while the file is unchanged and stamped with a digest
the registry accepts today (``Store.stamped``), unless the policy audits. Any other regular file at
a cache name is hashed against what the registry accepts: one it accepts is adopted (stamped again:
the records may have been lost), any other is replaced by the next verified copy (``resolve``
writes every array it did not get from here), never silently kept. A file linked from elsewhere is
never mapped; one changed while it was hashed is not either."""

from __future__ import annotations

import stat
from collections.abc import Sequence

from ...datasets import FileInfo
from ..judge import Read, accepted, hash_file, refused, report
from ..results import Copy, Proof, Report, Source, reason
from ..store import identity, lstat
from . import Known
from . import Source as Base

STAMPED = "fmnist's own cache file, unchanged since it was verified (stamp: inode, size, mtime, ctime)"


def cacheable(info: FileInfo) -> bool:
    """Files of one-byte elements map as the native arrays loads return (others are big-endian)."""
    return info.dtype in ("uint8", "int8")


class WarmCache(Base):
    def __init__(self, known: Known) -> None:
        self.folder = known.store.folder

    def looked_in(self) -> list[str]:
        return [f"{self.folder} (fmnist warm cache)"]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        st = lstat(known.store.path(info))
        ok = cacheable(info) and st is not None and stat.S_ISREG(st.st_mode)  # anything else is left alone
        return [Copy(known.store.path(info), Source.WARM_CACHE, decompressed=True)] if ok else []

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        reads = [(i, c, self._read(i, c, known)) for i, c in heads]
        return sum((report(i, c, r, mapped=r.proof is not None) for i, c, r in reads), Report())

    def _read(self, info: FileInfo, copy: Copy, known: Known) -> Read:
        store, proofs = known.store, known.proven(info)
        try:
            stamped = store.stamped(info, accepted(info, proofs))
            if stamped and known.policy.audit is None:
                return Read(store.map(info), STAMPED, Proof.STAMP, stamped)
            before = lstat(copy.path)
            if before is None or before.st_nlink != 1:
                return refused("linked from elsewhere: not fmnist's to map")
            hashed = hash_file(copy.path, info, proofs)
            if hashed.proof is None:
                return hashed
            array, after = store.map(info), lstat(copy.path)
            if after is None or identity(after) != identity(before):
                return refused("changed while it was checked")
        except (OSError, ValueError) as e:
            return refused(f"unreadable: {reason(e)}", e)
        return Read(array, f"fmnist's own cache file, hashed now: {hashed.message}", hashed.proof, hashed.sha)
