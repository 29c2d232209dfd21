"""The dataset's zip archive (EMNIST's ``gzip.zip``): fmnist's ``<root>/<archive name>/`` (shared by
the datasets in it), torchvision's raw folder, and the same under the searched folders; hashed
and its members read from the very bytes, once a round."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...datasets import FileInfo
from ..judge import Read, proof_key, read_archive, report
from ..policy import search_roots
from ..results import Copy, Learnt, Report, Source
from . import Known, regular
from . import Source as Base


class Archives(Base):
    def __init__(self, known: Known, *, own_only: bool = False) -> None:
        ds, a, tv = known.dataset, known.dataset.archive, known.policy.torchvision
        assert a is not None
        out = [(known.root / a.name / a.file, Source.FMNIST_ARCHIVE)]
        if not own_only:
            out += [(tv.raw / a.file, Source.TORCHVISION_ARCHIVE)] if tv is not None else []
            for base in [known.root, *(search_roots() or [Path("data"), Path(".")])]:
                out.append((base / a.name / a.file, Source.FMNIST_ARCHIVE))
                if ds.torchvision_name:
                    out.append((base / ds.torchvision_name / "raw" / a.file, Source.TORCHVISION_ARCHIVE))
        self.paths = list(dict.fromkeys(out))

    def looked_in(self) -> list[str]:
        return [f"{p} ({layout})" for p, layout in self.paths]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        return [Copy(p, layout) for p, layout in self.paths if regular(p)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        groups: dict[Copy, list[FileInfo]] = {}
        for info, copy in heads:
            groups.setdefault(copy, []).append(info)
        return sum((members(copy, infos, known) for copy, infos in groups.items()), Report())


def members(copy: Copy, infos: list[FileInfo], known: Known, done: tuple[Read, list[Read]] | None = None) -> Report:
    """The members ``infos`` of the archive at ``copy`` (read now, or ``done``); the content of each
    that is proven is learnt."""
    a = known.dataset.archive
    assert a is not None
    _, reads = done or read_archive(copy.path, a, infos, [known.proven(i) for i in infos])
    out = Report()
    for info, read in zip(infos, reads):
        out += report(info, copy, read, a.members + info.name)
        if read.proof is not None and read.sha:
            where = f"{copy.path}:{a.members}{info.name}"
            out += Report(learnt=(Learnt(info.name, read.sha, proof_key(known.dataset, info), where),))
    return out
