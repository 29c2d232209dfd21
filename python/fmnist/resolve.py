"""The one pipeline: ``resolve(dataset, files, policy)`` finds, proves and, when asked, downloads
and caches a dataset's files, and returns each array with its provenance.

It walks the sources in order (``sources``: fmnist's warm cache, IDX folders of each known layout,
keras's .npz, zip archives, the mirrors); each source lists its candidates for the files still
wanted and reads and judges them, all of a batch in one engine call. A file is taken from the
first candidate that proves itself; ``Policy.every_copy`` judges every candidate instead (what
``fmnist verify`` reports). Afterwards, when the policy caches, the arrays are written to the warm
cache and the content digests proven now are recorded, under fmnist's own data root; any failure
there is a logged warning, never a failed load. ``load``, ``load_data``, ``download``, the
command line and ``fmnist.torch`` are policies over this pipeline and keep no flow of their own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _core
from .cache import Home, cacheable, enabled, identity
from .datasets import Dataset, FileInfo
from .errors import Error
from .idx import atomic_write
from .sources import (
    Archives,
    Context,
    Folders,
    Judgment,
    KerasNpz,
    Mirrors,
    PathArg,
    Provenance,
    Source,
    TorchvisionRaw,
    WarmCache,
    data_root,
    proof_key,
)

#: The package's logger: what was found, rejected, downloaded and cached (INFO), warm cache hits
#: (DEBUG), a cache that could not be written (WARNING).
log = logging.getLogger("fmnist")


class DatasetNotFoundError(Error, FileNotFoundError):
    """No verified copy was found and downloading was off (or failed)."""


@dataclass(frozen=True)
class Policy:
    """What one ``resolve`` may do and trust. The defaults are ``load``'s with ``download=False``."""

    root: PathArg = None  #: fmnist's data root (``data_root``)
    cache: bool | None = None  #: read and write the warm cache and records (None: $FMNIST_CACHE)
    write_cache: bool = True  #: write it (``info`` and ``verify`` only read it)
    trust_stamps: bool = True  #: map a cache file on its stamp; False: hash it first
    discover: bool = True  #: look at copies other loaders left (else only fmnist's own folder)
    download: bool = False  #: fetch what is still missing from the mirrors
    mirrors: Sequence[str] | None = None  #: base URLs (None: the registry's)
    timeout: float = 30.0
    retries: int = 3
    every_copy: bool = False  #: judge every candidate, not just until one proves itself
    #: fmnist.torch: torchvision's raw folder (``<root>/<ClassName>/raw``), searched first;
    #: downloads go there, and ``place`` writes torchvision's decompressed files there
    torchvision_raw: Path | None = None
    place: bool = False
    #: torchvision's rules in torchvision's folder: its decompressed files there come first and
    #: are loaded even when nothing proves them (warned); with ``verify``, such files are refused
    torchvision_rules: bool = False
    verify: bool = False

    def check(self, dataset: Dataset) -> list[str]:
        """The mirrors to try; clear errors, before anything is read, for arguments that would
        make a download surprising."""
        t, r = self.timeout, self.retries
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, finite, not {t!r}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"retries must be an int >= 1 (attempts per mirror), not {r!r}")
        return mirror_list(self.mirrors, dataset)


def mirror_list(mirrors: Sequence[str] | None, dataset: Dataset) -> list[str]:
    """The base URLs to try: ``mirrors`` as given, or the registry's (the archive's, for a
    dataset whose files are members of one) when it is None."""
    if mirrors is None:
        return list(dataset.archive.mirrors if dataset.archive is not None else dataset.mirrors)
    if isinstance(mirrors, (str, bytes)):
        raise TypeError(f"mirrors must be a list of base URLs, not a single {type(mirrors).__name__}: [{mirrors!r}]")
    urls = list(mirrors)
    if not urls:
        raise ValueError("mirrors is empty: pass None to use the registry's mirrors, or at least one base URL")
    bad = [u for u in urls if not isinstance(u, str) or not u.startswith(("http://", "https://", "file://"))]
    if bad:
        raise ValueError(f"mirrors must be http://, https:// or file:// URLs; not {bad[0]!r}")
    return urls


@dataclass(frozen=True)
class Resolved:
    """One file's array, with where it came from and what proved it."""

    info: FileInfo
    array: Any
    provenance: Provenance
    content_sha256: str


@dataclass
class Resolution:
    """What ``resolve`` found: the arrays with their provenance, every candidate judged, and the
    files it could not prove."""

    dataset: Dataset
    wanted: list[FileInfo]
    files: dict[str, Resolved] = field(default_factory=dict)
    judgments: list[Judgment] = field(default_factory=list)
    looked_in: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[FileInfo]:
        return [i for i in self.wanted if i.name not in self.files]

    def rejected(self, info: FileInfo) -> list[Judgment]:
        return [j for j in self.judgments if j.info.name == info.name and not j.ok]

    def error(self, infos: Sequence[FileInfo] | None = None) -> OSError | None:
        """Why the files wanted (or ``infos``) are not all here: the error of a download that
        failed (``DownloadError``, an OSError writing), else a ``DatasetNotFoundError`` naming
        every file missing and why each candidate was turned down; None when none is missing."""
        missing = [i for i in (self.wanted if infos is None else infos) if i.name not in self.files]
        for info in missing:
            errors = [j.error for j in self.rejected(info) if j.source == "download" and isinstance(j.error, OSError)]
            if errors:
                return errors[0]
        if not missing:
            return None
        lines = [f"  {i.name}: " + ("; ".join(str(j) for j in self.rejected(i)) or "no copy found") for i in missing]
        return DatasetNotFoundError(
            f"{self.dataset.name}: no verified copy of {len(missing)} file(s)"
            + ("" if any(j.source == "download" for j in self.judgments) else " and download=False")
            + ":\n"
            + "\n".join(lines)
            + f"\nlooked in: {', '.join(self.looked_in)}"
        )

    def arrays(self) -> list[Any]:
        """The arrays of the files wanted, in order; raises ``error()`` if any is missing."""
        error = self.error()
        if error is not None:
            raise error
        return [self.files[i.name].array for i in self.wanted]


def _sources(ctx: Context, urls: list[str]) -> Iterator[Source]:
    """The sources, in order, each made only when files are still wanted (a warm load never
    lists another loader's folders)."""
    policy, ds = ctx.policy, ctx.dataset
    if policy.torchvision_rules and policy.torchvision_raw is not None:
        yield TorchvisionRaw(ctx)
    if ctx.cache:
        yield WarmCache(ctx)
    yield Folders(ctx, stored_only=not policy.discover)
    if policy.discover and ds.keras_npz:
        yield KerasNpz(ctx)
    if ds.archive is not None:
        yield Archives(ctx, home_only=not policy.discover)
    if policy.download:
        yield Mirrors(ctx, urls)


def resolve(dataset: Dataset, files: Sequence[FileInfo], policy: Policy = Policy()) -> Resolution:
    """The arrays of ``files`` (of ``dataset``) with their provenance, as ``policy`` allows."""
    urls = policy.check(dataset)  # checked before anything is read
    root = data_root(policy.root)
    home = Home(root / dataset.name)
    ctx = Context(dataset, policy, root, home, enabled(policy.cache))
    if ctx.cache:
        for info in files:
            ctx.proofs[info.name] = home.proven(info, proof_key(dataset, info))
    result = Resolution(dataset, list(files))
    pending = list(files)
    sources = _sources(ctx, urls)
    while pending or policy.every_copy:
        source = next(sources, None)
        if source is None:
            break
        result.looked_in += source.looked_in()
        queues = {i.name: source.candidates(i) for i in pending}
        while True:
            heads = [(i, queues[i.name].pop(0)) for i in pending if queues[i.name]]
            if not heads:
                break
            for judgment, got in source.read(heads):
                result.judgments.append(judgment)
                name = judgment.info.name
                if got is None:
                    log.info("%s: rejected %s", name, judgment)
                elif name not in result.files:
                    array, provenance, sha = got
                    result.files[name] = Resolved(judgment.info, array, provenance, sha)
                    level = logging.DEBUG if provenance.source == "fmnist warm cache" else logging.INFO
                    log.log(level, "%s: %s", name, provenance)
            if not policy.every_copy:
                pending = [i for i in pending if i.name not in result.files]
    if ctx.cache:
        _keep(ctx, result)
    if policy.place and policy.torchvision_raw is not None:
        _place(ctx, result)
    return result


def _warn(result: Resolution, message: str) -> None:
    log.warning("%s", message)
    result.warnings.append(message)


def _keep(ctx: Context, result: Resolution) -> None:
    """Writes the warm cache of what was read now, stamps again fmnist's cache files verified now,
    marks the ones that failed, and records the proofs established now. Optional: any failure is
    a warning, and the arrays are returned all the same."""
    home = ctx.home
    todo = [
        r
        for r in result.files.values()
        if cacheable(r.info)
        and r.provenance.source != "fmnist warm cache"
        and r.provenance.proof != "unverified"
        and r.content_sha256
    ]
    writes = ctx.policy.write_cache and (todo or ctx.restamp or ctx.new_proofs)
    if not (writes or ctx.failed_cache):
        return
    try:
        with home.lock():
            home.clean_temporaries()  # of writers killed before their rename
            records = home.records(reread=True)
            stamps = records.setdefault("files", {})
            for info in ctx.failed_cache:
                if info.stem in stamps:  # hashed again, and replaced, by the next load
                    stamps[info.stem] = {**stamps[info.stem], "ctime_ns": -1}
            if ctx.policy.write_cache:
                for name, sha in ctx.restamp.items():
                    info = result.files[name].info
                    stamps[info.stem] = home.stamp_of(info, sha)
                for r in todo:
                    if home.fresh(r.info) == (True, r.content_sha256):
                        continue  # already cached, unchanged: the same content
                    stamp = home.write(r.info, r.array, r.content_sha256)
                    if stamp is None:
                        _warn(result, f"{r.info.name}: not cached: {home.path(r.info)} is a file fmnist did not write")
                        continue
                    stamps[r.info.stem] = stamp
                    log.info("%s: cached as %s", r.info.name, home.path(r.info))
                proven = records.setdefault("proven", {})
                for name, (sha, by, where) in ctx.new_proofs.items():
                    proven[name] = {"content_sha256": sha, "by": by, "where": where}
            home.save(records)
    except OSError as e:  # a read-only or full root, a lock that cannot be made, ...
        _warn(
            result,
            f"{ctx.dataset.name}: the warm cache was not written ({e}); the data returned is verified all the same",
        )


def _place(ctx: Context, result: Resolution) -> None:
    """fmnist.torch's download: torchvision's decompressed files in its raw folder, as
    torchvision itself would write them (IDX, mode from the umask), each by rename, and only
    where no file is: torchvision then finds the dataset, and nothing of its is replaced. Each
    file placed is recorded (under fmnist's root: device, inode, size, mtime, ctime, content), so
    that while it is unchanged a load serves fmnist's own cache of the same content."""
    ds = ctx.dataset
    raw = ctx.policy.torchvision_raw
    assert raw is not None
    placed: dict[str, dict[str, Any]] = {}
    for r in result.files.values():
        target = raw / r.info.stem
        if target.exists() or target.is_symlink() or r.provenance.proof == "unverified":
            continue
        try:
            raw.mkdir(parents=True, exist_ok=True)
            atomic_write(str(target), _core.encode_idx(r.array))
            placed[str(target.absolute())] = {**identity(target.lstat()), "content_sha256": r.content_sha256}
            log.info("%s: wrote torchvision's decompressed %s", r.info.name, target)
        except OSError as e:
            _warn(result, f"{r.info.name}: could not write torchvision's {target} ({e})")
    if not (placed and ctx.cache):
        return
    try:
        with ctx.home.lock():
            records = ctx.home.records(reread=True)
            records.setdefault("placed", {}).update(placed)
            ctx.home.save(records)
    except OSError as e:
        _warn(result, f"{ds.name}: the record of the files placed in {raw} was not written ({e})")


__all__ = ["DatasetNotFoundError", "Policy", "Resolution", "Resolved", "mirror_list", "resolve"]
