"""IDX folders of the known layouts (each file as published and decompressed), keras's single-file
form (``mnist.npz``), and the dataset's zip archive (EMNIST's ``gzip.zip``, its members read from
the very bytes hashed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ...datasets import Dataset, FileInfo
from ..judge import read_archive, read_files, read_npz
from ..policy import search_roots
from ..results import Copy, Judgment, Source
from . import Known, regular
from . import Source as Base

DEBIAN = Path("/usr/share/datasets")  #: Debian's datasets (``dataset-fashion-mnist``: ``fashion-mnist/``)


def keras_datasets_dirs() -> list[Path]:
    """keras's datasets folders, by its rules: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``, and
    ``/tmp/.keras/datasets`` when that home cannot be written (keras then falls back to it)."""
    env = os.environ.get("KERAS_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".keras"
    fallback = home.exists() and not os.access(home, os.W_OK)
    return [home / "datasets"] + [Path("/tmp/.keras/datasets")] * fallback


def folders(ds: Dataset, root: Path, torchvision_raw: Path | None = None) -> list[tuple[Path, Source]]:
    """IDX folders, in order, with their layout: fmnist.torch's torchvision folder, fmnist's own and
    torchvision's under the data root, then in each folder of $FMNIST_SEARCH_PATH fmnist's,
    torchvision's and a repository clone's layout; or, when it is not set, keras's, Debian's, and
    torchvision's, fmnist's and a clone's under the working folder."""
    tv = ds.torchvision_name
    out: list[tuple[Path, Source]] = [(torchvision_raw, Source.TORCHVISION)] if torchvision_raw else []
    out += [(root / ds.name, Source.FMNIST)] + [(root / tv / "raw", Source.TORCHVISION)] * bool(tv)
    bases = search_roots()
    if bases is None:
        out += [(d / ds.keras_name, Source.KERAS) for d in keras_datasets_dirs() if ds.keras_name]
        out += [(DEBIAN / ds.debian_name, Source.DEBIAN)] * bool(ds.debian_name)
        out += [(Path(ds.repo_dir), Source.REPOSITORY)] * bool(ds.repo_dir)  # the working folder is a clone
        bases = [Path("data"), Path(".")]  # torchvision's tutorials use root="data"
    for base in bases:
        out += [(base / ds.name, Source.FMNIST)] + [(base / tv / "raw", Source.TORCHVISION)] * bool(tv)
        out += [(base / ds.repo_dir, Source.REPOSITORY)] * bool(ds.repo_dir and base != Path("data"))
    unique: dict[Path, tuple[Path, Source]] = {}
    for folder, layout in out:
        unique.setdefault(folder.resolve() if folder.exists() else folder, (folder, layout))
    return list(unique.values())


class Folders(Base):
    """Every folder of ``folders`` (``own_only``: fmnist's own, the published forms only, as
    ``download`` checks them). Decompressed copies come first when a content digest can judge them
    (about 3x faster than inflating), else the published forms, one of which then proves them."""

    def __init__(self, known: Known, *, own_only: bool = False) -> None:
        tv = known.policy.torchvision
        self.own_only = own_only
        self.at = (
            [(known.store.folder, Source.FMNIST)]
            if own_only
            else folders(known.dataset, known.root, tv.raw if tv else None)
        )
        self.places = [f"{folder} ({layout})" for folder, layout in self.at]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        stored = [Copy(f / info.name, layout) for f, layout in self.at if regular(f / info.name)]
        raw = [
            Copy(f / info.stem, layout, decompressed=True)
            for f, layout in self.at
            if not self.own_only
            and info.stem != info.name
            and f / info.stem != known.store.path(info)
            and regular(f / info.stem)
        ]
        return raw + stored if info.content_sha256 or info.content_md5 or known.proofs.get(info.name) else stored + raw

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        return read_files(heads, known.proofs)


class Whole(Base):
    """Files that hold every file of the dataset: keras's .npz (under keras's datasets folders, or
    the searched folders), or the archive (fmnist's ``<root>/<archive name>/``, shared by the
    datasets in it, torchvision's raw folder, and the same under the searched folders); each read
    once a round for every file wanted of it."""

    def __init__(self, known: Known, *, own_only: bool = False) -> None:
        ds, a, tv, bases = known.dataset, known.dataset.archive, known.policy.torchvision, search_roots()
        if a is None:
            dirs = keras_datasets_dirs() if bases is None else bases
            self.at = [(d / ds.keras_npz, Source.KERAS_NPZ) for d in dirs]
        else:
            self.at = [(known.root / a.name / a.file, Source.FMNIST_ARCHIVE)]
            self.at += [(tv.raw / a.file, Source.TORCHVISION_ARCHIVE)] if tv is not None and not own_only else []
            for base in [known.root, *(bases or [Path("data"), Path(".")])] * (not own_only):
                self.at.append((base / a.name / a.file, Source.FMNIST_ARCHIVE))
                self.at += [(base / ds.torchvision_name / "raw" / a.file, Source.TORCHVISION_ARCHIVE)] * bool(
                    ds.torchvision_name
                )
            self.at = list(dict.fromkeys(self.at))
        self.places = [f"{p} ({layout})" for p, layout in self.at]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        return [Copy(p, layout) for p, layout in self.at if regular(p)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        groups: dict[Copy, list[FileInfo]] = {}
        for info, copy in heads:
            groups.setdefault(copy, []).append(info)
        a, got = known.dataset.archive, {}
        for c, infos in groups.items():
            judged = read_npz(c, known.dataset, infos) if a is None else read_archive(c, a, infos, known.proofs)[1:]
            got.update({(j.info.name, c): j for j in judged})
        return [got[(i.name, c)] for i, c in heads]
