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

import functools
import itertools
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
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

SCHEMA = Path(__file__).parent / "registry" / "schema.json"  #: a registry entry's JSON Schema
DIGESTS = ("stored_md5", "stored_sha256", "content_md5", "content_sha256")
MOST_PROBLEMS = 20  #: problems named of one description (300,000 bad names are not 300,000 lines)


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


@functools.cache
def _validator(entry: str) -> Any:
    """jsonschema's validator of an entry ("dataset", "archive") by ``SCHEMA``, where a list is a
    tuple, as descriptions hold them. Imported on first use: the tests check the built-in registry."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    tuples = cls.TYPE_CHECKER.redefine("array", lambda _, v: isinstance(v, tuple))
    validator = jsonschema.validators.extend(cls, type_checker=tuples)  # type: ignore[no-untyped-call]
    return validator({**schema, "$ref": f"#/$defs/{entry}"})


def _schema_problems(entry: str, d: Any) -> list[str]:
    """What ``SCHEMA`` refuses of a description (a table, its lists tuples; enough for ``_refuse``), as the field
    (a file by its index and name) and the schema's ``say`` for it."""
    out = []
    for e in itertools.islice(_validator(entry).iter_errors(d), MOST_PROBLEMS + 1):  # _refuse names 20
        path = list(e.absolute_path)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        if path[:1] == ["files"] and len(path) > 1 and isinstance(f := d["files"][path[1]], Mapping):
            where = where.replace(f"files[{path[1]}]", f"files[{path[1]}] ({f.get('name', '?')!r})", 1)
        if e.validator == "additionalProperties" and "properties" in e.schema:
            unknown = sorted(map(str, set(e.instance) - set(e.schema["properties"])))
            problem = f"unknown key(s) {unknown}; known: {', '.join(e.schema['properties'])}"
        elif e.validator == "required" or "say" not in e.schema:  # "'files' is a required property"
            problem = e.message
        else:
            problem = e.schema["say"].format(kind=_kind(e.instance))
        out.append(f"{where}: {problem}" if where else problem)
    if entry == "archive" and not out and not (d.get("stored_md5") or d.get("stored_sha256")):
        out.append("no digest (stored_md5, stored_sha256): nothing could verify it")
    return out


def _problems(ds: Dataset) -> list[str]:
    """What a schema cannot check of a well-formed dataset."""
    p = [
        f"files[{k}] ({f.name!r}): no digest ({', '.join(DIGESTS)}): nothing could verify it"
        for k, f in enumerate(ds.files)
        if ds.archive is None and not any(getattr(f, x) for x in DIGESTS)
    ]
    p += ["keras_npz_sha256: must be given with keras_npz"] * bool(ds.keras_npz and not ds.keras_npz_sha256)
    p += [  # the schema allows numpy 2's 64 dimensions; numpy 1 holds 32
        f"files[{k}] ({f.name!r}).shape: {len(f.shape)} dimensions, more than numpy here holds ({_core.MAX_NDIM})"
        for k, f in enumerate(ds.files)
        if len(f.shape) > _core.MAX_NDIM
    ]
    for what, values in (("file name", [f.name for f in ds.files]), ("cache name", [f.stem for f in ds.files])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:  # the cache name: the decompressed file's, <root>/<name>/<stem>
            holders = [f.name for f in ds.files if twice[0] in (f.name, f.stem)]
            p.append(f"files: {' and '.join(map(repr, holders))} have the same {what} {twice[0]!r}")
    for split in ds.splits:
        kinds = sorted(f.kind for f in ds.files if f.split == split)
        if kinds != ["images", "labels"]:
            p.append(f"files: split {split!r} must have one images file and one labels file, has {kinds}")
        elif (n := ds.file(split, "images").shape[0]) != (m := ds.file(split, "labels").shape[0]):
            p.append(f"files: split {split!r}: {n} images but {m} labels")
    for name, (split, start, stop) in ds.slices.items() if not p else ():
        rows, where = ds.file(split, "labels").shape[0] if split in ds.splits else 0, f"slices.{name}"
        if name in ds.splits or split not in ds.splits:
            p.append(f"{where}: must be [split, start, stop] of one of the splits {list(ds.splits)}, named otherwise")
        elif not (0 <= start < rows and (stop is None or start < stop <= rows)):
            cut = f"rows 0 to {rows} of {split!r} (stop may be null), not {(start, stop)}"
            p.append(f"{where}: start and stop must cut {cut}")
    return p


def _refuse(where: str, found: list[str]) -> None:
    if found:
        more = ["and more (the first are named)"] * (len(found) > MOST_PROBLEMS)
        raise RegistryError(f"{where}: " + "; ".join(found[:MOST_PROBLEMS] + more))


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
    if not isinstance(archive, Archive):
        raise RegistryError(f"register_archive() takes an fmnist.datasets.Archive, not {_kind(archive)}")
    _refuse(f"archive {archive.name!r}", _schema_problems("archive", asdict(archive)))
    return _add_archive(archive)


def _add_archive(archive: Archive) -> Archive:
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
    a, where = dataset.archive, f"dataset {dataset.name!r}"
    if a is not None and not isinstance(a, Archive):
        raise RegistryError(f"{where}: archive: must be an fmnist.datasets.Archive, not {_kind(a)}")
    _refuse(where, _schema_problems("dataset", {**asdict(dataset), "archive": a and a.name}))
    _refuse(where, _problems(dataset) + (_schema_problems("archive", asdict(a)) if a else []))
    return _add(dataset, replace)


def _add(dataset: Dataset, replace: bool) -> Dataset:
    if DATASETS.get(dataset.name) == dataset:
        return dataset
    for n in (dataset.name, *dataset.aliases):
        clash = _taken(n, dataset.name if replace else None)
        if clash:
            hint = " (pass replace=True to redefine it)" if "dataset" in clash else ""
            raise RegistryError(f"dataset {dataset.name!r}: {n!r} already names {clash}{hint}")
    if dataset.archive is not None:
        try:
            _add_archive(dataset.archive)
        except RegistryError as e:
            raise RegistryError(f"dataset {dataset.name!r}: {e}") from None
    DATASETS[dataset.name] = dataset
    return dataset


# --- registry files ----------------------------------------------------------------------------


def _tuples(v: Any, depth: int = 4) -> Any:
    """A registry file's table as a description holds it: its lists (four levels down) tuples."""
    if depth and isinstance(v, (list, tuple)):
        return tuple(_tuples(x, depth - 1) for x in v)
    return {k: _tuples(x, depth - 1) for k, x in v.items()} if depth and isinstance(v, Mapping) else v


def _named(kind: str, description: Any, source: str) -> str:
    return f"{source}: {kind} {description.get('name', '?') if isinstance(description, Mapping) else '?'!r}"


def archive_from_dict(description: Mapping[str, Any], source: str = "<dict>", *, _check: bool = True) -> Archive:
    """An ``Archive`` from its ``[[archive]]`` table, checked."""
    d = _tuples(description)
    _refuse(_named("archive", description, source), _schema_problems("archive", d) if _check else [])
    return Archive(**d)


def from_dict(
    description: Mapping[str, Any],
    source: str = "<dict>",
    archives: Mapping[str, Archive] | None = None,
    *,
    _check: bool = True,
) -> Dataset:
    """A ``Dataset`` from its ``[[dataset]]`` table, checked whole: ``RegistryError`` names the
    source, the dataset and each field at fault. ``archive`` names one of ``archives`` or the registry's."""
    where, d = _named("dataset", description, source), _tuples(description)
    _refuse(where, _schema_problems("dataset", d) if _check else [])
    pool, ref = {**ARCHIVES, **(archives or {})}, d.get("archive")
    if ref is not None and ref not in pool:
        raise RegistryError(f"{where}: archive: must name an archive ([[archive]]) of {sorted(pool)}, not {ref!r}")
    files = tuple(FileInfo(**f) for f in d["files"])
    defaults = {"title": d["name"], "homepage": "", "license": "", "mirrors": ()}
    ds = Dataset(**{**defaults, **d, "files": files, "archive": pool.get(ref)})
    _refuse(where, _problems(ds))
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


def parse_registry(path: str | os.PathLike[str], *, _check: bool = True) -> tuple[list[Archive], list[Dataset]]:
    """The archives and datasets a registry file describes, all checked, none registered: a TOML
    (``.toml``) or JSON file of a list ``dataset`` and an optional list ``archive`` (tables as
    ``to_dict`` writes them; each entry as ``SCHEMA`` describes it; only the built-in file, which
    the tests check, skips the schema, and the 70 ms of importing jsonschema)."""
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
    archives = {a.name: a for a in (archive_from_dict(a, path, _check=_check) for a in archive_entries)}
    if len(archives) != len(archive_entries):
        raise RegistryError(f"{path}: two archives have the same name")
    found = [from_dict(e, path, archives, _check=_check) for e in entries]
    taken = {a.casefold(): f"its archive {a!r}" for a in archives}
    for d in found:
        for key, n in (("name", d.name), *(("aliases", a) for a in d.aliases)):
            other = taken.setdefault(n.casefold(), f"its dataset {d.name!r}")
            if other != f"its dataset {d.name!r}" or (key == "aliases" and n.casefold() == d.name.casefold()):
                raise RegistryError(f"{path}: dataset {d.name!r}: {key}: {n!r} also names {other}")
    return list(archives.values()), found


def load_registry(path: str | os.PathLike[str], *, replace: bool = False, _check: bool = True) -> list[Dataset]:
    """Registers the datasets (and archives) of a registry file (``parse_registry``), checked whole
    first: if any of it is refused, ``RegistryError`` names the file and nothing of it is registered."""
    archives, found = parse_registry(path, _check=_check)
    before = (dict(DATASETS), dict(ARCHIVES))
    try:
        for a in archives:
            _add_archive(a)
        return [_add(ds, replace) for ds in found]
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
load_registry(BUILTIN, _check=False)
FASHION_MNIST, MNIST, KMNIST, QMNIST = (DATASETS[n] for n in ("fashion-mnist", "mnist", "kmnist", "qmnist"))
