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
from ..judge import Read, proof_key, read_archive, read_files, report
from ..results import Copy, Judgment, Learnt, Proof, Report, Source, reason
from ..store import Store
from . import Known, regular
from . import Source as Base
from .archives import members

log = logging.getLogger("fmnist")


def size_limit(info: FileInfo) -> int:
    """The most bytes a mirror may send: the published size, with room for a mirror's recompression
    (1/8 more, and 64 KiB), else what any gzip or xz of the content could need."""
    if info.stored_size:
        return info.stored_size + info.stored_size // 8 + (1 << 16)
    return int(_core.max_compressed_size(info.dtype, list(info.shape)))


class Mirrors(Base):
    def __init__(self, known: Known, urls: Sequence[str]) -> None:
        ds, tv = known.dataset, known.policy.torchvision
        self.urls = list(urls)
        self.store = Store(known.root / ds.archive.name) if ds.archive is not None else known.store
        self.folder = tv.raw if tv is not None and tv.place and ds.archive is None else self.store.folder

    def looked_in(self) -> list[str]:
        return [f"{u} (mirror)" for u in self.urls]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        a = known.dataset.archive
        return [Copy(self.folder / (a.file if a is not None else info.name), Source.DOWNLOAD)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        ds, out = known.dataset, Report()
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.lock())
            except OSError as e:  # fmnist's root cannot be written
                if self.folder == self.store.folder:
                    return self._failed(heads, e)
                # fmnist.torch downloading into torchvision's folder, where no lock of fmnist's may
                # go: downloads still land whole, by rename, and never over another's file.
                log.warning("%s: downloading without fmnist's lock (%s)", ds.name, e)
            if ds.archive is not None:
                return self._archive([i for i, _ in heads], heads[0][1], known)
            for k, (info, copy) in enumerate(heads):

                def check(p: Path, i: FileInfo = info) -> Read:
                    return read_files([Copy(p, Source.DOWNLOAD)], [i], [known.proven(i)])[0]

                got = self._one(info, copy.path, known, check, size_limit(info))
                if isinstance(got, OSError):
                    return out + self._failed(heads[k:], got)
                read, final = got
                out += report(info, Copy(final, Source.DOWNLOAD), read)
                if read.proof in (Proof.STORED_MD5, Proof.STORED_SHA256) and read.sha:
                    out += Report(learnt=(Learnt(info.name, read.sha, proof_key(ds, info), str(final)),))
        return out

    def _one(
        self, info: FileInfo, final: Path, known: Known, check: Callable[[Path], Read], limit: int
    ) -> tuple[Read, Path] | OSError:
        """One file: what is at the final path if it verifies (another process finished it while this
        one waited for the lock), else downloaded, replacing only a file of fmnist's own."""
        mine = self.folder == self.store.folder and self.store.owns(final, "downloads", final.name)
        if regular(final) or final.is_symlink():
            read = check(final)
            if read.proof is not None:
                return Read(
                    read.array, "found after waiting for the lock: " + read.message, read.proof, read.sha
                ), final
            if not mine:
                why = f"a file fmnist did not write is at {final} and fails verification ({read.message}): not replaced"
                return Read(None, why), final
        p = known.policy
        try:
            read, final = fetch(
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
            if self.folder == self.store.folder:
                stored = read.proof in (Proof.STORED_MD5, Proof.STORED_SHA256, Proof.ARCHIVE)
                md5 = f"md5:{info.stored_md5}" if info.stored_md5 else f"sha256:{info.stored_sha256}"
                self.store.mark(final, "downloads", final.name, md5 if stored else f"content_sha256:{read.sha}")
        except OSError as e:  # DownloadError, or an OSError writing here
            return e
        return Read(read.array, "downloaded, " + read.message, read.proof, read.sha), final

    def _archive(self, infos: list[FileInfo], copy: Copy, known: Known) -> Report:
        a = known.dataset.archive
        assert a is not None
        done: list[tuple[Read, list[Read]]] = []

        def check(path: Path) -> Read:
            done[:] = [read_archive(path, a, infos, [known.proven(i) for i in infos])]
            return done[0][0]

        whole = FileInfo(a.file, "", "", (0,), stored_md5=a.stored_md5, stored_sha256=a.stored_sha256)
        got = self._one(whole, copy.path, known, check, a.max_size)
        if isinstance(got, OSError):
            return self._failed([(i, copy) for i in infos], got)
        read, final = got
        if read.proof is None:
            return sum((report(i, copy, read) for i in infos), Report())
        return members(Copy(final, Source.DOWNLOAD), infos, known, done[0])

    @staticmethod
    def _failed(heads: Sequence[tuple[FileInfo, Copy]], e: OSError) -> Report:
        (first, copy), rest = heads[0], heads[1:]
        why = [Judgment(first, copy.path, Source.DOWNLOAD, reason(e), error=e)]
        why += [Judgment(i, c.path, Source.DOWNLOAD, f"not tried after {first.name} failed") for i, c in rest]
        return Report(tuple(why))
