"""IDX folders of the known layouts, each file as published (.gz, .xz) and decompressed; and
keras's single-file form (``mnist.npz``), verified by the SHA-256 keras publishes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...datasets import Dataset, FileInfo
from ..judge import Read, content_sha256, proof_key, read_files, read_npz, refused, report, size_rule
from ..policy import search_roots
from ..results import Copy, Learnt, Proof, Report, Source
from . import Known, regular
from . import Source as Base

DEBIAN = Path("/usr/share/datasets")  #: Debian's datasets (``dataset-fashion-mnist``: ``fashion-mnist/``)


def keras_datasets_dirs() -> list[Path]:
    """Where keras keeps datasets, by its rules: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``,
    and ``/tmp/.keras/datasets`` when that home cannot be written (keras falls back to it)."""
    env = os.environ.get("KERAS_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".keras"
    fallback = [Path("/tmp") / ".keras" / "datasets"] if home.exists() and not os.access(home, os.W_OK) else []
    return [home / "datasets", *fallback]


def folders(ds: Dataset, root: Path, torchvision_raw: Path | None = None) -> list[tuple[Path, Source]]:
    """IDX folders to look in, in order, with their layout: fmnist.torch's torchvision folder,
    fmnist's own and torchvision's under the data root, then each folder of $FMNIST_SEARCH_PATH
    (fmnist's, torchvision's and a repository clone's layout in it), or when it is not set the
    folders other loaders use: keras's, Debian's, torchvision's, fmnist's and a clone's under the
    working folder."""
    out: list[tuple[Path, Source]] = [(torchvision_raw, Source.TORCHVISION)] if torchvision_raw else []
    out.append((root / ds.name, Source.FMNIST))
    if ds.torchvision_name:
        out.append((root / ds.torchvision_name / "raw", Source.TORCHVISION))
    bases = search_roots()
    if bases is None:
        out += [(d / ds.keras_name, Source.KERAS) for d in keras_datasets_dirs() if ds.keras_name]
        out += [(DEBIAN / ds.debian_name, Source.DEBIAN)] if ds.debian_name else []
        out += [(Path(ds.repo_dir), Source.REPOSITORY)] if ds.repo_dir else []  # the working folder is a clone
        bases = [Path("data"), Path(".")]  # torchvision's tutorials use root="data"
    for base in bases:
        out.append((base / ds.name, Source.FMNIST))
        if ds.torchvision_name:
            out.append((base / ds.torchvision_name / "raw", Source.TORCHVISION))
        if ds.repo_dir and base != Path("data"):
            out.append((base / ds.repo_dir, Source.REPOSITORY))
    unique: dict[Path, tuple[Path, Source]] = {}
    for folder, layout in out:
        unique.setdefault(folder.resolve() if folder.exists() else folder, (folder, layout))
    return list(unique.values())


class Folders(Base):
    """Every folder of ``folders`` (``own_only``: fmnist's own folder, the published forms only, as
    ``download`` checks them). A copy whose stored digest verifies proves its content for the other
    forms; fmnist's own cache file is the warm cache's."""

    def __init__(self, known: Known, *, own_only: bool = False) -> None:
        tv = known.policy.torchvision
        places = folders(known.dataset, known.root, tv.raw if tv is not None else None)
        self.places, self.own_only = [(known.store.folder, Source.FMNIST)] if own_only else places, own_only

    def looked_in(self) -> list[str]:
        return [f"{folder} ({layout})" for folder, layout in self.places]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        """Decompressed copies first when a content digest can judge them (about 3x faster than
        inflating the published form), else the published forms first."""
        stored = [Copy(f / info.name, layout) for f, layout in self.places if regular(f / info.name)]
        raw = [
            Copy(f / info.stem, layout, decompressed=True)
            for f, layout in self.places
            if not self.own_only and info.stem != info.name and f / info.stem != known.store.path(info)
            if regular(f / info.stem)
        ]
        return raw + stored if info.content_sha256 or info.content_md5 or known.proven(info) else stored + raw

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        ruled = [size_rule(c, i) for i, c in heads]
        todo = [k for k, why in enumerate(ruled) if why is None]
        reads = read_files(
            [heads[k][1] for k in todo], [heads[k][0] for k in todo], [known.proven(heads[k][0]) for k in todo]
        )
        got = dict(zip(todo, reads))
        out = Report()
        for k, (info, copy) in enumerate(heads):
            read = got.get(k) or refused(ruled[k] or "")
            out += report(info, copy, read)
            if read.proof in (Proof.STORED_MD5, Proof.STORED_SHA256) and read.sha:
                out += Report(learnt=(Learnt(info.name, read.sha, proof_key(known.dataset, info), str(copy.path)),))
        return out


class KerasNpz(Base):
    def __init__(self, known: Known) -> None:
        name, bases = known.dataset.keras_npz, search_roots()
        self.paths = [b / name for b in (keras_datasets_dirs() if bases is None else bases)] if name else []

    def looked_in(self) -> list[str]:
        return [f"{p} (keras .npz)" for p in self.paths]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        return [Copy(p, Source.KERAS_NPZ) for p in self.paths if regular(p)]

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        bundles: dict[Path, tuple[Read, dict[str, Any]]] = {}
        out = Report()
        for info, copy in heads:
            whole, arrays = bundles.setdefault(copy.path, read_npz(copy.path, known.dataset))
            key = ("x_" if info.kind == "images" else "y_") + info.split
            array = arrays.get(key)
            if whole.proof is None:
                out += report(info, copy, whole)
            elif array is None or array.shape != info.shape or array.dtype != info.dtype:
                out += report(info, copy, refused(f"no {info.dtype} {key} of shape {info.shape} in it"), key)
            else:
                sha = content_sha256(array)
                out += report(info, copy, Read(array, whole.message, Proof.KERAS_NPZ, sha), key)
                by = f"keras_npz_sha256:{known.dataset.keras_npz_sha256}"
                out += Report(learnt=(Learnt(info.name, sha, by, str(copy.path)),))
        return out
