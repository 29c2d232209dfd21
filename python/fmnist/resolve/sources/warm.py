"""fmnist's warm cache: its decompressed copies under its data root, mapped (the only files that
are). A stamp maps a file without hashing it while the file is unchanged and stamped with a digest
the registry accepts today (``Store.stamped``), unless the policy audits. Any other regular file at
a cache name is read and judged by the content digests the registry accepts: one accepted is
adopted (``resolve`` stamps it again: the records may have been lost; the array returned is the
very bytes hashed), any other is replaced by the next verified copy (``resolve`` caches every array
it did not get here), never silently kept. A file linked from elsewhere is not fmnist's to map."""

from __future__ import annotations

import stat
from collections.abc import Sequence

from ...datasets import FileInfo
from ..judge import accepted, read_files
from ..results import Copy, Judgment, Proof, Source, judged, moved, reason
from ..store import lstat
from . import Known
from . import Source as Base

STAMPED = "fmnist's own cache file, unchanged since it was verified (stamp: inode, size, mtime, ctime)"


def cacheable(info: FileInfo) -> bool:
    """Files of one-byte elements map as the native arrays loads return (others are big-endian)."""
    return info.dtype in ("uint8", "int8")


class WarmCache(Base):
    def __init__(self, known: Known) -> None:
        self.places = [f"{known.store.folder} (fmnist warm cache)"]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        if not cacheable(info):
            return []
        path = known.store.path(info)
        st = lstat(path)  # anything but a regular file there is left alone
        return [Copy(path, Source.WARM_CACHE, True)] if st is not None and stat.S_ISREG(st.st_mode) else []

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        out: list[Judgment | None] = [self._stamped(info, copy, known) for info, copy in heads]
        todo = [k for k, j in enumerate(out) if j is None]
        read = iter(read_files([heads[k] for k in todo], known.proofs))
        for k in todo:
            j = next(read)
            out[k] = moved(j, heads[k][1], "fmnist's own cache file, hashed now: ") if j.ok else j
        return [j for j in out if j is not None]

    def _stamped(self, info: FileInfo, copy: Copy, known: Known) -> Judgment | None:
        """The mapped cache file, when its stamp proves it; a refusal when it is linked from
        elsewhere; else None (to read and judge)."""
        st, store = lstat(copy.path), known.store
        if st is None or st.st_nlink != 1:
            return judged(info, copy, "linked from elsewhere: not fmnist's to map")
        stamped = store.stamped(info, accepted(info, known.proofs.get(info.name, {})), st)
        if not stamped or known.policy.audit is not None:
            return None
        try:
            return judged(info, copy, STAMPED, Proof.STAMP, mapped=True, array=store.map(info), sha=stamped)
        except (OSError, ValueError) as e:
            return judged(info, copy, f"unreadable: {reason(e)}", error=e)
