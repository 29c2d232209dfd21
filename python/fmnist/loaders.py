"""Datasets by name: where the files are, how they are found, verified, downloaded and cached,
and the drop-in loaders built on that.

Where data lives: ``root`` if given, else ``$FMNIST_HOME``, else the platform's cache folder
(``~/.cache/fmnist`` on Linux, see ``default_root``); a dataset
lives in ``<root>/<name>/``. Before downloading, verified copies already on the machine are
found and used in place: torchvision's ``<dir>/FashionMNIST/raw/`` (.gz or decompressed), keras's
``~/.keras/datasets/fashion-mnist/``, Debian's ``/usr/share/datasets/fashion-mnist/`` and a clone
of the dataset's repository (``data/fashion/``). The folders searched are ``<root>`` itself, then
``$FMNIST_SEARCH_PATH`` (os.pathsep-separated) if set, else the well-known ones in
``SEARCH_ROOTS``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy.typing as npt

from . import cache as cache_mod
from .cache import Cache
from .datasets import SPLITS, Dataset, FileInfo, get
from .download import DownloadError, fetch
from .idx import read_idx_many
from .verify import Verdict, read_verified

#: The package's logger: what was found, rejected, downloaded and cached (INFO), cache hits (DEBUG).
log = logging.getLogger("fmnist")

PathArg = Union[str, "os.PathLike[str]", None]
Array = npt.NDArray[Any]

#: Folders searched for copies other loaders left (used when $FMNIST_SEARCH_PATH is not set).
SEARCH_ROOTS: tuple[Path, ...] = (
    Path.home() / ".keras" / "datasets",
    Path("/usr/share/datasets"),
    Path("data"),
    Path("."),
)


class DatasetNotFoundError(FileNotFoundError):
    """No verified copy was found and downloading was off (or failed)."""


def data_root(root: PathArg = None) -> Path:
    """``root``, else ``$FMNIST_HOME``, else the platform's cache folder (``default_root``)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("FMNIST_HOME")
    return Path(env).expanduser() if env else default_root()


def default_root() -> Path:
    """The platform's user cache folder for fmnist, by platformdirs' rules:
    ``$XDG_CACHE_HOME/fmnist`` (``~/.cache/fmnist``) on Linux, ``~/Library/Caches/fmnist`` on
    macOS, ``%LOCALAPPDATA%\\fmnist\\Cache`` on Windows. A ``~/.cache/fmnist`` that an earlier
    fmnist filled keeps being used while the platform folder does not exist."""
    from platformdirs import user_cache_path

    platform = user_cache_path("fmnist", appauthor=False)
    legacy = Path.home() / ".cache" / "fmnist"
    if legacy != platform and legacy.is_dir() and not platform.exists():
        return legacy
    return platform


def search_roots() -> list[Path]:
    env = os.environ.get("FMNIST_SEARCH_PATH")
    if env is not None:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return list(SEARCH_ROOTS)


@dataclass(frozen=True)
class Found:
    """Where a file was found and why it was accepted."""

    path: Path
    layout: str
    verdict: Verdict


class Store:
    """One dataset under one data root."""

    def __init__(self, dataset: Dataset, root: PathArg = None) -> None:
        self.dataset = dataset
        self.root = data_root(root)
        self.folder = self.root / dataset.name
        self.cache = Cache(self.folder)
        #: what was found where, by file name (filled by `arrays`)
        self.found: dict[str, Found] = {}

    def folders(self) -> list[tuple[Path, str]]:
        """Folders to look in, in order, with the layout each one is."""
        ds = self.dataset
        out = [(self.folder, "fmnist")]
        if ds.torchvision_name:
            out.append((self.root / ds.torchvision_name / "raw", "torchvision"))
        for base in search_roots():
            out.append((base / ds.name, "fmnist / Debian"))
            if ds.keras_name and ds.keras_name != ds.name:
                out.append((base / ds.keras_name, "keras"))
            if ds.torchvision_name:
                out.append((base / ds.torchvision_name / "raw", "torchvision"))
            if ds.repo_dir:
                out.append((base / ds.repo_dir, "dataset repository"))
        seen: set[Path] = set()
        unique = []
        for folder, layout in out:
            key = folder.resolve() if folder.exists() else folder
            if key not in seen:
                seen.add(key)
                unique.append((folder, layout))
        return unique

    def candidates(self, info: FileInfo) -> list[tuple[Path, str]]:
        """Existing files that may be ``info``: .gz first, then a decompressed copy."""
        out = []
        for folder, layout in self.folders():
            for name in (info.name, info.stem):
                path = folder / name
                if path.is_file():
                    out.append((path, layout))
        return out

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The dataset's cross-process lock: one process downloads or writes the cache at a time."""
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock")):
            yield

    def find(self, infos: Sequence[FileInfo]) -> tuple[dict[str, Array], dict[str, list[str]]]:
        """Verified copies already on the machine: arrays by file name, and for the files not
        found, why each candidate was turned down."""
        arrays: dict[str, Array] = {}
        rejected: dict[str, list[str]] = {i.name: [] for i in infos}
        queues = {i.name: self.candidates(i) for i in infos}
        pending = [i for i in infos if queues[i.name]]
        while pending:
            # The next candidate of every file still wanted, read and judged in parallel.
            heads = [(i, queues[i.name].pop(0)) for i in pending]
            results = read_verified([p for _, (p, _) in heads], [i for i, _ in heads])
            for (info, (path, layout)), (array, verdict) in zip(heads, results):
                if verdict.ok:
                    arrays[info.name] = array
                    self.found[info.name] = Found(path, layout, verdict)
                    log.info("%s: found %s (%s layout), verified: %s", info.name, path, layout, verdict.rule)
                else:
                    rejected[info.name].append(f"{path} ({layout}): " + "; ".join(verdict.problems))
                    log.info("%s: rejected %s (%s layout): %s", info.name, path, layout, "; ".join(verdict.problems))
            pending = [i for i in pending if i.name not in arrays and queues[i.name]]
        return arrays, {k: v for k, v in rejected.items() if k not in arrays}

    def arrays(
        self,
        infos: Sequence[FileInfo],
        *,
        download: bool = True,
        mirrors: Sequence[str] | None = None,
        cache: bool | None = None,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> list[Array]:
        """The verified arrays of ``infos``: from the warm cache, else a verified copy on the
        machine, else downloaded (when ``download``)."""
        check_network_args(timeout, retries)
        urls = mirror_list(mirrors, self.dataset)  # checked before anything is read
        use_cache = cache_mod.enabled(cache)
        out: dict[str, Array] = {}
        if use_cache:
            for info in infos:
                hit = self.cache.get(info)
                if hit is not None:
                    log.debug("%s: warm cache %s", info.name, self.cache.path(info))
                    out[info.name] = hit
                    self.found[info.name] = Found(
                        self.cache.path(info), "fmnist warm cache", Verdict(True, "stamped by an earlier verification")
                    )
        todo = [i for i in infos if i.name not in out]
        fresh, rejected = self.find(todo) if todo else ({}, {})
        out.update(fresh)
        todo = [i for i in todo if i.name not in out]
        if todo and download:
            with self.lock():
                # Another process may have finished the work while we waited for the lock.
                again, _ = self.find(todo)
                out.update(again)
                fresh.update(again)
                for info in todo:
                    if info.name in out:
                        continue
                    array, verdict, path = fetch(info, self.folder, urls, timeout=timeout, retries=retries)
                    out[info.name] = fresh[info.name] = array
                    self.found[info.name] = Found(path, "fmnist (downloaded)", verdict)
                    log.info("%s: downloaded to %s, verified: %s", info.name, path, verdict.rule)
            todo = []
        if todo:
            lines = []
            for info in todo:
                lines.append(f"  {info.name}: " + ("; ".join(rejected.get(info.name, [])) or "no copy found"))
            looked = ", ".join(str(f) for f, _ in self.folders())
            raise DatasetNotFoundError(
                f"{self.dataset.name}: no verified copy of {len(todo)} file(s) and download=False:\n"
                + "\n".join(lines)
                + f"\nlooked in: {looked}"
            )
        if use_cache and fresh:
            self._cache(infos, fresh)
        return [out[i.name] for i in infos]

    def _cache(self, infos: Sequence[FileInfo], fresh: dict[str, Array]) -> None:
        try:
            with self.lock():
                self.cache.clean_temporaries()  # of writers killed before their rename
                for info in infos:
                    if info.name in fresh and self.cache.status(info) != "fresh":
                        if self.cache.put(info, fresh[info.name], self.found[info.name].verdict.content_sha256):
                            log.info("%s: cached as %s", info.name, self.cache.path(info))
        except OSError as e:
            log.info("%s: not cached (%s): loads still work, uncached", self.dataset.name, e)


def mirror_list(mirrors: Sequence[str] | None, dataset: Dataset) -> list[str]:
    """The base URLs to try: ``mirrors`` as given, or the registry's when it is None."""
    if mirrors is None:
        return list(dataset.mirrors)
    if isinstance(mirrors, (str, bytes)):
        raise TypeError(f"mirrors must be a list of base URLs, not a single {type(mirrors).__name__}: [{mirrors!r}]")
    urls = list(mirrors)
    if not urls:
        raise ValueError("mirrors is empty: pass None to use the registry's mirrors, or at least one base URL")
    bad = [u for u in urls if not isinstance(u, str) or not u.startswith(("http://", "https://", "file://"))]
    if bad:
        raise ValueError(f"mirrors must be http://, https:// or file:// URLs; not {bad[0]!r}")
    return urls


def check_network_args(timeout: float, retries: int) -> None:
    """Clear errors for a timeout or retry count that would make a download surprising."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"retries must be an int >= 1 (attempts per mirror), not {retries!r}")


def _split_files(ds: Dataset, split: str) -> list[FileInfo]:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return [ds.file(split, "images"), ds.file(split, "labels")]


def load(
    name: str = "fashion-mnist",
    split: str = "train",
    *,
    root: PathArg = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    cache: bool | None = None,
) -> tuple[Array, Array]:
    """``(images, labels)`` of one split: images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8,
    verified. From the warm cache, a verified copy on the machine, or a download."""
    store = Store(get(name), root)
    images, labels = store.arrays(_split_files(store.dataset, split), download=download, mirrors=mirrors, cache=cache)
    return images, labels


def load_data(
    name: str = "fashion-mnist",
    *,
    root: PathArg = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    cache: bool | None = None,
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """``((x_train, y_train), (x_test, y_test))``, as ``keras.datasets.fashion_mnist.load_data()``
    returns them (uint8, ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``)."""
    store = Store(get(name), root)
    files = _split_files(store.dataset, "train") + _split_files(store.dataset, "test")
    x_train, y_train, x_test, y_test = store.arrays(files, download=download, mirrors=mirrors, cache=cache)
    return (x_train, y_train), (x_test, y_test)


def load_mnist(path: str | os.PathLike[str], kind: str = "train") -> tuple[Array, Array]:
    """The dataset repository's ``utils/mnist_reader.load_mnist``: reads
    ``<path>/<kind>-labels-idx1-ubyte.gz`` and ``<path>/<kind>-images-idx3-ubyte.gz`` (``kind`` is
    "train" or "t10k") and returns images ``(N, 784)`` uint8 and labels ``(N,)`` uint8."""
    labels_path = os.path.join(path, f"{kind}-labels-idx1-ubyte.gz")
    images_path = os.path.join(path, f"{kind}-images-idx3-ubyte.gz")
    labels, images = read_idx_many([labels_path, images_path])
    return images.reshape(len(labels), -1), labels


def download(
    name: str = "fashion-mnist",
    *,
    root: PathArg = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    retries: int = 3,
) -> Path:
    """Makes sure ``<root>/<name>/`` holds a verified copy of every file of the dataset,
    downloading what is missing or fails verification; returns that folder."""
    store = Store(get(name), root)
    check_network_args(timeout, retries)
    urls = mirror_list(mirrors, store.dataset)
    with store.lock():
        for info in store.dataset.files:
            path = store.folder / info.name
            if path.is_file():
                ((_, verdict),) = read_verified([path], [info])
                if verdict.ok:
                    continue
                path.unlink()  # a bad file at a final path: replace it
            fetch(info, store.folder, urls, timeout=timeout, retries=retries)
    return store.folder


__all__ = [
    "DatasetNotFoundError",
    "DownloadError",
    "Store",
    "data_root",
    "default_root",
    "download",
    "load",
    "load_data",
    "load_mnist",
    "search_roots",
]
