"""The verification policy: when is a file the right one?

A file is accepted if its stored bytes match a published digest of the .gz (the file as the
dataset's authors published it), or if its decompressed content matches the known content
digest (a mirror that recompressed the archive, as Debian does, or a decompressed copy).
Anything else is rejected, with the file, what was hashed, expected and actual.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import IdxFormatError
from .datasets import FileInfo

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Verdict:
    """Why a file was accepted (``rule``) or what did not match (``problems``)."""

    ok: bool
    rule: str
    problems: tuple[str, ...] = ()
    content_sha256: str = ""


def wanted(info: FileInfo) -> list[str]:
    """The digests to compute for ``info``: the stored ones that are published, and the content
    SHA-256 (it also stamps the warm cache)."""
    names = ["content_sha256"]
    if info.gz_md5:
        names.append("md5")
    elif info.gz_sha256:
        names.append("sha256")
    if info.content_md5 and not info.content_sha256:
        names.append("content_md5")
    return names


def judge(info: FileInfo, digests: dict[str, str], compressed: bool) -> Verdict:
    """Applies the policy to the digests computed for one file."""
    sha = digests.get("content_sha256", "")
    checks = []
    if compressed:
        checks += [
            ("md5", info.gz_md5, "stored MD5 matches the published .gz MD5", "MD5 of the stored .gz bytes"),
            (
                "sha256",
                info.gz_sha256,
                "stored SHA-256 matches the published .gz SHA-256",
                "SHA-256 of the stored .gz bytes",
            ),
        ]
    checks += [
        (
            "content_sha256",
            info.content_sha256,
            "content SHA-256 matches the known content SHA-256" + (" (a recompressed copy)" if compressed else ""),
            "SHA-256 of the decompressed IDX content",
        ),
        (
            "content_md5",
            info.content_md5,
            "content MD5 matches the known content MD5" + (" (a recompressed copy)" if compressed else ""),
            "MD5 of the decompressed IDX content",
        ),
    ]
    problems = []
    for key, expected, rule, what in checks:
        actual = digests.get(key)
        if expected is None or actual is None:
            continue
        if actual == expected:
            return Verdict(True, rule, content_sha256=sha)
        problems.append(f"{what}: expected {expected}, found {actual}")
    if not problems:
        problems.append(
            f"no published digest covers this form of the file ({'compressed' if compressed else 'decompressed'})"
        )
    return Verdict(False, "", tuple(problems), sha)


def read_verified(paths: Sequence[PathLike], infos: Sequence[FileInfo]) -> list[tuple[Any, Verdict]]:
    """Reads each file (in parallel) and judges it. Returns (array or None, verdict) per file; the
    array is None when the file was rejected. Malformed or unreadable files are rejected, not
    raised, and do not hold the others back (the engine gives one outcome per file)."""
    # max_bytes from the registry's shapes: a file whose header claims more is refused before
    # anything is inflated or allocated for it (a gzip bomb, a corrupt or hostile header).
    limit = max((i.content_size for i in infos), default=0)
    outcomes = _core.read_idx_digests([os.fspath(p) for p in paths], [wanted(i) for i in infos], max_bytes=limit)
    out = []
    for path, info, outcome in zip(paths, infos, outcomes):
        if isinstance(outcome, BaseException):  # IdxFormatError, BadGzipFile, an OSError
            out.append((None, Verdict(False, "", (f"unreadable: {outcome}",))))
        else:
            out.append(_finish(path, info, *outcome))
    return out


def _finish(
    path: PathLike, info: FileInfo, array: npt.NDArray[Any] | None, digests: dict[str, str], compressed: bool
) -> tuple[Any, Verdict]:
    verdict = judge(info, digests, compressed)
    if not verdict.ok:
        return None, verdict
    found = "no array" if array is None else f"{array.shape} {array.dtype}"
    if array is None or array.shape != info.shape or array.dtype != np.uint8:
        # Cannot happen for a file whose digest matched; kept as a guard on the registry.
        raise IdxFormatError(f"{os.fspath(path)}: expected {info.shape} uint8, found {found}")
    return array, verdict
