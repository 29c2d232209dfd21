"""Datasets by name: where the files are, how they are found, verified, downloaded and cached,
and the drop-in loaders built on that.

Where data lives: ``root`` if given, else ``$FMNIST_HOME``, else the platform's cache folder
(``~/.cache/fmnist`` on Linux, see ``default_root``); a dataset
lives in ``<root>/<name>/``. Before downloading, verified copies already on the machine are
found and used in place: torchvision's ``<dir>/FashionMNIST/raw/`` (.gz, or decompressed: then
mapped where it lies), keras's ``$KERAS_HOME/datasets/fashion-mnist/`` (``~/.keras``; MNIST as
``mnist.npz``), Debian's ``/usr/share/datasets/fashion-mnist/`` and a clone of the dataset's
repository (``data/fashion/``). ``Store.folders`` lists them: ``<root>`` itself, then the folders of
``$FMNIST_SEARCH_PATH`` (os.pathsep-separated) if set, else the ones other loaders use.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import cache as cache_mod
from .cache import STAMPS, Cache
from .datasets import Dataset, FileInfo, get
from .download import DownloadError, fetch
from .errors import Error
from .idx import read_idx_many
from .verify import (
    Verdict,
    check_archive,
    content_sha256,
    has_content_digest,
    judge_in_place,
    read_keras_npz,
    read_members,
    read_verified,
)

#: The package's logger: what was found, rejected, downloaded and cached (INFO), cache hits (DEBUG).
log = logging.getLogger("fmnist")

PathArg = Union[str, "os.PathLike[str]", None]
Array = npt.NDArray[Any]

#: Debian's packages put datasets here (``dataset-fashion-mnist``: ``fashion-mnist/``).
DEBIAN = Path("/usr/share/datasets")


class DatasetNotFoundError(Error, FileNotFoundError):
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


def search_roots() -> list[Path] | None:
    """The folders of ``$FMNIST_SEARCH_PATH`` (os.pathsep-separated), or None when it is not set
    (then the folders other loaders use by default are searched: see ``Store.folders``)."""
    env = os.environ.get("FMNIST_SEARCH_PATH")
    if env is None:
        return None
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]


def keras_datasets_dirs() -> list[Path]:
    """Where keras keeps downloaded datasets, by keras's own rules (``keras.utils.get_file``):
    ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``; ``/tmp/.keras/datasets`` too when that
    home exists but cannot be written (keras then falls back to it)."""
    env = os.environ.get("KERAS_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".keras"
    out = [home / "datasets"]
    if home.exists() and not os.access(home, os.W_OK):
        out.append(Path("/tmp") / ".keras" / "datasets")
    return out


@dataclass(frozen=True)
class Found:
    """Where a file was found and why it was accepted. ``in_place``: a decompressed copy mapped
    where it lies (stamped by the cache, never copied into it)."""

    path: Path
    layout: str
    verdict: Verdict
    in_place: bool = False


@dataclass(frozen=True)
class Candidate:
    """A file that may be a copy of one registry file: ``decompressed`` by its name."""

    path: Path
    layout: str
    decompressed: bool


class Store:
    """One dataset under one data root."""

    def __init__(
        self, dataset: Dataset, root: PathArg = None, *, folder: PathArg = None, layout: str = "fmnist"
    ) -> None:
        """``folder`` (default ``<root>/<name>``) is where downloads and the cache go, and
        ``layout`` its name: ``fmnist.torch`` uses torchvision's ``<root>/<Name>/raw``, so that
        torchvision finds what fmnist downloaded."""
        self.dataset = dataset
        self.root = data_root(root)
        self.folder = Path(folder) if folder is not None else self.root / dataset.name
        self.layout = layout
        self.cache = Cache(self.folder)
        #: what was found where, by file name (filled by `arrays`)
        self.found: dict[str, Found] = {}
        self._archive_verdicts: dict[Path, Verdict] = {}

    def folders(self) -> list[tuple[Path, str]]:
        """Folders to look in, in order, with the name of the layout each one is: the data root's
        (fmnist's own, and torchvision's when the root is torchvision's), then each folder of
        ``$FMNIST_SEARCH_PATH`` (fmnist's, torchvision's and a repository clone's layout in it),
        or when that is not set the folders other loaders use by default: keras's datasets
        folder, Debian's, and torchvision's, fmnist's and a clone's under the working folder."""
        ds = self.dataset
        out = [(self.folder, self.layout), (self.root / ds.name, "fmnist")]
        if ds.torchvision_name:
            out.append((self.root / ds.torchvision_name / "raw", "torchvision"))
        bases = search_roots()
        if bases is None:
            out += [(d / ds.keras_name, "keras") for d in keras_datasets_dirs() if ds.keras_name]
            if ds.debian_name:
                out.append((DEBIAN / ds.debian_name, "Debian"))
            bases = [Path("data"), Path(".")]  # torchvision's tutorials use root="data"
            if ds.repo_dir:
                out.append((Path(ds.repo_dir), "dataset repository"))  # the working folder is a clone
        for base in bases:
            out.append((base / ds.name, "fmnist"))
            if ds.torchvision_name:
                out.append((base / ds.torchvision_name / "raw", "torchvision"))
            if ds.repo_dir and base != Path("data"):
                out.append((base / ds.repo_dir, "dataset repository"))
        seen: set[Path] = set()
        unique = []
        for folder, layout in out:
            key = folder.resolve() if folder.exists() else folder
            if key not in seen:
                seen.add(key)
                unique.append((folder, layout))
        return unique

    def keras_npz_paths(self) -> list[Path]:
        """Where keras's single-file form of the dataset (``mnist.npz``) would be."""
        name = self.dataset.keras_npz
        if not name:
            return []
        bases = search_roots()
        return [b / name for b in (keras_datasets_dirs() if bases is None else bases)]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        """Existing files that may be ``info``, in the order they are tried. Never the cache file
        (``<root>/<name>/<stem>``): the cache is read only through ``Cache``, and not at all when
        it is off. Decompressed copies come first when the registry has a content digest to
        judge them by (they are then mapped in place, nothing to inflate), else after the .gz
        files, whose verified content proves them."""
        gz: list[Candidate] = []
        raw: list[Candidate] = []
        cached = self.cache.path(info)
        for folder, layout in self.folders():
            for name, bucket in ((info.name, gz), (info.stem, raw)):
                path = folder / name
                if path.is_file() and path != cached:
                    # Only uint8 copies are mapped in place (others need a byteswap: read them).
                    in_place = bucket is raw and info.dtype == "uint8"
                    (raw if in_place else gz).append(Candidate(path, layout, decompressed=in_place))
        return raw + gz if has_content_digest(info) else gz + raw

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The dataset's cross-process lock: one process downloads or writes the cache at a time."""
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock")):
            yield

    def find(
        self, infos: Sequence[FileInfo], *, stamps: bool = True, archives: bool = True
    ) -> tuple[dict[str, Array], dict[str, list[str]]]:
        """Verified copies already on the machine: arrays by file name, and for the files not
        found, why each candidate was turned down. A verified decompressed copy is mapped in
        place; one the registry has no content digest for is accepted when its content equals
        that of a verified .gz of the same file (found now, or recorded in the cache's stamps
        when ``stamps``)."""
        arrays: dict[str, Array] = {}
        rejected: dict[str, list[str]] = {i.name: [] for i in infos}
        proven: dict[str, dict[str, str]] = {i.name: {} for i in infos}
        if stamps:
            for i in infos:
                digest = self.cache.verified_content(i)
                if digest:
                    proven[i.name][digest] = f"a copy verified earlier ({self.folder / STAMPS})"
        fallback: dict[str, tuple[Array, Found]] = {}
        queues = {i.name: self.candidates(i) for i in infos}
        pending = [i for i in infos if queues[i.name]]
        while pending:
            # The next candidate of every file still wanted, read and judged in parallel.
            heads = [(i, queues[i.name].pop(0)) for i in pending]
            for (info, c), (array, verdict) in zip(heads, self._judge(heads, proven)):
                if not verdict.ok:
                    why = "; ".join(verdict.problems)
                    rejected[info.name].append(f"{c.path} ({c.layout}): {why}")
                    log.info("%s: rejected %s (%s layout): %s", info.name, c.path, c.layout, why)
                    continue
                found = Found(c.path, c.layout, verdict, in_place=c.decompressed)
                log.info("%s: found %s (%s layout), verified: %s", info.name, c.path, c.layout, verdict.rule)
                rest = [q for q in queues[info.name] if q.decompressed]
                if not c.decompressed and rest and not has_content_digest(info):
                    # A decompressed copy equal to this .gz is mapped in place rather than this
                    # .gz inflated into memory and then copied into the cache.
                    proven[info.name][verdict.content_sha256] = f"the verified {c.path}"
                    fallback[info.name] = (array, found)
                    queues[info.name] = rest
                    continue
                arrays[info.name] = array
                self.found[info.name] = found
            pending = [i for i in pending if i.name not in arrays and queues[i.name]]
        for name, (array, found) in fallback.items():
            if name not in arrays:
                arrays[name] = array
                self.found[name] = found
        missing = [i for i in infos if i.name not in arrays]
        if missing and self.dataset.keras_npz:
            self._from_keras_npz(missing, arrays, rejected)
        missing = [i for i in infos if i.name not in arrays]
        if missing and archives and self.dataset.archive is not None:
            members, problems = self._from_archive(missing, download=False)
            arrays.update(members)
            for info in missing:
                rejected[info.name].extend(problems)
        return arrays, {k: v for k, v in rejected.items() if k not in arrays}

    def _judge(
        self, heads: Sequence[tuple[FileInfo, Candidate]], proven: dict[str, dict[str, str]]
    ) -> list[tuple[Any, Verdict]]:
        """Reads and judges one candidate per file: .gz files decoded and hashed in one pass,
        decompressed copies hashed as they stream past and then mapped in place."""
        results: dict[int, tuple[Any, Verdict]] = {}
        gz = [(k, i, c) for k, (i, c) in enumerate(heads) if not c.decompressed]
        raw = [(k, i, c) for k, (i, c) in enumerate(heads) if c.decompressed]
        if gz:
            judged = read_verified([c.path for _, _, c in gz], [i for _, i, _ in gz])
            results.update({k: r for (k, _, _), r in zip(gz, judged)})
        if raw:
            proofs = [proven[i.name] for _, i, _ in raw]
            judged = judge_in_place([c.path for _, _, c in raw], [i for _, i, _ in raw], proofs)
            results.update({k: r for (k, _, _), r in zip(raw, judged)})
        return [results[k] for k in range(len(heads))]

    def check_copies(self, info: FileInfo) -> list[tuple[Candidate, Verdict]]:
        """Every copy of ``info`` found (the cache excluded: see ``Cache.audit``), each judged,
        as ``fmnist verify`` reports them: .gz files first, whose verified content proves the
        decompressed copies that the registry has no content digest for."""
        copies = self.candidates(info)
        gz = [c for c in copies if not c.decompressed]
        raw = [c for c in copies if c.decompressed]
        proven: dict[str, str] = {}
        earlier = self.cache.verified_content(info)
        if earlier:
            proven[earlier] = f"a copy verified earlier ({self.folder / STAMPS})"
        out: list[tuple[Candidate, Verdict]] = []
        for c, (_, verdict) in zip(gz, read_verified([c.path for c in gz], [info] * len(gz))):
            out.append((c, verdict))
            if verdict.ok:
                proven.setdefault(verdict.content_sha256, f"the verified {c.path}")
        judged = judge_in_place([c.path for c in raw], [info] * len(raw), [proven] * len(raw))
        out += [(c, verdict) for c, (_, verdict) in zip(raw, judged)]
        for path, layout in self.archive_paths():  # EMNIST: the archive that holds the file
            if path.is_file():
                out.append((Candidate(path, f"{layout} archive", False), self.archive_verdict(path)))
        return out

    def _from_keras_npz(
        self, infos: Sequence[FileInfo], arrays: dict[str, Array], rejected: dict[str, list[str]]
    ) -> None:
        """keras's single-file form (``mnist.npz``), verified by the SHA-256 keras publishes."""
        ds = self.dataset
        for path in self.keras_npz_paths():
            if not path.is_file():
                continue
            problem, bundle = read_keras_npz(path, ds.keras_npz_sha256)
            if bundle is None:
                for info in infos:
                    rejected[info.name].append(f"{path} (keras): {problem}")
                log.info("%s: rejected %s (keras layout): %s", ds.name, path, problem)
                continue
            for info in infos:
                key = ("x_" if info.kind == "images" else "y_") + info.split
                array = bundle.get(key)
                if array is None or array.shape != info.shape or array.dtype != np.uint8:
                    rejected[info.name].append(f"{path} (keras): no uint8 {key} of shape {info.shape} in it")
                    continue
                array = np.ascontiguousarray(array)
                sha = content_sha256(info, array)
                rule = f"SHA-256 of the stored .npz matches keras's published SHA-256 of {ds.keras_npz}"
                arrays[info.name] = array
                self.found[info.name] = Found(path, "keras", Verdict(True, rule, content_sha256=sha))
                log.info("%s: found %s (keras layout), verified: %s", info.name, path, rule)
            return

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
                self._warm(info, out)
        todo = [i for i in infos if i.name not in out]
        fresh, rejected = self.find(todo, stamps=use_cache, archives=False) if todo else ({}, {})
        out.update(fresh)
        todo = [i for i in todo if i.name not in out]
        if todo and self.dataset.archive is not None:
            members, problems = self._from_archive(todo, download, urls, timeout, retries)
            out.update(members)
            fresh.update(members)
            for info in todo:
                rejected.setdefault(info.name, []).extend(problems)
            todo = [i for i in todo if i.name not in out]
            download = False  # the archive is the only published form
        if todo and download:
            with self.lock():
                # Another process may have finished the work while we waited for the lock.
                again, _ = self.find(todo, stamps=use_cache)
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

    def archive_paths(self) -> list[tuple[Path, str]]:
        """Where the dataset's archive may be: fmnist's ``<root>/<archive folder>/`` (shared by the
        datasets in it), torchvision's folder under the root, and the same under the searched
        folders."""
        a = self.dataset.archive
        if a is None:
            return []
        bases = [self.root, *(search_roots() or [Path("data"), Path(".")])]
        out: list[tuple[Path, str]] = []
        for base in bases:
            out.append((base / a.folder / a.name, "fmnist"))
            if a.torchvision_dir:
                out.append((base / a.torchvision_dir / a.name, "torchvision"))
        return list(dict.fromkeys(out))

    def archive_verdict(self, path: Path) -> Verdict:
        """The archive at ``path`` judged by its MD5 (hashed once per Store)."""
        a = self.dataset.archive
        assert a is not None
        if path not in self._archive_verdicts:
            self._archive_verdicts[path] = check_archive(path, a)
        return self._archive_verdicts[path]

    def archive(
        self,
        download: bool,
        urls: Sequence[str] = (),
        timeout: float = 30.0,
        retries: int = 3,
        *,
        home_only: bool = False,
    ) -> tuple[tuple[Path, str] | None, list[str]]:
        """The dataset's verified archive and its layout: found (only in the data root's
        ``<root>/<archive folder>/`` when ``home_only``), else downloaded once there when
        ``download``; and what was turned down."""
        a = self.dataset.archive
        assert a is not None
        problems: list[str] = []
        for path, layout in self.archive_paths()[:1] if home_only else self.archive_paths():
            if path.is_file():
                verdict = self.archive_verdict(path)
                if verdict.ok:
                    return (path, layout), problems
                problems.append(f"{path} ({layout}): " + "; ".join(verdict.problems))
        if not download:
            return None, problems or [f"no {a.name} archive found"]
        folder = self.root / a.folder
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with FileLock(str(folder / ".lock")):  # one download for all the datasets in it
            if (folder / a.name).is_file() and check_archive(folder / a.name, a).ok:
                return (folder / a.name, "fmnist"), problems
            info = FileInfo(a.name, "archive", "archive", (a.max_size,))
            _, _, path = fetch(
                info,
                folder,
                urls,
                timeout=timeout,
                retries=retries,
                check=lambda p: (None, check_archive(p, a)),
                limit=a.max_size,
            )
        log.info("%s: downloaded to %s, verified", a.name, path)
        return (path, "fmnist (downloaded)"), problems

    def _from_archive(
        self,
        infos: Sequence[FileInfo],
        download: bool,
        urls: Sequence[str] = (),
        timeout: float = 30.0,
        retries: int = 3,
    ) -> tuple[dict[str, Array], list[str]]:
        """The files' arrays read out of the dataset's verified archive (see ``archive``)."""
        a = self.dataset.archive
        assert a is not None
        found, problems = self.archive(download, urls, timeout, retries)
        if found is None:
            return {}, problems
        path, layout = found
        arrays: dict[str, Array] = {}
        for info, (array, verdict) in zip(infos, read_members(path, a, infos)):
            if array is None:
                problems.append(f"{path} ({layout} archive): " + "; ".join(verdict.problems))
                continue
            arrays[info.name] = array
            self.found[info.name] = Found(path, f"{layout} archive", verdict)
            log.info("%s: read from the archive %s (%s)", info.name, path, verdict.rule)
        return arrays, problems

    def _warm(self, info: FileInfo, out: dict[str, Array]) -> None:
        """The warm cache's array of ``info`` (or the stamped decompressed copy it maps in place)."""
        hit = self.cache.get(info)
        if hit is not None:
            where, layout, rule = self.cache.path(info), "fmnist warm cache", "stamped by an earlier verification"
        else:
            stamped = self.cache.in_place(info)
            if stamped is None:
                return
            where, hit = stamped
            layout, rule = "in place, stamped", "stamped (size, mtime) by an earlier verification"
        log.debug("%s: warm %s (%s)", info.name, where, layout)
        out[info.name] = hit
        self.found[info.name] = Found(where, layout, Verdict(True, rule), in_place=layout != "fmnist warm cache")

    def _cache(self, infos: Sequence[FileInfo], fresh: dict[str, Array]) -> None:
        try:
            with self.lock():
                self.cache.clean_temporaries()  # of writers killed before their rename
                for info in infos:
                    if info.name not in fresh or info.dtype != "uint8":
                        continue  # (only uint8 files are cached: the others need a byteswap)
                    found = self.found[info.name]
                    if found.in_place:
                        # A decompressed copy mapped where it lies: stamped, not copied.
                        if self.cache.stamp_in_place(info, found.path, found.verdict.content_sha256):
                            log.info("%s: stamped %s to be mapped in place", info.name, found.path)
                    elif self.cache.status(info) != "fresh":
                        if self.cache.put(info, fresh[info.name], found.verdict.content_sha256):
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
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive number of seconds, finite, not {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"retries must be an int >= 1 (attempts per mirror), not {retries!r}")


def _split_files(ds: Dataset, split: str) -> list[FileInfo]:
    split = ds.slices[split][0] if split in ds.slices else split
    if split not in ds.splits:
        names = " or ".join(repr(s) for s in (*ds.splits, *ds.slices))
        raise ValueError(f"split must be {names} for {ds.name}, not {split!r}")
    return [ds.file(split, "images"), ds.file(split, "labels")]


def _finish(
    ds: Dataset, split: str, images: Array, labels: Array, extended: bool, upright: bool = False
) -> tuple[Array, Array]:
    """A slice split's rows (QMNIST's test10k, test50k), the class column of row labels unless
    ``extended`` (then all of them, as stored), and for a dataset stored transposed (EMNIST)
    the images turned upright when asked (a copy)."""
    if upright and ds.transposed:
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    if split in ds.slices:
        _, start, stop = ds.slices[split]
        images, labels = images[start:stop], labels[start:stop]
    if labels.ndim == 2 and not extended:
        labels = labels[:, 0].astype(np.uint8)  # the class column, as the other datasets' labels
    return images, labels


def load(
    name: str = "fashion-mnist",
    split: str = "train",
    *,
    root: PathArg = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    cache: bool | None = None,
    extended: bool = False,
    upright: bool = False,
) -> tuple[Array, Array]:
    """``(images, labels)`` of one split: images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8,
    verified. From the warm cache, a verified copy on the machine, or a download. For a dataset
    whose labels are rows (QMNIST: 8 int32 columns, ``DATASETS["qmnist"].label_columns``), the
    labels are the class column unless ``extended``, which gives all of them. EMNIST's images
    are returned as stored (transposed, as torchvision returns them); ``upright=True`` gives
    them turned the way MNIST's are."""
    store = Store(get(name), root)
    files = _split_files(store.dataset, split)
    images, labels = store.arrays(files, download=download, mirrors=mirrors, cache=cache)
    return _finish(store.dataset, split, images, labels, extended, upright)


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
    ds = store.dataset
    files = _split_files(ds, "train") + _split_files(ds, "test")
    x_train, y_train, x_test, y_test = store.arrays(files, download=download, mirrors=mirrors, cache=cache)
    return _finish(ds, "train", x_train, y_train, False), _finish(ds, "test", x_test, y_test, False)


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
    splits: Sequence[str] | None = None,
) -> Path:
    """Makes sure ``<root>/<name>/`` holds a verified copy of every file of the dataset (of
    ``splits`` only, when given), downloading what is missing or fails verification; returns
    that folder."""
    store = Store(get(name), root)
    check_network_args(timeout, retries)
    known = list(dict.fromkeys(f.split for f in store.dataset.files))
    wanted = known if splits is None else list(splits)
    unknown = [s for s in wanted if s not in known]
    if unknown or not wanted:
        asked = unknown if unknown else "an empty list"
        raise ValueError(f"{store.dataset.name} has the splits {', '.join(known)}, not {asked}")
    urls = mirror_list(mirrors, store.dataset)
    if store.dataset.archive is not None:
        if set(wanted) != set(known):
            raise ValueError(f"{store.dataset.name} is published as one archive: it downloads whole, with every split")
        # The archive is the published form: a verified copy of it in the data root.
        store.archive(True, urls, timeout, retries, home_only=True)
        return store.root / store.dataset.archive.folder
    with store.lock():
        for info in (f for f in store.dataset.files if f.split in wanted):
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
