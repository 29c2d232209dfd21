"""The sources ``resolve`` walks, in order: fmnist's warm cache, IDX folders of each known layout,
keras's .npz, zip archives, the mirrors. Each is a small class that lists the candidates for a
file (``candidates``: stats only) and reads and judges a batch of them (``read``: one engine call
for the batch); adding a layout is adding a folder to ``folders`` or one class here.

Ownership: only fmnist's own cache files are mapped (after their stamp or their digest proves
them); every other copy is read into memory and hashed as it is read, and nothing here deletes,
truncates, renames, rewrites or chmods a file fmnist did not create.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy.typing as npt

from .cache import Home, cacheable, identity
from .datasets import Dataset, FileInfo
from .download import fetch, size_limit
from .errors import UnverifiedDataWarning
from .verify import (
    Judged,
    by_stored_digest,
    content_sha256,
    has_content_digest,
    hash_file,
    published,
    read_archive,
    read_files,
    read_npz,
    refused,
)

if TYPE_CHECKING:
    from .resolve import Policy

PathArg = Union[str, "os.PathLike[str]", None]
Array = npt.NDArray[Any]

log = logging.getLogger("fmnist")

#: Debian's packages put datasets here (``dataset-fashion-mnist``: ``fashion-mnist/``).
DEBIAN = Path("/usr/share/datasets")


# --- where things are ------------------------------------------------------------------------


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
    (then the folders other loaders use by default are searched: see ``folders``)."""
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


def folders(ds: Dataset, root: Path, torchvision_raw: Path | None = None) -> list[tuple[Path, str]]:
    """IDX folders to look in, in order, with the name of the layout each one is: torchvision's
    folder ``torchvision_raw`` (fmnist.torch's), fmnist's own ``<root>/<name>`` and torchvision's
    under the data root, then each folder of ``$FMNIST_SEARCH_PATH`` (fmnist's, torchvision's and
    a repository clone's layout in it), or when that is not set the folders other loaders use by
    default: keras's datasets folder, Debian's, and torchvision's, fmnist's and a clone's under
    the working folder."""
    out: list[tuple[Path, str]] = []
    if torchvision_raw is not None:
        out.append((torchvision_raw, "torchvision"))
    out.append((root / ds.name, "fmnist"))
    if ds.torchvision_name:
        out.append((root / ds.torchvision_name / "raw", "torchvision"))
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


def proof_key(ds: Dataset, info: FileInfo) -> str:
    """The published digest a content digest proven for ``info`` is keyed by: its stored form's,
    or for a member of an archive the archive's. A proof counts only while the registry still
    publishes that digest."""
    return f"archive {ds.archive.name} {published(ds.archive)}" if ds.archive is not None else published(info)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


# --- what the sources give -------------------------------------------------------------------


def _where(path: Path, member: str) -> str:
    return f"{path}:{member}" if member else str(path)


@dataclass(frozen=True)
class Candidate:
    """A file that may hold a copy of one registry file."""

    path: Path
    source: str  #: the layout or source it was found by ("torchvision", "fmnist warm cache", ...)
    decompressed: bool = False  #: named as the decompressed IDX file (only content digests count)


@dataclass(frozen=True)
class Provenance:
    """Where a returned array came from and what proved it."""

    path: Path  #: the file read (an archive, for its members)
    source: str  #: the layout or source: "fmnist warm cache", "torchvision", "keras .npz", ...
    rule: str  #: what proved it, in the engine's words
    member: str = ""  #: the member of the archive
    mapped: bool = False  #: mapped copy-on-write (fmnist's own cache file), not read into memory
    proof: str = ""  #: what proved it, by name (``verify.Judged.proof``): "stored_md5", "content_sha256", ...

    @property
    def where(self) -> str:
        """The file, and the member for one of an archive's: "gzip.zip:gzip/a.gz"."""
        return _where(self.path, self.member)

    def __str__(self) -> str:
        return f"{self.where} [{self.source}; {self.proof}: {self.rule}]"


@dataclass(frozen=True)
class Judgment:
    """One candidate, judged (``ok``), with the rule that accepted it or every problem."""

    info: FileInfo
    path: Path
    source: str
    ok: bool
    message: str
    member: str = ""
    error: BaseException | None = None
    proof: str = ""  #: what accepted it, by name (``verify.Judged.proof``); "" when refused

    @property
    def where(self) -> str:
        return _where(self.path, self.member)

    def __str__(self) -> str:
        return f"{self.where} ({self.source}): {self.message}"


@dataclass
class Context:
    """What one ``resolve`` call's sources share: the dataset, the policy, fmnist's folder of the
    dataset, the proofs known so far and the ones established now."""

    dataset: Dataset
    policy: Policy
    root: Path
    home: Home
    cache: bool
    #: file name -> {content SHA-256: what proved it}: recorded earlier or established now
    proofs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: file name -> (content SHA-256, the published digest that proved it, where): to record
    new_proofs: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: cache files of fmnist's, verified now although their stamp had changed: to stamp again
    restamp: dict[str, str] = field(default_factory=dict)
    #: cache files of fmnist's that failed their check: to be replaced
    failed_cache: list[FileInfo] = field(default_factory=list)

    def prove(self, info: FileInfo, judged: Judged, by: str, where: str) -> None:
        """Records that ``judged``'s content is ``info``'s, proven by the published digest ``by``."""
        if judged.content_sha256 and by and not info.content_sha256:
            self.proofs.setdefault(info.name, {})[judged.content_sha256] = f"the verified {where}"
            self.new_proofs[info.name] = (judged.content_sha256, by, where)


Read = list[tuple[Judgment, "tuple[Array, Provenance, str] | None"]]


class Source:
    """One place copies may be: lists candidates for a file and reads and judges a batch."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def looked_in(self) -> list[str]:
        return []

    def candidates(self, info: FileInfo) -> list[Candidate]:
        raise NotImplementedError

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        raise NotImplementedError


def _item(
    info: FileInfo, c: Candidate, j: Judged, member: str = "", rule: str = "", mapped: bool = False
) -> tuple[Judgment, Any]:
    """A source's result for one candidate: its judgment, and when accepted (array, provenance,
    content SHA-256)."""
    if j.array is None:
        return Judgment(info, c.path, c.source, False, j.message, member, j.error), None
    rule = rule or j.message
    return Judgment(info, c.path, c.source, True, rule, member, proof=j.proof), (
        j.array,
        Provenance(c.path, c.source, rule, member, mapped, j.proof),
        j.content_sha256,
    )


class WarmCache(Source):
    """fmnist's own decompressed copies under its data root: mapped, the only files that are.
    A stamp that matches in full (device, inode, size, mtime, ctime) proves a file unless the
    policy trusts no stamp; otherwise it is hashed against the content it was stamped with (and
    the registry's), unchanged while it was hashed and mapped."""

    def looked_in(self) -> list[str]:
        return [f"{self.ctx.home.folder} (fmnist warm cache)"]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        home = self.ctx.home
        if not cacheable(info) or home.stamp(info) is None:
            return []
        if not home.owns(home.path(info), "files", info.stem):
            return []
        return [Candidate(home.path(info), "fmnist warm cache", True)]

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        out: Read = []
        for info, c in heads:
            j = self._judge(info, c)
            if not j.ok:
                self.ctx.failed_cache.append(info)  # fmnist's own: replaced after this load
            out.append(_item(info, c, j, mapped=True))
        return out

    def _judge(self, info: FileInfo, c: Candidate) -> Judged:
        home = self.ctx.home
        fresh, stamped = home.fresh(info)
        try:
            if fresh and self.ctx.policy.trust_stamps:
                rule = "fmnist's own cache file, unchanged since it was verified (stamp: inode, size, mtime, ctime)"
                return Judged(home.map(info), rule, stamped or "", proof="stamp")
            proofs = dict(self.ctx.proofs.get(info.name, {}))
            if stamped:
                proofs[stamped] = "the content fmnist verified when it cached it"
            before = identity(c.path.lstat())
            hashed = hash_file(c.path, info, proofs)
            if not hashed.proof:
                return hashed
            array = home.map(info)
            if identity(c.path.lstat()) != before:
                return refused("changed while it was checked")
        except (OSError, ValueError) as e:
            return refused(f"unreadable: {e}", e)
        if not fresh:
            self.ctx.restamp[info.name] = hashed.content_sha256
        rule = f"fmnist's own cache file, hashed now: {hashed.message}"
        return Judged(array, rule, hashed.content_sha256, proof=hashed.proof)


class TorchvisionRaw(Source):
    """torchvision's rules in torchvision's folder (``fmnist.torch``): the decompressed files
    torchvision reads from ``<root>/<Name>/raw/`` are what is loaded when they are there. One a
    published or proven digest matches is verified; a well-formed one nothing proves (a subset,
    custom data) is loaded all the same, with an ``UnverifiedDataWarning``, unless the policy
    verifies (then it is refused). A file fmnist itself placed there and that is unchanged since
    (its record: device, inode, size, mtime, ctime) is served from fmnist's own cache."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        assert ctx.policy.torchvision_raw is not None
        self.raw = ctx.policy.torchvision_raw

    def looked_in(self) -> list[str]:
        return [f"{self.raw} (torchvision, its rules)"]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        at = self.raw / info.stem
        return [Candidate(at, "torchvision", decompressed=True)] if _regular(at) else []

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        out: dict[int, tuple[Judgment, Any]] = {}
        todo = []
        for k, (info, c) in enumerate(heads):
            warm = self._placed(info, c)
            if warm is not None:
                out[k] = warm
            else:
                todo.append(k)
        judged = read_files(
            [heads[k][1].path for k in todo],
            [heads[k][0] for k in todo],
            [self.ctx.proofs.get(heads[k][0].name, {}) for k in todo],
            [True for _ in todo],
            bounded=False,
        )
        for k, j in zip(todo, judged):
            info, c = heads[k]
            if j.ok or j.unproven is None or self.ctx.policy.verify:
                out[k] = _item(info, c, j)
                continue
            array = j.unproven
            if array.dtype != info.dtype or array.ndim != len(info.shape) or array.shape[1:] != info.shape[1:]:
                why = f"{array.shape} {array.dtype}, where torchvision's class reads {info.dtype} (N, {info.shape[1:]})"
                out[k] = _item(info, c, refused(why))
                continue
            what = f"{c.path}: not verified ({j.message}); loaded by torchvision's rules"
            warnings.warn(UnverifiedDataWarning(what), stacklevel=6)
            log.warning("%s", what)
            out[k] = _item(info, c, Judged(array, f"not verified ({j.message})", j.content_sha256, proof="unverified"))
        return [out[k] for k in range(len(heads))]

    def _placed(self, info: FileInfo, c: Candidate) -> tuple[Judgment, Any] | None:
        """fmnist's own cache of a file fmnist placed at ``c.path`` and nobody changed since."""
        ctx = self.ctx
        if not ctx.cache or not cacheable(info):
            return None
        entry = ctx.home.entry("placed", str(c.path.absolute()))
        fresh, stamped = ctx.home.fresh(info)
        try:
            now = identity(c.path.lstat())
        except OSError:
            return None
        if entry is None or not all(entry.get(k) == v for k, v in now.items()):
            return None
        if not (fresh and stamped and entry.get("content_sha256") == stamped):
            return None
        rule = "torchvision's file as fmnist placed it, unchanged (its record); served from fmnist's own cache"
        try:
            array = ctx.home.map(info)
        except (OSError, ValueError):
            return None
        cache = Candidate(ctx.home.path(info), "fmnist warm cache", True)
        return _item(info, cache, Judged(array, rule, stamped, proof="stamp"), mapped=True)


class Folders(Source):
    """IDX folders of the known layouts (``folders``): each file as published (.gz, .xz) and
    decompressed, read into memory and hashed as it is read (``stored_only``: fmnist's own folder
    and the published forms only, as ``download`` checks them)."""

    def __init__(self, ctx: Context, *, stored_only: bool = False) -> None:
        super().__init__(ctx)
        self.stored_only = stored_only
        if stored_only:
            self.places = [(ctx.home.folder, "fmnist")]
        else:
            self.places = folders(ctx.dataset, ctx.root, ctx.policy.torchvision_raw)

    def looked_in(self) -> list[str]:
        return [f"{folder} ({layout})" for folder, layout in self.places]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        """Each folder's copies of ``info``. Decompressed copies come first when a content digest
        can judge them (the registry's, or one proven before): reading and hashing one is about
        3x faster than inflating the published form; else the published forms come first, and
        one that verifies proves the decompressed copies."""
        stored, raw = [], []
        mine = self.ctx.home.path(info)
        for folder, layout in self.places:
            if _regular(folder / info.name):
                stored.append(Candidate(folder / info.name, layout))
            at = folder / info.stem
            if self.stored_only or info.stem == info.name or not _regular(at):
                continue
            if at == mine and self.ctx.home.owns(at, "files", info.stem):
                continue  # fmnist's own cache file: the warm cache's (and not at all when it is off)
            raw.append(Candidate(at, layout, decompressed=True))
        provable = has_content_digest(info) or bool(self.ctx.proofs.get(info.name))
        return raw + stored if provable else stored + raw

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        judged = read_files(
            [c.path for _, c in heads],
            [i for i, _ in heads],
            [self.ctx.proofs.get(i.name, {}) for i, _ in heads],
            [c.decompressed for _, c in heads],
        )
        out: Read = []
        for (info, c), j in zip(heads, judged):
            if by_stored_digest(j):
                self.ctx.prove(info, j, proof_key(self.ctx.dataset, info), str(c.path))
            out.append(_item(info, c, j))
        return out


class KerasNpz(Source):
    """keras's single-file form (``mnist.npz``), verified by the SHA-256 keras publishes."""

    def paths(self) -> list[Path]:
        name = self.ctx.dataset.keras_npz
        if not name:
            return []
        bases = search_roots()
        return [b / name for b in (keras_datasets_dirs() if bases is None else bases)]

    def looked_in(self) -> list[str]:
        return [f"{p} (keras .npz)" for p in self.paths()]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        return [Candidate(p, "keras .npz") for p in self.paths() if _regular(p)]

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        bundles: dict[Path, tuple[Judged, dict[str, Array]]] = {}
        out: Read = []
        for info, c in heads:
            if c.path not in bundles:
                bundles[c.path] = read_npz(c.path, self.ctx.dataset.keras_npz_sha256)
            whole, arrays = bundles[c.path]
            key = ("x_" if info.kind == "images" else "y_") + info.split
            array = arrays.get(key)
            if not whole.ok:
                out.append(_item(info, c, whole))
            elif array is None or array.shape != info.shape or array.dtype != info.dtype:
                out.append(
                    (
                        Judgment(info, c.path, c.source, False, f"no {info.dtype} {key} of shape {info.shape} in it"),
                        None,
                    )
                )
            else:
                sha = content_sha256(array)
                self.ctx.prove(
                    info,
                    Judged(array, whole.message, sha, proof="keras_npz_sha256"),
                    f"keras_npz_sha256:{self.ctx.dataset.keras_npz_sha256}",
                    str(c.path),
                )
                out.append(_item(info, c, Judged(array, whole.message, sha, proof="keras_npz_sha256"), key))
        return out


class Archives(Source):
    """The dataset's zip archive (EMNIST's ``gzip.zip``): fmnist's ``<root>/<archive name>/``
    (shared by the datasets in it), torchvision's raw folder, and the same under the searched
    folders. The archive is hashed and its members read from the same bytes, once a batch."""

    def __init__(self, ctx: Context, *, home_only: bool = False) -> None:
        super().__init__(ctx)
        self.home_only = home_only

    def paths(self) -> list[tuple[Path, str]]:
        ds = self.ctx.dataset
        a = ds.archive
        if a is None:
            return []
        out = [(self.ctx.root / a.name / a.file, "fmnist archive")]
        if self.home_only:
            return out
        if self.ctx.policy.torchvision_raw is not None:
            out.append((self.ctx.policy.torchvision_raw / a.file, "torchvision archive"))
        bases = [self.ctx.root]
        bases += search_roots() or [Path("data"), Path(".")]
        for base in bases:
            out.append((base / a.name / a.file, "fmnist archive"))
            if ds.torchvision_name:
                out.append((base / ds.torchvision_name / "raw" / a.file, "torchvision archive"))
        return list(dict.fromkeys(out))

    def looked_in(self) -> list[str]:
        return [f"{p} ({layout})" for p, layout in self.paths()]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        return [Candidate(p, layout) for p, layout in self.paths() if _regular(p)]

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        groups: dict[Candidate, list[FileInfo]] = {}
        for info, c in heads:
            groups.setdefault(c, []).append(info)
        results: dict[tuple[str, Candidate], Any] = {}
        for c, infos in groups.items():
            for info, item in zip(infos, self.judge(c, infos)):
                results[(info.name, c)] = item
        return [results[(info.name, c)] for info, c in heads]

    def judge(self, c: Candidate, infos: list[FileInfo], done: tuple[Judged, list[Judged]] | None = None) -> Read:
        a = self.ctx.dataset.archive
        assert a is not None
        whole, members = done or read_archive(c.path, a, infos, [self.ctx.proofs.get(i.name, {}) for i in infos])
        by = proof_key(self.ctx.dataset, infos[0])
        out: Read = []
        for info, j in zip(infos, members):
            member = a.members + info.name
            if j.ok:
                self.ctx.prove(info, j, by, f"{c.path}:{member}")
            out.append(_item(info, c, j, member))
        return out


def _not_replaced(path: Path, judged: Judged) -> str:
    """Why a download does not go to ``path``: a file fmnist did not write is there, and bad."""
    return f"a file fmnist did not write is at {path} and fails verification ({judged.message}): not replaced"


def _checker(info: FileInfo, proofs: dict[str, str]) -> Any:
    """What judges a download of ``info``: read and verified as any copy is."""
    return lambda path: read_files([path], [info], [proofs], [False])[0]


class Mirrors(Source):
    """The published files from the mirrors (the policy's, else the registry's), downloaded into
    fmnist's folder of the dataset (or of its archive), or for ``fmnist.torch`` into torchvision's
    raw folder, under the folder's lock; a final path holding a file fmnist did not write is
    never replaced."""

    def __init__(self, ctx: Context, urls: Sequence[str]) -> None:
        super().__init__(ctx)
        self.urls = list(urls)

    def looked_in(self) -> list[str]:
        return [f"{u} (mirror)" for u in self.urls]

    def candidates(self, info: FileInfo) -> list[Candidate]:
        ds = self.ctx.dataset
        if ds.archive is not None:
            return [Candidate(self.ctx.root / ds.archive.name / ds.archive.file, "download")]
        p = self.ctx.policy
        folder = self.ctx.home.folder
        if p.place and p.torchvision_raw is not None:  # fmnist.torch: torchvision's raw folder
            folder = p.torchvision_raw
        return [Candidate(folder / info.name, "download")]

    def read(self, heads: Sequence[tuple[FileInfo, Candidate]]) -> Read:
        policy = self.ctx.policy
        ds = self.ctx.dataset
        if ds.archive is not None:
            return self._archive([i for i, _ in heads], heads[0][1])
        out: Read = []
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.ctx.home.lock())
            except OSError as e:  # fmnist's root cannot be written
                if heads[0][1].path.parent == self.ctx.home.folder:
                    raise
                # fmnist.torch downloading into torchvision's folder: no lock of fmnist's can be
                # made, and none may go there. Downloads still land whole, by rename.
                log.warning("%s: downloading without fmnist's lock (%s)", self.ctx.dataset.name, e)
            for info, c in heads:
                proofs = self.ctx.proofs.get(info.name, {})
                final, owner = c.path, self.ctx.home if c.path.parent == self.ctx.home.folder else None
                if final.exists() or final.is_symlink():
                    # Another process may have finished it while we waited for the lock.
                    (j,) = read_files([final], [info], [proofs], [False])
                    if j.ok:
                        out.append(self._done(info, c, j, "found after waiting for the lock: "))
                        continue
                    if owner is None or not owner.owns(final, "downloads", info.name):
                        out.append((Judgment(info, final, c.source, False, _not_replaced(final, j)), None))
                        continue
                try:
                    j, final = fetch(
                        info.name,
                        final.parent,
                        self.urls,
                        _checker(info, proofs),
                        size_limit(info),
                        timeout=policy.timeout,
                        retries=policy.retries,
                    )
                except OSError as e:  # DownloadError, or an OSError writing here: the rest wait
                    out.append((Judgment(info, final, c.source, False, str(e), error=e), None))
                    out += [
                        (Judgment(i, d.path, d.source, False, f"not tried after {info.name} failed"), None)
                        for i, d in heads[len(out) :]
                    ]
                    break
                if owner is not None:
                    owner.record_download(final)
                out.append(self._done(info, Candidate(final, c.source), j, "downloaded, "))
        return out

    def _done(self, info: FileInfo, c: Candidate, j: Judged, how: str) -> tuple[Judgment, Any]:
        if by_stored_digest(j):
            self.ctx.prove(info, j, proof_key(self.ctx.dataset, info), str(c.path))
        return _item(info, c, j, rule=how + j.message)

    def _archive(self, infos: list[FileInfo], c: Candidate) -> Read:
        a = self.ctx.dataset.archive
        assert a is not None
        home = Home(c.path.parent)
        done: list[tuple[Judged, list[Judged]]] = []
        proofs = [self.ctx.proofs.get(i.name, {}) for i in infos]

        def check(path: Path) -> Judged:
            done.clear()
            done.append(read_archive(path, a, infos, proofs))
            return done[0][0]

        archives = Archives(self.ctx, home_only=True)
        with home.lock():  # one download for all the datasets in it
            if _regular(c.path):
                check(c.path)
                if done[0][0].ok:
                    return archives.judge(c, infos, done[0])
                if not home.owns(c.path, "downloads", a.file):
                    why = _not_replaced(c.path, done[0][0])
                    return [(Judgment(i, c.path, c.source, False, why), None) for i in infos]
            try:
                _, final = fetch(
                    a.file,
                    c.path.parent,
                    self.urls,
                    check,
                    a.max_size,
                    timeout=self.ctx.policy.timeout,
                    retries=self.ctx.policy.retries,
                )
            except OSError as e:  # DownloadError, or an OSError writing here
                return [(Judgment(i, c.path, c.source, False, str(e), error=e), None) for i in infos]
            home.record_download(final)
        return archives.judge(Candidate(final, "download"), infos, done[0])
