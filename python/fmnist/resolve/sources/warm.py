"""fmnist's warm cache: its decompressed copies under its data root, mapped (the only files that
are). A stamp maps a file without hashing it while the file is unchanged and stamped with a digest
the registry accepts today (``Store.stamped``), unless the policy audits. Any other regular file at
a cache name is hashed against what the registry accepts: one it accepts is adopted (``resolve``
stamps it again: the records may have been lost), any other is replaced by the next verified copy
(``resolve`` caches every array it did not get here), never silently kept. A file linked from
elsewhere, or changed while it was hashed, is not mapped."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import replace

from ...datasets import FileInfo
from ..judge import accepted, hash_file
from ..results import Copy, Judgment, Proof, Source, judged, reason
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
        st = lstat(known.store.path(info))  # anything but a regular file there is left alone
        return (
            [Copy(known.store.path(info), Source.WARM_CACHE, True)]
            if cacheable(info) and st and stat.S_ISREG(st.st_mode)
            else []
        )

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        return [self._one(info, copy, known) for info, copy in heads]

    def _one(self, info: FileInfo, copy: Copy, known: Known) -> Judgment:
        store, proofs = known.store, known.proofs.get(info.name, {})
        try:
            stamped = store.stamped(info, accepted(info, proofs))
            if stamped and known.policy.audit is None:
                return judged(info, copy, STAMPED, Proof.STAMP, mapped=True, array=store.map(info), sha=stamped)
            before = lstat(copy.path)
            if before is None or before.st_nlink != 1:
                return judged(info, copy, "linked from elsewhere: not fmnist's to map")
            hashed = hash_file(info, copy, proofs)
            if not hashed.ok:
                return hashed
            array, after = store.map(info), lstat(copy.path)
            if after is None or identity(after) != identity(before):
                return judged(info, copy, "changed while it was checked")
        except (OSError, ValueError) as e:
            return judged(info, copy, f"unreadable: {reason(e)}", error=e)
        return replace(
            hashed, message=f"fmnist's own cache file, hashed now: {hashed.message}", mapped=True, array=array
        )
