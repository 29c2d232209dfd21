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
from ..judge import published, read_archive, read_files, whole
from ..results import Copy, Judgment, Proof, Source, judged, moved, reason
from ..store import Store
from . import Known, regular
from . import Source as Base

log = logging.getLogger("fmnist")
Check = Callable[[Path], list[Judgment]]  #: a downloaded file's judgments, the first deciding


def size_limit(info: FileInfo) -> int:
    """The most bytes a mirror may send: the published size, with room for a recompression (1/8 more,
    and 64 KiB), else what any gzip or xz of the content could need."""
    if info.stored_size:
        return info.stored_size + info.stored_size // 8 + (1 << 16)
    return int(_core.max_compressed_size(info.dtype, list(info.shape)))


class Mirrors(Base):
    def __init__(self, known: Known, urls: Sequence[str]) -> None:
        ds, tv = known.dataset, known.policy.torchvision
        self.urls, self.places = list(urls), [f"{u} (mirror)" for u in urls]
        self.store = Store(known.root / ds.archive.name) if ds.archive is not None else known.store
        self.folder = tv.raw if tv is not None and tv.place and ds.archive is None else self.store.folder

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        a = known.dataset.archive
        return [Copy(self.folder / (a.file if a is not None else info.name), Source.DOWNLOAD)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        a, proofs, out = known.dataset.archive, known.proofs, list[Judgment]()

        def reads(i: FileInfo) -> Check:
            return lambda p: read_files([(i, Copy(p, Source.DOWNLOAD))], proofs)

        units: list[tuple[FileInfo, Sequence[tuple[FileInfo, Copy]], Check, int]]
        if a is not None:  # one download for every dataset in the archive: [archive, *members]
            infos = [i for i, _ in heads]
            units = [(whole(a), heads, lambda p: read_archive(Copy(p, Source.DOWNLOAD), a, infos, proofs), a.max_size)]
        else:
            units = [(i, [(i, c)], reads(i), size_limit(i)) for i, c in heads]
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.lock())
            except OSError as e:  # fmnist's root cannot be written
                if self.folder == self.store.folder:
                    return self._failed(heads, e)
                # fmnist.torch downloading into torchvision's folder, where no lock of fmnist's may go:
                # downloads still land whole, and never over another's file.
                log.warning("%s: downloading without fmnist's lock (%s)", known.dataset.name, e)
            for k, (info, unit, check, limit) in enumerate(units):
                got = self._one(info, unit[0][1].path, known, check, limit)
                if isinstance(got, OSError):
                    return out + self._failed([h for u in units[k:] for h in u[1]], got)
                if a is not None:
                    got = got[1:] if got[0].ok else [moved(got[0], c, info=i) for i, c in heads]
                out += got
        return out

    def _one(self, info: FileInfo, final: Path, known: Known, check: Check, limit: int) -> list[Judgment] | OSError:
        """One file's judgments: what is at the final path if it verifies (another process finished
        it while this one waited for the lock), else downloaded, replacing only a file of fmnist's own."""
        copy, p, own = Copy(final, Source.DOWNLOAD), known.policy, self.folder == self.store.folder
        mine = own and self.store.owns(final, "downloads", final.name)
        if regular(final) or final.is_symlink():
            got = check(final)
            if got[0].ok:
                return [moved(j, copy, "found after waiting for the lock: ") for j in got]
            if not mine:
                why = f"a file fmnist did not write is at {final} and fails verification ({got[0].message})"
                return [judged(info, copy, why + ": not replaced")]
        try:
            got = fetch(final, self.urls, check, limit, self.store, replace=mine, timeout=p.timeout, retries=p.retries)
            j = got[0]
            if own:  # recorded by the digest that proved it
                stored = j.proof in (Proof.STORED_MD5, Proof.STORED_SHA256, Proof.ARCHIVE)
                digest = published(info).replace("stored_", "") if stored else f"content_sha256:{j.sha}"
                self.store.mark(final, "downloads", final.name, digest)
        except OSError as e:  # DownloadError, or an OSError writing here
            return e
        return [moved(j, copy, "downloaded, ") for j in got]

    @staticmethod
    def _failed(heads: Sequence[tuple[FileInfo, Copy]], e: OSError) -> list[Judgment]:
        first = heads[0][0]
        rest = [judged(i, c, f"not tried after {first.name} failed") for i, c in heads[1:]]
        return [judged(first, heads[0][1], reason(e), error=e), *rest]
