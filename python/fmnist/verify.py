"""The verification policy: when is a file the right one?

A file is accepted if its stored bytes match a published digest of the .gz (the file as the
dataset's authors published it), or if its decompressed content matches the known content
digest (a mirror that recompressed the archive, as Debian does, or a decompressed copy).
Anything else is rejected, with the file, what was hashed, expected and actual.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import IdxFormatError
from .cache import map_idx
from .datasets import Archive, FileInfo

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Verdict:
    """Why a file was accepted (``rule``) or what did not match (``problems``)."""

    ok: bool
    rule: str
    problems: tuple[str, ...] = ()
    content_sha256: str = ""


def has_content_digest(info: FileInfo) -> bool:
    """Whether the registry can judge a decompressed copy of ``info`` on its own."""
    return bool(info.content_sha256 or info.content_md5)


def wanted(info: FileInfo, stored: bool = True) -> list[str]:
    """The digests to compute for ``info``: the stored ones that are published (unless not
    ``stored``: a decompressed copy's stored bytes are its content), and the content SHA-256 (it
    also stamps the warm cache and proves decompressed copies)."""
    names = ["content_sha256"]
    if stored and info.gz_md5:
        names.append("md5")
    elif stored and info.gz_sha256:
        names.append("sha256")
    if info.content_md5 and not info.content_sha256:
        names.append("content_md5")
    return names


def judge(
    info: FileInfo, digests: dict[str, str], compressed: bool, proven: Mapping[str, str] | None = None
) -> Verdict:
    """Applies the policy to the digests computed for one file. ``proven`` maps content SHA-256s
    established on this machine (of a verified .gz of the same file) to where they were: a copy
    whose content equals one of them is the right one too."""
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
    if proven and sha in proven:
        return Verdict(True, f"content SHA-256 equals that of {proven[sha]}", content_sha256=sha)
    if not problems:
        problems.append(
            f"no published digest covers this form of the file ({'compressed' if compressed else 'decompressed'})"
            + ("" if compressed else ", and no verified .gz of it was found to compare its content with")
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


def judge_in_place(
    paths: Sequence[PathLike], infos: Sequence[FileInfo], proofs: Sequence[Mapping[str, str]]
) -> list[tuple[Any, Verdict]]:
    """Judges decompressed copies without reading them into memory: the length first, then the
    content hashed as it streams past (in parallel), and a copy that passes is mapped where it
    lies (copy-on-write, as the warm cache is) after checking it did not change meanwhile.
    ``proofs[i]``: content SHA-256s proven for ``infos[i]`` (see ``judge``)."""
    out: list[tuple[Any, Verdict] | None] = [None] * len(paths)
    todo: list[tuple[int, os.stat_result]] = []
    for k, (path, info) in enumerate(zip(paths, infos)):
        try:
            st = os.stat(path)
        except OSError as e:
            out[k] = (None, Verdict(False, "", (f"unreadable: {e}",)))
            continue
        if st.st_size != info.content_size:
            problem = f"{st.st_size:,} bytes, not the {info.content_size:,} of a decompressed {info.shape} IDX"
            out[k] = (None, Verdict(False, "", (problem,)))
        else:
            todo.append((k, st))
    outcomes = _core.read_idx_digests(
        [os.fspath(paths[k]) for k, _ in todo], [wanted(infos[k], stored=False) for k, _ in todo], decode=False
    )
    for (k, before), outcome in zip(todo, outcomes):
        info = infos[k]
        if isinstance(outcome, BaseException):
            out[k] = (None, Verdict(False, "", (f"unreadable: {outcome}",)))
            continue
        _, digests, compressed = outcome
        verdict = judge(info, digests, compressed, proofs[k])
        if not verdict.ok:
            out[k] = (None, verdict)
            continue
        array = map_idx(Path(os.fspath(paths[k])), info)
        try:
            after = os.stat(paths[k])
            same = all(getattr(after, a) == getattr(before, a) for a in ("st_ino", "st_size", "st_mtime_ns"))
        except OSError:
            same = False
        if array is None or not same or compressed:
            problem = "gzip data under a decompressed file's name" if compressed else "changed while it was verified"
            out[k] = (None, Verdict(False, "", (problem,), verdict.content_sha256))
            continue
        out[k] = (array, verdict)
    return [r for r in out if r is not None]


def check_archive(path: PathLike, archive: Archive) -> Verdict:
    """Whether ``path`` is the published archive: its MD5 (hashed in Rust, as it streams past)."""
    (outcome,) = _core.read_idx_digests([os.fspath(path)], [["md5"]], decode=False)
    if isinstance(outcome, BaseException):
        return Verdict(False, "", (f"unreadable: {outcome}",))
    found = outcome[1]["md5"]
    if found != archive.md5:
        return Verdict(False, "", (f"MD5 of the stored archive: expected {archive.md5}, found {found}",))
    return Verdict(True, "stored MD5 matches the published archive MD5")


def read_members(path: PathLike, archive: Archive, infos: Sequence[FileInfo]) -> list[tuple[Any, Verdict]]:
    """The IDX files ``infos`` read out of the verified zip ``path`` (members under
    ``archive.members``), decoded in parallel, never extracted to disk."""
    blobs: list[tuple[bytes, str] | None] = []
    out: list[tuple[Any, Verdict] | None] = []
    try:
        with zipfile.ZipFile(path) as z:
            for info in infos:
                member = archive.members + info.name
                try:
                    blobs.append((z.read(member), f"{os.fspath(path)}:{member}"))
                    out.append(None)
                except KeyError:
                    blobs.append(None)
                    out.append((None, Verdict(False, "", (f"no member {member} in the archive",))))
    except (OSError, zipfile.BadZipFile) as e:
        return [(None, Verdict(False, "", (f"unreadable archive: {e}",))) for _ in infos]
    todo = [k for k, b in enumerate(blobs) if b is not None]
    outcomes = _core.read_idx_digests(
        [blobs[k] for k in todo],  # type: ignore[misc]
        [["content_sha256"] for _ in todo],
        max_bytes=max((infos[k].content_size for k in todo), default=0),
    )
    for k, outcome in zip(todo, outcomes):
        info = infos[k]
        if isinstance(outcome, BaseException):
            out[k] = (None, Verdict(False, "", (f"unreadable: {outcome}",)))
            continue
        array, digests, _ = outcome
        mismatch = _mismatch(info, array)
        if mismatch:
            out[k] = (None, Verdict(False, "", (mismatch,)))
            continue
        rule = "a member of the verified archive (stored MD5 matches the published archive MD5)"
        out[k] = (array, Verdict(True, rule, content_sha256=digests["content_sha256"]))
    return [r for r in out if r is not None]


def read_keras_npz(path: PathLike, sha256: str) -> tuple[str, dict[str, npt.NDArray[Any]] | None]:
    """keras's single-file form of a dataset (``mnist.npz``): ("", its arrays) when its SHA-256 is
    the one keras publishes, else (the problem, None). Read without pickles."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            return f"SHA-256 of the stored .npz: expected {sha256} (keras's), found {digest.hexdigest()}", None
        with np.load(path, allow_pickle=False) as npz:
            return "", {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        return f"unreadable: {e}", None


def _finish(
    path: PathLike, info: FileInfo, array: npt.NDArray[Any] | None, digests: dict[str, str], compressed: bool
) -> tuple[Any, Verdict]:
    verdict = judge(info, digests, compressed)
    if not verdict.ok:
        return None, verdict
    mismatch = _mismatch(info, array)
    if mismatch:
        # Cannot happen for a file whose digest matched; kept as a guard on the registry.
        raise IdxFormatError(f"{os.fspath(path)}: {mismatch}")
    return array, verdict


def _mismatch(info: FileInfo, array: npt.NDArray[Any] | None) -> str:
    """What is wrong with a decoded ``array`` as the file ``info`` describes it ("" if nothing)."""
    if array is not None and array.shape == info.shape and array.dtype == np.dtype(info.dtype):
        return ""
    found = "no array" if array is None else f"{array.shape} {array.dtype}"
    return f"expected {info.shape} {info.dtype}, found {found}"
