"""The published files from the mirrors, downloaded into fmnist's folder of the dataset (of its
archive), or for ``fmnist.torch`` into torchvision's raw folder, under fmnist's lock. A final path
holding a file fmnist did not write (``Store.owns``) is never replaced; in torchvision's folder
nothing is ever replaced (another process or loader that put a file there first wins)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from ... import _core
from ...datasets import FileInfo
from ..fetch import fetch
from ..judge import read_archive, read_files, whole
from ..results import Copy, Judgment, Proof, Source, judged, moved, reason
from ..store import Store
from . import Known, regular
from . import Source as Base

log = logging.getLogger("fmnist")


def size_limit(info: FileInfo) -> int:
    """The most bytes a mirror may send: the published size, with room for a recompression (1/8 more,
    and 64 KiB), else what any gzip or xz of the content could need."""
    if info.stored_size:
        return info.stored_size + info.stored_size // 8 + (1 << 16)
    return int(_core.max_compressed_size(info.dtype, list(info.shape)))


class Mirrors(Base):
    def __init__(self, known: Known, urls: Sequence[str]) -> None:
        ds, tv = known.dataset, known.policy.torchvision
        self.urls = list(urls)
        self.places = [f"{u} (mirror)" for u in self.urls]
        self.store = Store(known.root / ds.archive.name) if ds.archive is not None else known.store
        self.folder = tv.raw if tv is not None and tv.place and ds.archive is None else self.store.folder

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        a = known.dataset.archive
        return [Copy(self.folder / (a.file if a is not None else info.name), Source.DOWNLOAD)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        out: list[Judgment] = []
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.lock())
            except OSError as e:  # fmnist's root cannot be written
                if self.folder == self.store.folder:
                    return self._failed(heads, e)
                # fmnist.torch downloading into torchvision's folder, where no lock of fmnist's may go:
                # downloads still land whole, and never over another's file.
                log.warning("%s: downloading without fmnist's lock (%s)", known.dataset.name, e)
            a = known.dataset.archive
            if a is not None:  # one download for every dataset in the archive: [archive, *members]
                infos, copy = [i for i, _ in heads], heads[0][1]
                got = self._one(
                    whole(a),
                    copy.path,
                    known,
                    lambda p: read_archive(Copy(p, Source.DOWNLOAD), a, infos, known.proofs),
                    a.max_size,
                )
                if isinstance(got, OSError):
                    return self._failed(heads, got)
                return (
                    [moved(m, Copy(got[0].path, Source.DOWNLOAD)) for m in got[1:]]
                    if got[0].ok
                    else [moved(got[0], copy, info=i) for i in infos]
                )
            for k, (info, copy) in enumerate(heads):
                check = lambda p, i=info: read_files([(i, Copy(p, Source.DOWNLOAD))], known.proofs)  # noqa: E731
                got = self._one(info, copy.path, known, check, size_limit(info))
                if isinstance(got, OSError):
                    return out + self._failed(heads[k:], got)
                out += got
        return out

    def _one(
        self, info: FileInfo, final: Path, known: Known, check: Callable[[Path], list[Judgment]], limit: int
    ) -> list[Judgment] | OSError:
        """One file's judgments (``check``'s, the first deciding): what is at the final path if it
        verifies (another process finished it while this one waited for the lock), else downloaded,
        replacing only a file of fmnist's own."""
        copy, p = Copy(final, Source.DOWNLOAD), known.policy
        mine = self.folder == self.store.folder and self.store.owns(final, "downloads", final.name)
        if regular(final) or final.is_symlink():
            got = check(final)
            if got[0].ok:
                return [moved(j, copy, "found after waiting for the lock: ") for j in got]
            if not mine:
                why = (
                    f"a file fmnist did not write is at {final} and fails verification ({got[0].message}): not replaced"
                )
                return [judged(info, copy, why)]
        try:
            got, final = fetch(
                final.name,
                final.parent,
                self.urls,
                check,
                limit,
                self.store,
                replace=mine,
                timeout=p.timeout,
                retries=p.retries,
            )
            j = got[0]
            if self.folder == self.store.folder:
                stored = j.proof in (Proof.STORED_MD5, Proof.STORED_SHA256, Proof.ARCHIVE)
                digest = (
                    f"content_sha256:{j.sha}"
                    if not stored
                    else (f"md5:{info.stored_md5}" if info.stored_md5 else f"sha256:{info.stored_sha256}")
                )
                self.store.mark(final, "downloads", final.name, digest)
        except OSError as e:  # DownloadError, or an OSError writing here
            return e
        return [moved(j, Copy(final, Source.DOWNLOAD), "downloaded, ") for j in got]

    @staticmethod
    def _failed(heads: Sequence[tuple[FileInfo, Copy]], e: OSError) -> list[Judgment]:
        first = heads[0][0]
        return [judged(first, heads[0][1], reason(e), error=e)] + [
            judged(i, c, f"not tried after {first.name} failed") for i, c in heads[1:]
        ]
