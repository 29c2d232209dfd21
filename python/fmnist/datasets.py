"""The dataset registry: which files make up each dataset, where they are published, and the
digests that prove a copy is the right one.

The registry is data: the built-in datasets ship as a registry file in the package
(``registry/builtin.json``), loaded by the same ``load_registry`` users call for their own TOML or
JSON files, and every description passes the same checks before it is registered: a
``RegistryError`` names the file, the dataset and the field of each problem. ``stored_*`` digests
are of the file as published (a .gz, an .xz), ``content_*`` ones of the decompressed IDX bytes,
which stay the same when a mirror recompresses the file (Debian does). An archive (EMNIST's
``gzip.zip``) is an entry of its own, named by the datasets in it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import _core
from .errors import Error
from .idx import read_json, read_small

log = logging.getLogger("fmnist")
SPLITS = ("train", "test")  #: the splits of the MNIST layout (a dataset may have others)


class RegistryError(Error, ValueError):
    """A description that cannot be used: the message names its source, the dataset and the field
    of every problem."""


@dataclass(frozen=True)
class FileInfo:
    """One published IDX file."""

    name: str  #: as published, e.g. "train-images-idx3-ubyte.gz"
    split: str  #: "train", "test", or another of the dataset's splits
    kind: str  #: "images" or "labels"
    shape: tuple[int, ...]
    stored_size: int | None = None  #: bytes of the file as published
    stored_md5: str | None = None  #: of the file's bytes as published
    stored_sha256: str | None = None
    content_md5: str | None = None  #: of the decompressed IDX bytes
    content_sha256: str | None = None
    dtype: str = "uint8"  #: numpy's name of the element type (QMNIST's labels are int32)

    @property
    def stem(self) -> str:
        """The decompressed file's name: "train-images-idx3-ubyte"."""
        return self.name[:-3] if self.name.endswith((".gz", ".xz")) else self.name

    @property
    def content_size(self) -> int:
        """Bytes of the decompressed IDX file (the engine's rule)."""
        return int(sum(_core.idx_size(self.dtype, list(self.shape))))


@dataclass(frozen=True)
class Archive:
    """A zip whose members are datasets' IDX files (EMNIST's ``gzip.zip`` holds six): downloaded
    once into ``<root>/<name>/``, verified by its stored digest, read member by member from the
    bytes that were hashed, never extracted."""

    name: str  #: its folder under the data root, shared by the datasets in it
    file: str  #: as published, e.g. "gzip.zip"
    max_size: int  #: the most bytes a mirror may send for it
    stored_md5: str | None = None
    stored_sha256: str | None = None
    members: str = ""  #: the folder of the IDX files inside it, e.g. "gzip/"
    mirrors: tuple[str, ...] = ()
    notes: str = ""


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
    #: where other loaders keep it: torchvision's class name (``<root>/<name>/raw/``), keras's folder
    #: under its datasets folder, Debian's folder under /usr/share/datasets
    torchvision_name: str = ""
    keras_name: str = ""
    debian_name: str = ""
    keras_npz: str = ""  #: keras's single-file form (an .npz of x_train, y_train, x_test, y_test)
    keras_npz_sha256: str = ""  #: and the SHA-256 keras's source publishes for it
    repo_dir: str = ""  #: where the dataset's own repository keeps the files ("data/fashion")
    aliases: tuple[str, ...] = field(default=())
    label_columns: tuple[str, ...] = field(default=())  #: when labels are rows (QMNIST); 0 is the class
    #: splits that are slices of another, as torchvision names them: name -> (split, start, stop)
    slices: Mapping[str, tuple[str, int, int | None]] = field(default_factory=dict)
    archive: Archive | None = None  #: the archive the files are members of (EMNIST)
    transposed: bool = False  #: images stored transposed (EMNIST): ``load(..., upright=True)`` turns them
    notes: str = ""

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names, in registry order (slices not included)."""
        return tuple(dict.fromkeys(f.split for f in self.files))

    def file(self, split: str, kind: str) -> FileInfo:
        for f in self.files:
            if f.split == split and f.kind == kind:
                return f
        raise KeyError((split, kind))


DATASETS: dict[str, Dataset] = {}  #: name -> Dataset; the built-in ones first (Fashion-MNIST, the default)
ARCHIVES: dict[str, Archive] = {}  #: name -> Archive


def get(name: str) -> Dataset:
    """The dataset called ``name`` or one of its aliases, case-insensitively; ValueError naming the
    known ones. The files of ``$FMNIST_REGISTRY`` are registered first (once each): one that is
    refused is logged and named here, and stops neither the others nor the built-in datasets."""
    refused = load_env_registries()
    if not isinstance(name, str):
        raise TypeError(f"a dataset name is a str, not {type(name).__name__}")
    for d in DATASETS.values():
        if name.casefold() in (n.casefold() for n in (d.name, *d.aliases)):
            return d
    note = "".join(f"\n  (refused from $FMNIST_REGISTRY: {e})" for e in refused)
    raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}{note}")


# --- checking descriptions -------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  #: one path component, part of a URL too
_DTYPES = tuple(name for code, name, _ in _core.ELEMENT_TYPES if code is not None)


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(v: str) -> bool:
    return bool(_SAFE.fullmatch(v)) and ".." not in v


class _Problems(list[str]):
    """The problems of one description, each prefixed with its field."""

    def add(self, where: str, problem: str) -> None:
        self.append(f"{where}: {problem}")

    def text(self, where: str, v: Any, *, empty: bool = True) -> None:
        if not isinstance(v, str) or not (empty or v):
            self.add(where, f"must be a string, not {_kind(v)}" if not isinstance(v, str) else "must not be empty")

    def component(self, where: str, v: Any, *, empty: bool = False) -> None:
        """A folder or file name that cannot climb out of its folder."""
        if not isinstance(v, str):
            self.add(where, f"must be a string, not {_kind(v)}")
        elif not (empty and v == "") and not _plain(v):
            self.add(where, f"{v!r} must be one folder or file name: letters, digits, '.', '_', '+', '-'")

    def relative(self, where: str, v: Any, *, trailing: bool = False) -> None:
        """A relative path of plain components ("data/fashion"; "gzip/" when ``trailing``)."""
        if not isinstance(v, str) or v == "":
            return self.text(where, v)
        body = v[:-1] if trailing and v.endswith("/") else v
        if (trailing and not v.endswith("/")) or not all(map(_plain, body.split("/"))):
            self.add(where, f"{v!r} must be a relative path of plain folder names{', ending in /' if trailing else ''}")

    def digest(self, where: str, v: Any, n: int) -> None:
        if v is not None and (not isinstance(v, str) or not re.fullmatch(f"[0-9a-f]{{{n}}}", v)):
            self.add(where, f"must be {n} lowercase hex digits, not {v!r}")

    def digests(self, where: str, item: FileInfo | Archive, keys: tuple[str, ...], needed: bool = True) -> None:
        for key in keys:
            self.digest(f"{where}.{key}", getattr(item, key), 32 if key.endswith("md5") else 64)
        if needed and not any(getattr(item, k) for k in keys):
            self.add(where, f"no digest ({', '.join(keys)}): nothing could verify it")

    def positive(self, where: str, v: Any, *, optional: bool = False) -> None:
        if not (optional and v is None) and (not _is_int(v) or v < 1):
            self.add(where, f"must be a positive whole number, not {v!r}")

    def strings(self, where: str, v: Any, check: Callable[[str, Any], None]) -> None:
        if not isinstance(v, tuple):
            return self.add(where, f"must be a list of strings, not {_kind(v)}")
        for k, item in enumerate(v):
            check(f"{where}[{k}]", item)

    def mirrors(self, where: str, v: Any) -> None:
        ok = ("http://", "https://", "file://")
        if not isinstance(v, tuple):
            return self.add(where, f"must be a list of base URLs, not {_kind(v)}")
        for k, url in enumerate(v):
            if not (isinstance(url, str) and url.startswith(ok) and url.endswith("/")):
                self.add(f"{where}[{k}]", f"{url!r} must be an http://, https:// or file:// base URL ending in '/'")


def archive_problems(a: Any, where: str = "archive") -> list[str]:
    """Everything wrong with an archive description (empty when it can be registered)."""
    if not isinstance(a, Archive):
        return [f"{where}: must be an archive description, not {_kind(a)}"]
    p = _Problems()
    p.component(f"{where}.name", a.name)
    p.component(f"{where}.file", a.file)
    p.positive(f"{where}.max_size", a.max_size)
    p.digests(where, a, ("stored_md5", "stored_sha256"))
    p.relative(f"{where}.members", a.members, trailing=True)
    p.mirrors(f"{where}.mirrors", a.mirrors)
    p.text(f"{where}.notes", a.notes)
    return p


def _file_problems(p: _Problems, f: Any, where: str, archived: bool) -> None:
    if not isinstance(f, FileInfo):
        return p.add(where, f"must be a file description, not {_kind(f)}")
    p.component(f"{where}.name", f.name)
    p.component(f"{where}.split", f.split)
    if f.kind not in ("images", "labels"):
        p.add(f"{where}.kind", f"must be 'images' or 'labels', not {f.kind!r}")
    if f.dtype not in _DTYPES:
        p.add(f"{where}.dtype", f"must be one of {', '.join(_DTYPES)}, not {f.dtype!r}")
    s = f.shape
    if not (isinstance(s, tuple) and 0 < len(s) <= _core.MAX_NDIM and all(_is_int(d) and d > 0 for d in s)):
        p.add(f"{where}.shape", f"must be a list of 1 to {_core.MAX_NDIM} positive sizes, not {s!r}")
    p.positive(f"{where}.stored_size", f.stored_size, optional=True)
    p.digests(where, f, ("stored_md5", "stored_sha256", "content_md5", "content_sha256"), needed=not archived)


def problems(ds: Dataset) -> list[str]:
    """Everything wrong with a dataset description (empty when it can be registered)."""
    p = _Problems()
    p.component("name", ds.name)
    for key in ("title", "homepage", "license", "notes"):
        p.text(key, getattr(ds, key))
    p.strings("aliases", ds.aliases, p.component)
    p.strings("classes", ds.classes, lambda w, v: p.text(w, v, empty=False))
    if ds.classes == ():
        p.add("classes", "must be a non-empty list of names")
    p.strings("label_columns", ds.label_columns, p.text)
    p.mirrors("mirrors", ds.mirrors)
    for key in ("torchvision_name", "keras_name", "debian_name", "keras_npz"):
        p.component(key, getattr(ds, key), empty=True)
    p.relative("repo_dir", ds.repo_dir)
    if ds.keras_npz or ds.keras_npz_sha256:
        p.digest("keras_npz_sha256", ds.keras_npz_sha256 or "", 64)
    if not isinstance(ds.transposed, bool):
        p.add("transposed", f"must be true or false, not {_kind(ds.transposed)}")
    p += archive_problems(ds.archive) if ds.archive is not None else []
    if not isinstance(ds.files, tuple) or not ds.files:
        p.add("files", f"must be a non-empty list of file descriptions, not {_kind(ds.files)}")
        return p
    for k, f in enumerate(ds.files):
        _file_problems(p, f, f"files[{k}] ({getattr(f, 'name', '?')!r})", ds.archive is not None)
    if p:
        return p  # the checks below assume well-formed files
    for what, values in (("file name", [f.name for f in ds.files]), ("cache name", [f.stem for f in ds.files])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:  # the cache name: the decompressed file's, <root>/<name>/<stem>
            holders = [f.name for f in ds.files if twice[0] in (f.name, f.stem)]
            p.add("files", f"{' and '.join(map(repr, holders))} have the same {what} {twice[0]!r}")
    for split in ds.splits:
        kinds = sorted(f.kind for f in ds.files if f.split == split)
        if kinds != ["images", "labels"]:
            p.add("files", f"split {split!r} must have one images file and one labels file, has {kinds}")
        elif (n := ds.file(split, "images").shape[0]) != (m := ds.file(split, "labels").shape[0]):
            p.add("files", f"split {split!r}: {n} images but {m} labels")
    if not isinstance(ds.slices, Mapping):
        p.add("slices", f"must be a table of name -> [split, start, stop], not {_kind(ds.slices)}")
        return p
    for name, cut in ds.slices.items():
        where = f"slices.{name}"
        if not isinstance(name, str) or not _SAFE.fullmatch(name) or name in ds.splits:
            p.add(where, "a slice needs a plain name that is not one of the splits")
        elif not (isinstance(cut, tuple) and len(cut) == 3 and cut[0] in ds.splits):
            p.add(where, f"must be [split, start, stop] of one of the splits {list(ds.splits)}, not {cut!r}")
        else:
            rows, (start, stop) = ds.file(cut[0], "labels").shape[0], cut[1:]
            if not (
                _is_int(start) and 0 <= start < rows and (stop is None or (_is_int(stop) and start < stop <= rows))
            ):
                p.add(
                    where, f"start and stop must cut rows 0 to {rows} of {cut[0]!r} (stop may be null), not {cut[1:]}"
                )
    return p


def _taken(name: str, exclude: str | None) -> str | None:
    """What registered dataset (name or alias) or archive (folder) already has ``name``."""
    key = name.casefold()
    for d in DATASETS.values():
        if d.name != exclude and key in (n.casefold() for n in (d.name, *d.aliases)):
            return f"the registered dataset {d.name!r}"
    folders = (a.name for a in ARCHIVES.values() if a.name.casefold() == key)
    return next((f"the folder of the registered archive {a!r}" for a in folders), None)


def register_archive(archive: Archive) -> Archive:
    """Adds an archive (a registered dataset's is registered with it); the same one again does
    nothing; another under a taken name is refused."""
    found = archive_problems(archive)
    if found:
        raise RegistryError(f"archive {getattr(archive, 'name', '?')!r}: " + "; ".join(found))
    known = ARCHIVES.get(archive.name)
    if known is not None and known != archive:
        raise RegistryError(f"archive {archive.name!r}: another archive is registered under that name")
    clash = _taken(archive.name, None) if known is None else None
    if clash:
        raise RegistryError(f"archive {archive.name!r}: its folder name is taken by {clash}")
    return ARCHIVES.setdefault(archive.name, archive)


def register(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Adds ``dataset`` to the registry: then ``load``, ``load_data``, ``download``, discovery, the
    warm cache, the command line and ``fmnist.torch`` serve it as they serve the built-in ones. An
    equal description again does nothing; another under a taken name or alias (case-insensitively,
    archives' folder names too) is refused unless ``replace``. ``RegistryError`` names every problem."""
    if not isinstance(dataset, Dataset):
        raise RegistryError(f"register() takes an fmnist.Dataset, not {_kind(dataset)}")
    found = problems(dataset)
    if found:
        raise RegistryError(f"dataset {dataset.name!r}: " + "; ".join(found))
    if DATASETS.get(dataset.name) == dataset:
        return dataset
    for n in (dataset.name, *dataset.aliases):
        clash = _taken(n, dataset.name if replace else None)
        if clash:
            hint = " (pass replace=True to redefine it)" if "dataset" in clash else ""
            raise RegistryError(f"dataset {dataset.name!r}: {n!r} already names {clash}{hint}")
    if dataset.archive is not None:
        try:
            register_archive(dataset.archive)
        except RegistryError as e:
            raise RegistryError(f"dataset {dataset.name!r}: {e}") from None
    DATASETS[dataset.name] = dataset
    return dataset


# --- registry files ----------------------------------------------------------------------------

_TUPLES = ("classes", "mirrors", "aliases", "label_columns", "shape")


def _table(cls: type, value: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``cls`` a file's table gives, lists made tuples (the checks name anything
    else); unknown or missing keys refused."""
    if not isinstance(value, Mapping):
        raise RegistryError(f"{where}: must be a table/object, not {_kind(value)}")
    known = [f.name for f in fields(cls)]
    unknown, missing = sorted(str(k) for k in value if k not in known), [k for k in required if k not in value]
    why = [f"unknown key(s) {unknown}; known: {', '.join(known)}"] * bool(unknown)
    why += [f"missing {', '.join(missing)}"] * bool(missing)
    if why:
        raise RegistryError(f"{where}: " + "; ".join(why))
    out: dict[str, Any] = {k: tuple(v) if k in _TUPLES and isinstance(v, list) else v for k, v in value.items()}
    if isinstance(out.get("slices"), dict):
        out["slices"] = {k: tuple(v) if isinstance(v, list) else v for k, v in out["slices"].items()}
    return out


def _named(kind: str, description: Any, source: str) -> str:
    return f"{source}: {kind} {description.get('name', '?') if isinstance(description, Mapping) else '?'!r}"


def archive_from_dict(description: Mapping[str, Any], source: str = "<dict>") -> Archive:
    """An ``Archive`` from its ``[[archive]]`` table, checked."""
    where = _named("archive", description, source)
    archive = Archive(**_table(Archive, description, where, ("name", "file", "max_size")))
    found = archive_problems(archive, "")
    if found:
        raise RegistryError(f"{where}: " + "; ".join(s.lstrip(".: ") for s in found))
    return archive


def from_dict(
    description: Mapping[str, Any], source: str = "<dict>", archives: Mapping[str, Archive] | None = None
) -> Dataset:
    """A ``Dataset`` from its ``[[dataset]]`` table, checked whole: ``RegistryError`` names the
    source, the dataset and each field at fault. ``archive`` names one of ``archives`` or the registry's."""
    where = _named("dataset", description, source)
    values = _table(Dataset, description, where, ("name", "classes", "files"))
    files = values["files"]
    if not isinstance(files, list) or not files:
        raise RegistryError(f"{where}: files: must be a non-empty list of file tables, not {_kind(files)}")
    required = ("name", "split", "kind", "shape")
    values["files"] = tuple(
        FileInfo(**_table(FileInfo, f, f"{where}: files[{k}]", required)) for k, f in enumerate(files)
    )
    if values.get("archive") is not None:
        pool, ref = {**ARCHIVES, **(archives or {})}, values["archive"]
        if not isinstance(ref, str) or ref not in pool:
            raise RegistryError(f"{where}: archive: must name an archive ([[archive]]) of {sorted(pool)}, not {ref!r}")
        values["archive"] = pool[ref]
    ds = Dataset(**{"title": values["name"], "homepage": "", "license": "", "mirrors": (), **values})
    found = problems(ds)
    if found:
        raise RegistryError(f"{where}: " + "; ".join(found))
    return ds


def to_dict(item: Dataset | Archive) -> dict[str, Any]:
    """A dataset (or an archive) as a registry file's table describes it (``from_dict`` and
    ``archive_from_dict`` give it back; a dataset's archive is named)."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else {k: list(c) for k, c in v.items()} if isinstance(v, Mapping) else v

    out = {f.name: plain(getattr(item, f.name)) for f in fields(item) if f.name not in ("files", "archive")}
    if isinstance(item, Archive):
        return {k: v for k, v in out.items() if v not in (None, "")}
    out = {k: v for k, v in out.items() if v or k in ("name", "classes", "mirrors")}
    out.update({"archive": item.archive.name} if item.archive else {})
    out["files"] = [{k: plain(v) for k, v in vars(i).items() if v is not None} for i in item.files]
    return out


REGISTRY_MAX_BYTES = 1 << 20  #: the largest registry file read (the built-in one is about 15 KiB)


def parse_registry(path: str | os.PathLike[str]) -> tuple[list[Archive], list[Dataset]]:
    """The archives and datasets a registry file describes, all checked, none registered: a TOML
    (``.toml``) or JSON file of a list ``dataset`` and an optional list ``archive`` (tables as
    ``to_dict`` writes them)."""
    path, kind = os.fspath(path), "TOML" if os.fspath(path).endswith(".toml") else "JSON"
    try:
        raw = read_small(path, REGISTRY_MAX_BYTES)
    except ValueError as e:
        raise RegistryError(f"{path}: {e}; a registry is a regular TOML or JSON file of at most 1 MiB") from None
    try:
        if kind == "TOML":
            tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli")
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = read_json(raw)
    except (ValueError, RecursionError) as e:  # TOMLDecodeError, JSONDecodeError, UnicodeDecodeError
        raise RegistryError(f"{path}: not valid {kind}: {e or 'nested too deeply'}") from None
    if not isinstance(data, dict) or set(data) - {"dataset", "archive"}:
        raise RegistryError(f"{path}: a registry holds the lists 'dataset' and (optionally) 'archive', nothing else")
    entries, archive_entries = data.get("dataset"), data.get("archive", [])
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{path}: expected a non-empty list 'dataset' of dataset descriptions")
    if not isinstance(archive_entries, list):
        raise RegistryError(f"{path}: 'archive' must be a list of archive descriptions")
    archives = {a.name: a for a in (archive_from_dict(a, path) for a in archive_entries)}
    if len(archives) != len(archive_entries):
        raise RegistryError(f"{path}: two archives have the same name")
    found = [from_dict(e, path, archives) for e in entries]
    taken = {a.casefold(): f"its archive {a!r}" for a in archives}
    for d in found:
        for key, n in (("name", d.name), *(("aliases", a) for a in d.aliases)):
            other = taken.setdefault(n.casefold(), f"its dataset {d.name!r}")
            if other != f"its dataset {d.name!r}" or (key == "aliases" and n.casefold() == d.name.casefold()):
                raise RegistryError(f"{path}: dataset {d.name!r}: {key}: {n!r} also names {other}")
    return list(archives.values()), found


def load_registry(path: str | os.PathLike[str], *, replace: bool = False) -> list[Dataset]:
    """Registers the datasets (and archives) of a registry file (``parse_registry``), checked whole
    first: if any of it is refused, ``RegistryError`` names the file and nothing of it is registered."""
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
    """Registers the files of ``$FMNIST_REGISTRY`` (os.pathsep-separated), once each; one refused
    is logged and returned with the others refused, and stops none of the rest."""
    for path in os.environ.get("FMNIST_REGISTRY", "").split(os.pathsep):
        if path and path not in _loaded_from_env:
            try:
                load_registry(path)
                _loaded_from_env[path] = None
            except (RegistryError, OSError) as e:
                log.warning("$FMNIST_REGISTRY: %s", e)
                _loaded_from_env[path] = e
    return [e for e in _loaded_from_env.values() if e is not None]


BUILTIN = Path(__file__).parent / "registry" / "builtin.json"  #: loaded as users' registry files are
load_registry(BUILTIN)
FASHION_MNIST, MNIST, KMNIST, QMNIST = (DATASETS[n] for n in ("fashion-mnist", "mnist", "kmnist", "qmnist"))
