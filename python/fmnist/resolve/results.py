"""What ``resolve`` and its sources give: immutable ``Judgment``s (a candidate accepted by a
``Proof``, with its array, or turned down with the reason), folded into a ``Resolution``."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..datasets import Dataset, FileInfo
from ..errors import Error


class Source(str, enum.Enum):
    """Where a copy was found: a layout of another loader's, or one of fmnist's own."""

    WARM_CACHE, FMNIST, TORCHVISION, KERAS, DEBIAN = "fmnist warm cache", "fmnist", "torchvision", "keras", "Debian"
    REPOSITORY, KERAS_NPZ, FMNIST_ARCHIVE = "dataset repository", "keras .npz", "fmnist archive"
    TORCHVISION_ARCHIVE, DOWNLOAD = "torchvision archive", "download"
    __str__ = str.__str__


class Proof(str, enum.Enum):
    """What accepted a copy: a published digest (of the stored form, or of the content), a content
    digest proven here by a verified published form, a stamp (fmnist's cache file, unchanged), the
    verified archive or keras .npz it is in; or nothing (torchvision's rules)."""

    STORED_MD5, STORED_SHA256, CONTENT_MD5, CONTENT_SHA256 = (
        "stored_md5",
        "stored_sha256",
        "content_md5",
        "content_sha256",
    )
    PROVEN, STAMP, ARCHIVE, KERAS_NPZ, UNVERIFIED = "proven", "stamp", "archive", "keras_npz_sha256", "unverified"
    __str__ = str.__str__


@dataclass(frozen=True)
class Copy:
    """A candidate; ``decompressed``: named as the decompressed IDX file (only content digests count)."""

    path: Path
    source: Source
    decompressed: bool = False


@dataclass(frozen=True)
class Judgment:
    """One candidate judged: accepted by ``proof`` with its ``array`` (``message`` in the engine's
    words; the judgment is the array's provenance), or turned down (``message``: why; ``error``:
    what was raised; ``unproven``: a well-formed array nothing proved). ``sha``: the content
    SHA-256, when computed."""

    info: FileInfo
    path: Path
    source: Source
    message: str
    proof: Proof | None = None
    member: str = ""
    mapped: bool = False  #: fmnist's own cache file, mapped copy-on-write (no other file is)
    error: BaseException | None = None
    array: Any = field(default=None, repr=False, compare=False)
    sha: str = ""
    unproven: Any = field(default=None, repr=False, compare=False)

    ok = property(lambda self: self.proof is not None)
    where = property(lambda self: f"{self.path}:{self.member}" if self.member else str(self.path))

    def __str__(self) -> str:
        if self.ok:
            return f"{self.where} [{self.source}; {self.proof}: {self.message}]"
        return f"{self.where} ({self.source}): {self.message}"


def judged(info: FileInfo, copy: Copy, message: str, proof: Proof | None = None, **kw: Any) -> Judgment:
    return Judgment(info, copy.path, copy.source, message or "turned down", proof, **kw)


def moved(j: Judgment, copy: Copy, prefix: str = "", **kw: Any) -> Judgment:
    """``j`` as a judgment of ``copy`` (its message after ``prefix``)."""
    return replace(j, path=copy.path, source=copy.source, message=prefix + j.message, **kw)


def reason(e: BaseException) -> str:
    """An exception as a reason: its message, or its class when it has none (a MemoryError)."""
    return str(e) or type(e).__name__


class DatasetNotFoundError(Error, FileNotFoundError):
    """No verified copy was found and downloading was off (or failed)."""


@dataclass(frozen=True)
class Resolution:
    """The fold: each file's accepting judgment (``files``), every judgment, where ``resolve``
    looked, and what it could not do (a cache not written, ...)."""

    dataset: Dataset
    wanted: tuple[FileInfo, ...]
    files: Mapping[str, Judgment] = field(default_factory=dict)
    judgments: tuple[Judgment, ...] = ()
    looked_in: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def missing(self) -> list[FileInfo]:
        return [i for i in self.wanted if i.name not in self.files]

    def rejected(self, info: FileInfo) -> list[Judgment]:
        return [j for j in self.judgments if j.info.name == info.name and not j.ok]

    def error(self, infos: Sequence[FileInfo] | None = None) -> OSError | None:
        """Why the files wanted (or ``infos``) are not all here: a download's error (an OSError),
        else a ``DatasetNotFoundError`` naming each file missing and why each candidate was turned
        down; None when none is missing."""
        missing = [i for i in (self.wanted if infos is None else infos) if i.name not in self.files]
        failed = (j.error for i in missing for j in self.rejected(i) if j.source == Source.DOWNLOAD)
        error = next((e for e in failed if isinstance(e, OSError)), None)
        if error is not None or not missing:
            return error
        lines = [f"  {i.name}: " + ("; ".join(map(str, self.rejected(i))) or "no copy found") for i in missing]
        off = "" if any(j.source == Source.DOWNLOAD for j in self.judgments) else " and download=False"
        return DatasetNotFoundError(
            f"{self.dataset.name}: no verified copy of {len(missing)} file(s){off}:\n"
            + "\n".join(lines)
            + f"\nlooked in: {', '.join(self.looked_in)}"
        )

    def arrays(self) -> list[Any]:
        """The arrays of the files wanted, in order; raises ``error()`` if any is missing."""
        error = self.error()
        if error is not None:
            raise error
        return [self.files[i.name].array for i in self.wanted]
