"""The dataset registry: which files make up each dataset, where they are published, and the
digests that prove a copy is the right one.

The registry is data. The built-in datasets ship as a registry file in the package
(``fmnist/registry/builtin.json``), loaded by the same ``load_registry`` users call for their own
files (TOML or JSON), and every description, built-in or not, passes the same checks before it
is registered: a ``RegistryError`` names the file, the dataset and the field of each problem.

Every digest says what it covers: ``stored_*`` digests are of the file as published (a .gz, or
for QMNIST's nist split an .xz); ``content_*`` digests are of the decompressed IDX bytes, which
stay the same when a mirror recompresses the file (Debian does: its .gz bytes differ, its
content does not). An archive (EMNIST's ``gzip.zip``) is its own kind of entry: datasets whose
files are its members name it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import _core
from .errors import Error

log = logging.getLogger("fmnist")

#: The splits of the MNIST layout (a dataset may have others: ``Dataset.splits``).
SPLITS = ("train", "test")


class RegistryError(Error, ValueError):
    """A dataset description that cannot be used: the message names its source, the dataset and
    the field of every problem."""


@dataclass(frozen=True)
class FileInfo:
    """One published IDX file."""

    name: str  #: file name as published, e.g. "train-images-idx3-ubyte.gz"
    split: str  #: "train", "test", or another of the dataset's splits
    kind: str  #: "images" or "labels"
    shape: tuple[int, ...]  #: the array it holds
    stored_size: int | None = None  #: bytes of the file as published
    stored_md5: str | None = None  #: MD5 of the file's bytes as published (compressed)
    stored_sha256: str | None = None  #: SHA-256 of the file's bytes as published
    content_md5: str | None = None  #: MD5 of the decompressed IDX bytes
    content_sha256: str | None = None  #: SHA-256 of the decompressed IDX bytes
    dtype: str = "uint8"  #: numpy name of the element type (QMNIST's labels are int32)

    @property
    def stem(self) -> str:
        """The decompressed file's name: "train-images-idx3-ubyte"."""
        for suffix in (".gz", ".xz"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def content_size(self) -> int:
        """Bytes of the decompressed IDX file: header + payload (the engine's rule)."""
        header, payload = _core.idx_size(self.dtype, list(self.shape))
        return int(header + payload)


@dataclass(frozen=True)
class Archive:
    """A zip whose members are datasets' IDX files (EMNIST's ``gzip.zip`` holds all six EMNIST
    datasets): downloaded once into ``<root>/<name>/``, verified by its stored digest, and read
    member by member from the bytes that were hashed, never extracted."""

    name: str  #: its folder under the data root, shared by the datasets in it, e.g. "emnist"
    file: str  #: file name as published, e.g. "gzip.zip"
    max_size: int  #: the most bytes a mirror may send for it
    stored_md5: str | None = None  #: MD5 of the archive as published
    stored_sha256: str | None = None  #: SHA-256 of the archive as published
    members: str = ""  #: the folder of the IDX files inside the archive, e.g. "gzip/"
    mirrors: tuple[str, ...] = ()  #: base URLs, tried in order
    notes: str = ""  #: where its facts come from


@dataclass(frozen=True)
class Dataset:
    """A dataset in the MNIST layout: an images and a labels file per split."""

    name: str
    title: str
    homepage: str
    license: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]  #: base URLs, tried in order
    files: tuple[FileInfo, ...]
    #: where other loaders keep it: torchvision's class name (``<root>/<name>/raw/``), keras's
    #: folder under its datasets folder, the name of Debian's folder under /usr/share/datasets
    torchvision_name: str = ""
    keras_name: str = ""
    debian_name: str = ""
    #: keras's single-file form (``<keras datasets folder>/<file>``: an .npz of x_train, y_train,
    #: x_test, y_test) and the SHA-256 keras's source publishes for it
    keras_npz: str = ""
    keras_npz_sha256: str = ""
    #: where the dataset's own repository keeps the files, relative to a clone ("data/fashion")
    repo_dir: str = ""
    aliases: tuple[str, ...] = field(default=())
    #: names of the label columns, when labels are rows (QMNIST); column 0 is the class
    label_columns: tuple[str, ...] = field(default=())
    #: splits that are slices of another, as torchvision names them: name -> (split, start, stop)
    slices: Mapping[str, tuple[str, int, int | None]] = field(default_factory=dict)
    #: the archive the files are members of (EMNIST); None: each file is published on its own
    archive: Archive | None = None
    #: the images are stored transposed (EMNIST): ``load(..., upright=True)`` turns them
    transposed: bool = False
    notes: str = ""  #: where its facts come from

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names, in registry order (slices not included)."""
        return tuple(dict.fromkeys(f.split for f in self.files))

    def file(self, split: str, kind: str) -> FileInfo:
        for f in self.files:
            if f.split == split and f.kind == kind:
                return f
        raise KeyError((split, kind))


#: name -> Dataset: the registry, the built-in datasets first (Fashion-MNIST, the default).
DATASETS: dict[str, Dataset] = {}
#: name -> Archive: the archives datasets' files are members of.
ARCHIVES: dict[str, Archive] = {}


def get(name: str) -> Dataset:
    """The dataset called ``name`` or one of its aliases, case-insensitively; ValueError naming
    the known ones. The files of ``$FMNIST_REGISTRY`` are registered first (once each): one that
    is refused is logged and named here, and does not stop the others or the built-in datasets."""
    refused = load_env_registries()
    if not isinstance(name, str):
        raise TypeError(f"a dataset name is a str, not {type(name).__name__}")
    key = name.casefold()
    for d in DATASETS.values():
        if key == d.name.casefold() or key in (a.casefold() for a in d.aliases):
            return d
    note = "".join(f"\n  (refused from $FMNIST_REGISTRY: {e})" for e in refused)
    raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}{note}")


# --- checking descriptions -------------------------------------------------------------------

#: A name that becomes one path component (a folder or file name) and part of a URL.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_HEX = {"md5": 32, "sha256": 64}
#: The element types IDX holds, by numpy name: the engine's table.
_DTYPES = tuple(name for code, name, _ in _core.ELEMENT_TYPES if code is not None)


class _Problems:
    """The problems found in one description, each prefixed with the field it is in."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.items.append(f"{where}: {problem}")

    def text(self, where: str, value: Any, *, empty: bool = True) -> None:
        if not isinstance(value, str):
            self.add(where, f"must be a string, not {_kind(value)}")
        elif not empty and not value:
            self.add(where, "must not be empty")

    def component(self, where: str, value: Any, *, empty: bool = False) -> None:
        """One path component: a folder or file name that cannot climb out of its folder."""
        if not isinstance(value, str):
            self.add(where, f"must be a string, not {_kind(value)}")
        elif value == "" and empty:
            return
        elif not _SAFE_NAME.fullmatch(value) or ".." in value:
            self.add(where, f"{value!r} must be one folder or file name: letters, digits, '.', '_', '+', '-'")

    def relative(self, where: str, value: Any, *, trailing: bool = False) -> None:
        """A relative path of plain components ("data/fashion"; "gzip/" when ``trailing``)."""
        if not isinstance(value, str):
            self.add(where, f"must be a string, not {_kind(value)}")
            return
        if value == "":
            return
        body = value[:-1] if trailing and value.endswith("/") else value
        if (trailing and not value.endswith("/")) or not all(
            _SAFE_NAME.fullmatch(c) and ".." not in c for c in body.split("/")
        ):
            end = ", ending in '/'" if trailing else ""
            self.add(where, f"{value!r} must be a relative path of plain folder names{end}")

    def digest(self, where: str, value: Any, algorithm: str) -> None:
        if value is None:
            return
        n = _HEX[algorithm]
        if not isinstance(value, str) or not re.fullmatch(f"[0-9a-f]{{{n}}}", value):
            self.add(where, f"must be {n} lowercase hex digits, not {value!r}")

    def count(self, where: str, value: Any, *, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not _is_int(value) or value < 1:
            self.add(where, f"must be a positive whole number, not {value!r}")

    def strings(self, where: str, value: Any, check: Any = None) -> None:
        if not isinstance(value, tuple):
            self.add(where, f"must be a list of strings, not {_kind(value)}")
            return
        for k, item in enumerate(value):
            (check or self.text)(f"{where}[{k}]", item)

    def mirrors(self, where: str, value: Any) -> None:
        if not isinstance(value, tuple):
            self.add(where, f"must be a list of base URLs, not {_kind(value)}")
            return
        for k, url in enumerate(value):
            if not (isinstance(url, str) and url.startswith(("http://", "https://", "file://")) and url.endswith("/")):
                self.add(f"{where}[{k}]", f"{url!r} must be an http://, https:// or file:// base URL ending in '/'")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _file_problems(p: _Problems, f: Any, where: str, archived: bool) -> None:
    if not isinstance(f, FileInfo):
        p.add(where, f"must be a file description, not {_kind(f)}")
        return
    p.component(f"{where}.name", f.name)
    p.component(f"{where}.split", f.split)
    if f.kind not in ("images", "labels"):
        p.add(f"{where}.kind", f"must be 'images' or 'labels', not {f.kind!r}")
    if f.dtype not in _DTYPES:
        p.add(f"{where}.dtype", f"must be one of {', '.join(_DTYPES)}, not {f.dtype!r}")
    shape_ok = isinstance(f.shape, tuple) and 0 < len(f.shape) <= _core.MAX_NDIM
    if not shape_ok or not all(_is_int(d) and d > 0 for d in f.shape):
        p.add(f"{where}.shape", f"must be a list of 1 to {_core.MAX_NDIM} positive sizes, not {f.shape!r}")
    p.count(f"{where}.stored_size", f.stored_size, optional=True)
    for key in ("stored_md5", "stored_sha256", "content_md5", "content_sha256"):
        p.digest(f"{where}.{key}", getattr(f, key), key.rsplit("_", 1)[1])
    if not archived and not (f.stored_md5 or f.stored_sha256 or f.content_md5 or f.content_sha256):
        p.add(where, "no digest (stored_md5, stored_sha256, content_md5 or content_sha256): nothing could verify it")


def archive_problems(a: Any, where: str = "archive") -> list[str]:
    """Everything wrong with an archive description (empty when it can be registered)."""
    p = _Problems()
    if not isinstance(a, Archive):
        return [f"{where}: must be an archive description, not {_kind(a)}"]
    p.component(f"{where}.name", a.name)
    p.component(f"{where}.file", a.file)
    p.count(f"{where}.max_size", a.max_size)
    p.digest(f"{where}.stored_md5", a.stored_md5, "md5")
    p.digest(f"{where}.stored_sha256", a.stored_sha256, "sha256")
    if not (a.stored_md5 or a.stored_sha256):
        p.add(where, "no stored_md5 or stored_sha256: nothing could verify it")
    p.relative(f"{where}.members", a.members, trailing=True)
    p.mirrors(f"{where}.mirrors", a.mirrors)
    p.text(f"{where}.notes", a.notes)
    return p.items


def problems(ds: Dataset) -> list[str]:
    """Everything wrong with a dataset description (empty when it can be registered), each
    naming its field."""
    p = _Problems()
    p.component("name", ds.name)
    for key in ("title", "homepage", "license", "notes"):
        p.text(key, getattr(ds, key))
    p.strings("aliases", ds.aliases, p.component)
    p.strings("classes", ds.classes, lambda w, v: p.text(w, v, empty=False))
    if ds.classes == ():
        p.add("classes", "must be a non-empty list of names")
    p.strings("label_columns", ds.label_columns)
    p.mirrors("mirrors", ds.mirrors)
    for key in ("torchvision_name", "keras_name", "debian_name", "keras_npz"):
        p.component(key, getattr(ds, key), empty=True)
    p.relative("repo_dir", ds.repo_dir)
    if ds.keras_npz or ds.keras_npz_sha256:
        p.digest("keras_npz_sha256", ds.keras_npz_sha256 or "", "sha256")
    if not isinstance(ds.transposed, bool):
        p.add("transposed", f"must be true or false, not {_kind(ds.transposed)}")
    if ds.archive is not None:
        p.items += archive_problems(ds.archive)
    if not isinstance(ds.files, tuple) or not ds.files:
        p.add("files", f"must be a non-empty list of file descriptions, not {_kind(ds.files)}")
        return p.items
    for k, f in enumerate(ds.files):
        _file_problems(p, f, f"files[{k}] ({getattr(f, 'name', '?')!r})", ds.archive is not None)
    if p.items:
        return p.items  # the checks below assume well-formed files
    for what, values in (("file name", [f.name for f in ds.files]), ("cache name", [f.stem for f in ds.files])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:  # the cache name: the decompressed file's, <root>/<name>/<stem>
            holders = [f.name for f in ds.files if twice[0] in (f.name, f.stem)]
            p.add("files", f"{' and '.join(map(repr, holders))} have the same {what} {twice[0]!r}")
    for split in ds.splits:
        kinds = sorted(f.kind for f in ds.files if f.split == split)
        if kinds != ["images", "labels"]:
            p.add("files", f"split {split!r} must have one images file and one labels file, has {kinds}")
            continue
        images, labels = ds.file(split, "images"), ds.file(split, "labels")
        if images.shape[0] != labels.shape[0]:
            p.add("files", f"split {split!r}: {images.shape[0]} images but {labels.shape[0]} labels")
    if not isinstance(ds.slices, Mapping):
        p.add("slices", f"must be a table of name -> [split, start, stop], not {_kind(ds.slices)}")
        return p.items
    for name, cut in ds.slices.items():
        where = f"slices.{name}"
        if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in ds.splits:
            p.add(where, "a slice needs a plain name that is not one of the splits")
            continue
        if not (isinstance(cut, tuple) and len(cut) == 3 and cut[0] in ds.splits):
            p.add(where, f"must be [split, start, stop] of one of the splits {list(ds.splits)}, not {cut!r}")
            continue
        rows = ds.file(cut[0], "labels").shape[0]
        start, stop = cut[1], cut[2]
        if not (_is_int(start) and 0 <= start < rows) or not (stop is None or (_is_int(stop) and start < stop <= rows)):
            p.add(where, f"start and stop must cut rows 0 to {rows} of {cut[0]!r} (stop may be null), not {cut[1:]}")
    return p.items


def _taken(name: str, exclude: str | None) -> str | None:
    """What registered dataset or archive already uses ``name`` (case-insensitively) as its name,
    an alias or its folder under the data root; None when nothing does."""
    key = name.casefold()
    for d in DATASETS.values():
        if d.name != exclude and key in (n.casefold() for n in (d.name, *d.aliases)):
            return f"the registered dataset {d.name!r}"
    for a in ARCHIVES.values():
        if a.name.casefold() == key:
            return f"the folder of the registered archive {a.name!r}"
    return None


def register_archive(archive: Archive) -> Archive:
    """Adds an archive to the registry (``Dataset.archive`` of a registered dataset is registered
    with it). The same description again does nothing; another under a taken name is refused."""
    found = archive_problems(archive)
    if found:
        raise RegistryError(f"archive {getattr(archive, 'name', '?')!r}: " + "; ".join(found))
    known = ARCHIVES.get(archive.name)
    if known == archive:
        return known
    if known is not None:
        raise RegistryError(f"archive {archive.name!r}: another archive is registered under that name")
    clash = _taken(archive.name, None)
    if clash:
        raise RegistryError(f"archive {archive.name!r}: its folder name is taken by {clash}")
    ARCHIVES[archive.name] = archive
    return archive


def register(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Adds ``dataset`` to the registry, after which ``load``, ``load_data``, ``download``,
    discovery, the warm cache, the command line and ``fmnist.torch`` serve it as they serve the
    built-in datasets (which are registered the same way). Registering an equal description
    again does nothing; a different one under a taken name or alias (compared
    case-insensitively, and with archives' folder names) is refused unless ``replace``. Raises
    ``RegistryError`` naming every problem of a bad description and its field."""
    if not isinstance(dataset, Dataset):
        raise RegistryError(f"register() takes an fmnist.Dataset, not {_kind(dataset)}")
    found = problems(dataset)
    if found:
        raise RegistryError(f"dataset {dataset.name!r}: " + "; ".join(found))
    if DATASETS.get(dataset.name) == dataset:
        return dataset
    mine = dataset.name if replace else None
    for n in (dataset.name, *dataset.aliases):
        clash = _taken(n, mine)
        if clash:
            raise RegistryError(
                f"dataset {dataset.name!r}: {n!r} already names {clash}"
                + (" (pass replace=True to redefine it)" if "dataset" in clash else "")
            )
    if dataset.archive is not None:
        try:
            register_archive(dataset.archive)
        except RegistryError as e:
            raise RegistryError(f"dataset {dataset.name!r}: {e}") from None
    DATASETS[dataset.name] = dataset
    return dataset


# --- registry files ----------------------------------------------------------------------------

#: Registry-file keys of a file -> FileInfo fields; ``size``, ``md5`` and ``sha256`` are the
#: spellings of earlier versions, still read.
_FILE_KEYS = {f.name: f.name for f in fields(FileInfo)} | {
    "size": "stored_size",
    "md5": "stored_md5",
    "sha256": "stored_sha256",
}
_FIELDS = {f.name for f in fields(FileInfo)}
_ARCHIVE_KEYS = tuple(f.name for f in fields(Archive))
_DATASET_KEYS = tuple(f.name for f in fields(Dataset))
_LISTS = ("classes", "mirrors", "aliases", "label_columns", "shape")


def _gentle(key: str, value: Any) -> Any:
    """A value as a registry file holds it, made the field's type where that is unambiguous
    (a list becomes a tuple); anything else is kept as it is, for the checks to name."""
    if key in _LISTS and isinstance(value, list):
        return tuple(value)
    if key == "slices" and isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def _table(
    value: Any, where: str, known: tuple[str, ...] | dict[str, str], required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RegistryError(f"{where}: must be a table/object, not {_kind(value)}")
    unknown = sorted(str(k) for k in value if k not in known)
    missing = [k for k in required if k not in value]
    if unknown or missing:
        raise RegistryError(
            f"{where}: "
            + "; ".join(
                ([f"unknown key(s) {unknown}; known: {', '.join(known)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])
            )
        )
    return dict(value)


def archive_from_dict(description: Mapping[str, Any], source: str = "<dict>") -> Archive:
    """An ``Archive`` from its description as a registry file holds it (``[[archive]]``)."""
    where = f"{source}: archive {description.get('name', '?') if isinstance(description, Mapping) else '?'!r}"
    values = _table(description, where, _ARCHIVE_KEYS, ("name", "file", "max_size"))
    archive = Archive(**{k: _gentle(k, v) for k, v in values.items()})
    found = archive_problems(archive, "")
    if found:
        raise RegistryError(f"{where}: " + "; ".join(s.lstrip(".: ") for s in found))
    return archive


def from_dict(
    description: Mapping[str, Any], source: str = "<dict>", archives: Mapping[str, Archive] | None = None
) -> Dataset:
    """A ``Dataset`` from its description as a registry file holds it (see ``load_registry``),
    checked whole: ``RegistryError`` names the source, the dataset and each field at fault.
    ``archive`` names an archive of ``archives`` or of the registry."""
    name = description.get("name", "?") if isinstance(description, Mapping) else "?"
    where = f"{source}: dataset {name!r}"
    values = _table(description, where, _DATASET_KEYS, ("name", "classes", "files"))
    files = values["files"]
    if not isinstance(files, list) or not files:
        raise RegistryError(f"{where}: files: must be a non-empty list of file tables, not {_kind(files)}")
    infos = []
    for k, f in enumerate(files):
        fwhere = f"{where}: files[{k}]"
        entry = _table(f, fwhere, _FILE_KEYS, ("name", "split", "kind", "shape"))
        kwargs: dict[str, Any] = {}
        for key, v in entry.items():
            target = _FILE_KEYS[key]
            if target in kwargs:
                raise RegistryError(f"{fwhere}: {key!r} and {target!r} give the same field twice")
            kwargs[target] = _gentle(target, v)
        infos.append(FileInfo(**kwargs))
    values["files"] = tuple(infos)
    ref = values.get("archive")
    if ref is not None:
        pool = {**ARCHIVES, **(archives or {})}
        if not isinstance(ref, str) or ref not in pool:
            raise RegistryError(f"{where}: archive: must name an archive ([[archive]]) of {sorted(pool)}, not {ref!r}")
        values["archive"] = pool[ref]
    for key in ("title",):
        values.setdefault(key, values["name"])
    for key in ("homepage", "license"):
        values.setdefault(key, "")
    values.setdefault("mirrors", [])
    ds = Dataset(**{k: _gentle(k, v) for k, v in values.items()})
    found = problems(ds)
    if found:
        raise RegistryError(f"{where}: " + "; ".join(found))
    return ds


def to_dict(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as a registry file describes it (``from_dict`` gives it back; its archive is
    named, and described by ``archive_to_dict``)."""
    out: dict[str, Any] = {}
    for f in fields(Dataset):
        value = getattr(dataset, f.name)
        if f.name == "files":
            continue
        if f.name == "archive":
            value = value.name if value is not None else None
        elif f.name == "slices":
            value = {k: list(v) for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        if value or f.name in ("name", "classes", "mirrors"):
            out[f.name] = value
    out["files"] = [
        {k: list(v) if k == "shape" else v for k in _FILE_KEYS if k in _FIELDS and (v := getattr(info, k)) is not None}
        for info in dataset.files
    ]
    return out


def archive_to_dict(archive: Archive) -> dict[str, Any]:
    """``archive`` as a registry file's ``[[archive]]`` table describes it."""
    out = {f.name: getattr(archive, f.name) for f in fields(Archive)}
    out["mirrors"] = list(archive.mirrors)
    return {k: v for k, v in out.items() if v not in (None, "")}


#: The largest registry file read: the built-in registry of ten datasets is about 15 KiB.
REGISTRY_MAX_BYTES = 1 << 20


def _read_registry_file(path: str) -> bytes:
    """The bytes of a registry file: a regular file of at most ``REGISTRY_MAX_BYTES``. It is
    opened without blocking (a FIFO would wait for a writer) and judged by ``fstat`` before a
    byte is read; a file that grows while it is read is refused too."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError(f"{path}: not a regular file; a registry is a TOML or JSON file")
        raw = f.read(REGISTRY_MAX_BYTES + 1)
    if len(raw) > REGISTRY_MAX_BYTES:
        raise RegistryError(f"{path}: over {REGISTRY_MAX_BYTES} bytes; a registry file is at most 1 MiB")
    return raw


def parse_registry(path: str | os.PathLike[str]) -> tuple[list[Archive], list[Dataset]]:
    """The archives and datasets a registry file describes, every one checked, none registered.
    A TOML (``.toml``) or JSON file of a list ``dataset`` of tables (each as ``to_dict`` writes
    one) and, optionally, a list ``archive`` (each as ``archive_to_dict`` writes one)."""
    path = os.fspath(path)
    try:
        raw = _read_registry_file(path)
        if path.endswith(".toml"):
            if sys.version_info >= (3, 11):
                import tomllib
            else:
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except OSError:
        raise
    except ValueError as e:  # TOMLDecodeError, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RegistryError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {e}") from None
    if not isinstance(data, dict) or set(data) - {"dataset", "archive"}:
        raise RegistryError(f"{path}: a registry holds the lists 'dataset' and (optionally) 'archive', nothing else")
    entries, archive_entries = data.get("dataset"), data.get("archive", [])
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{path}: expected a non-empty list 'dataset' of dataset descriptions")
    if not isinstance(archive_entries, list):
        raise RegistryError(f"{path}: 'archive' must be a list of archive descriptions")
    archives = [archive_from_dict(a, path) for a in archive_entries]
    by_name = {a.name: a for a in archives}
    if len(by_name) != len(archives):
        raise RegistryError(f"{path}: two archives have the same name")
    found = [from_dict(e, path, by_name) for e in entries]
    taken = {a.name.casefold(): f"its archive {a.name!r}" for a in archives}
    for d in found:
        for field_name, n in (("name", d.name), *(("aliases", a) for a in d.aliases)):
            other = taken.setdefault(n.casefold(), f"its dataset {d.name!r}")
            if other != f"its dataset {d.name!r}" or (field_name == "aliases" and n.casefold() == d.name.casefold()):
                raise RegistryError(f"{path}: dataset {d.name!r}: {field_name}: {n!r} also names {other}")
    return archives, found


def load_registry(path: str | os.PathLike[str], *, replace: bool = False) -> list[Dataset]:
    """Registers the datasets (and archives) a TOML or JSON registry file describes (see
    ``parse_registry``) and returns the datasets. The file is checked whole first: if any of it
    is refused, ``RegistryError`` names the file and the problem and nothing of it is
    registered."""
    archives, found = parse_registry(path)
    before = (dict(DATASETS), dict(ARCHIVES))
    try:
        for a in archives:
            register_archive(a)
        return [register(ds, replace=replace) for ds in found]
    except RegistryError as e:
        DATASETS.clear()
        DATASETS.update(before[0])
        ARCHIVES.clear()
        ARCHIVES.update(before[1])
        raise RegistryError(f"{os.fspath(path)}: {e}") from None


_loaded_from_env: dict[str, RegistryError | OSError | None] = {}


def load_env_registries() -> list[Exception]:
    """Registers the files of ``$FMNIST_REGISTRY`` (os.pathsep-separated), once each. A file
    that is refused is logged (a warning) and returned with the others refused, so that one bad
    file does not stop the datasets of the rest."""
    for path in os.environ.get("FMNIST_REGISTRY", "").split(os.pathsep):
        if path and path not in _loaded_from_env:
            try:
                load_registry(path)
                _loaded_from_env[path] = None
            except (RegistryError, OSError) as e:
                log.warning("$FMNIST_REGISTRY: %s", e)
                _loaded_from_env[path] = e
    return [e for e in _loaded_from_env.values() if e is not None]


#: The built-in registry file, loaded as users' registry files are.
BUILTIN = Path(__file__).parent / "registry" / "builtin.json"
load_registry(BUILTIN)
FASHION_MNIST = DATASETS["fashion-mnist"]
MNIST = DATASETS["mnist"]
KMNIST = DATASETS["kmnist"]
QMNIST = DATASETS["qmnist"]
