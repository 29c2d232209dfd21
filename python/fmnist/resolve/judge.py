"""When is a copy the right one. It is accepted if its stored bytes match a published digest of the
file as published (a .gz, an .xz), or its decompressed content matches a known content digest
(the registry's, or one proven on this machine from a verified published form); a decompressed
copy counts by content digests only. Each copy is hashed and parsed from the same bytes in one
engine call, and the engine words every verdict; this module only reads them. A copy whose size
rules it out is turned down from ``stat``, before a byte is read."""

from __future__ import annotations

import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from ..datasets import Archive, Dataset, FileInfo
from ..errors import BadZipFile
from .results import Copy, Found, Judgment, Proof, Report, reason

K = _core.Kind
RETURN = _core.Errors.RETURN


@dataclass(frozen=True)
class Read:
    """A copy read and judged: its array when accepted by ``proof``, why (``message``), its content
    SHA-256 when computed, and a refused copy's well-formed array (``unproven``: for torchvision's
    rules)."""

    array: Any
    message: str
    proof: Proof | None = None
    sha: str = ""
    error: BaseException | None = None
    unproven: Any = None


def refused(message: str, error: BaseException | None = None) -> Read:
    return Read(None, message or "turned down", error=error)


def report(info: FileInfo, copy: Copy, read: Read, member: str = "", mapped: bool = False) -> Report:
    """A read copy as a source reports it: its judgment, and when accepted the file found."""
    j = Judgment(info, copy.path, copy.source, read.message, read.proof, member, mapped, read.error)
    return Report((j,), (Found(info, read.array, j, read.sha),) if j.ok else ())


def published(item: FileInfo | Archive) -> str:
    """The published digest of a file's (an archive's) stored form: "stored_md5:<hex>", else sha256."""
    if item.stored_md5:
        return f"stored_md5:{item.stored_md5}"
    return f"stored_sha256:{item.stored_sha256}" if item.stored_sha256 else ""


def proof_key(ds: Dataset, info: FileInfo) -> str:
    """What a content digest proven for ``info`` is keyed by: the published digest of its stored
    form (of the archive, for a member). It counts only while the registry still publishes it."""
    return f"archive {ds.archive.name} {published(ds.archive)}" if ds.archive is not None else published(info)


def accepted(info: FileInfo, proofs: Mapping[str, str]) -> set[str]:
    """The content SHA-256s the registry accepts for ``info`` today: its own, and those proven by
    the digests it publishes today (``proofs``)."""
    return {d for d in (info.content_sha256, *proofs) if d}


def expected(info: FileInfo, proofs: Mapping[str, str] = {}, *, stored: bool = True) -> list[_core.Expected]:
    """The digests the registry (and ``proofs``: content SHA-256s proven here, with what proved
    each) says the file has, the cheapest of each form; one matching accepts it."""
    out = []
    if stored and (info.stored_md5 or info.stored_sha256):
        md5 = bool(info.stored_md5)
        hex, name = (info.stored_md5, "MD5") if md5 else (info.stored_sha256, "SHA-256")
        out.append(_core.Expected(K.MD5 if md5 else K.SHA256, hex or "", f"the published stored {name}"))
    if info.content_sha256:
        out.append(_core.Expected(K.CONTENT_SHA256, info.content_sha256, "the known content SHA-256"))
    elif info.content_md5:
        out.append(_core.Expected(K.CONTENT_MD5, info.content_md5, "the known content MD5"))
    return out + [
        _core.Expected(K.CONTENT_SHA256, sha, f"that of {where}")
        for sha, where in proofs.items()
        if sha != info.content_sha256
    ]


def _proof(verdict: Any, info: FileInfo) -> Proof:
    if verdict.kind in (K.MD5, K.SHA256):
        return Proof("stored_" + verdict.kind.key)
    return Proof(verdict.kind.key) if verdict.expected in (info.content_sha256, info.content_md5) else Proof.PROVEN


def _fits(array: Any, info: FileInfo) -> str | None:
    if array.shape == info.shape and array.dtype == np.dtype(info.dtype):
        return None
    return f"expected {info.shape} {info.dtype}, found {array.shape} {array.dtype}"


def judge(outcome: Any, info: FileInfo) -> Read:
    """The policy over the engine's verdicts on one copy: accepted if an expected digest matched
    (for a decompressed copy, a content digest) and the array is the registry's."""
    raw = outcome.codec == _core.Codec.RAW
    relevant = [v for v in outcome.verdicts if not raw or v.kind in (K.CONTENT_MD5, K.CONTENT_SHA256)]
    sha, array = outcome.digests.get(K.CONTENT_SHA256, ""), outcome.array
    for v in (v for v in relevant if v.matched):
        wrong = _fits(array, info) if array is not None else None
        return Read(None, wrong, sha=sha, unproven=array) if wrong else Read(array, v.message, _proof(v, info), sha)
    if relevant:
        return Read(None, "; ".join(v.message for v in relevant), sha=sha, unproven=array)
    why = "no published digest covers this form of the file (" + ("decompressed" if raw else "compressed") + ")"
    if raw:
        why += ", and no verified published form of it proves its content"
    return Read(None, why, sha=sha, unproven=array)


def too_big(path: Path, most: int, what: str) -> str | None:
    """Why ``path`` is turned down from ``stat`` alone: no regular file, or over ``most`` bytes."""
    try:
        st = path.stat()
    except OSError as e:
        return f"unreadable: {reason(e)}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return f"{st.st_size:,} bytes, more than {what} ({most:,})" if st.st_size > most else None


def size_rule(copy: Copy, info: FileInfo) -> str | None:
    """A decompressed copy is exactly the IDX file's length; a stored one at most what any gzip
    or xz of it needs."""
    if not copy.decompressed:
        most = int(_core.max_compressed_size(info.dtype, list(info.shape)))
        return too_big(copy.path, most, f"any gzip or xz of a {info.shape} {info.dtype} IDX file needs")
    size = copy.path.stat().st_size if copy.path.exists() else -1
    return (
        None
        if size == info.content_size
        else f"{size:,} bytes, not the {info.content_size:,} of the decompressed IDX file"
    )


def read_files(copies: Sequence[Copy], infos: Sequence[FileInfo], proofs: Sequence[Mapping[str, str]]) -> list[Read]:
    """Reads and judges each copy, all in one engine call (on every core), hashed as read and
    parsed from the same bytes, ``max_bytes`` from the registry's shapes. A malformed or
    unreadable copy is refused, not raised."""
    if not copies:
        return []
    requests = [
        _core.Request(os.fspath(c.path), expected=expected(i, p, stored=not c.decompressed), report=[K.CONTENT_SHA256])
        for c, i, p in zip(copies, infos, proofs)
    ]
    outcomes = _core.read(requests, strict=False, max_bytes=max(i.content_size for i in infos), errors=RETURN)
    out = []
    for c, info, o in zip(copies, infos, outcomes):
        if isinstance(o, BaseException):  # IdxFormatError, BadGzipFile, XzError, OSError
            out.append(refused(f"unreadable: {reason(o)}", o))
        elif c.decompressed and o.codec != _core.Codec.RAW:
            out.append(refused(f"{o.codec.key} data under a decompressed file's name"))
        else:
            out.append(judge(o, info))
    return out


def hash_file(path: Path, info: FileInfo, proofs: Mapping[str, str]) -> Read:
    """Hashes a decompressed file as it streams past, keeping nothing (fmnist's own cache file,
    before it is mapped): no array either way; it matched when ``proof`` is set."""
    request = _core.Request(os.fspath(path), _core.Mode.DIGESTS, expected(info, proofs, stored=False))
    (o,) = _core.read([request], strict=False, errors=RETURN)
    if isinstance(o, BaseException):
        return refused(f"unreadable: {reason(o)}", o)
    v = next((v for v in o.verdicts if v.matched), None)
    if v is not None and o.codec == _core.Codec.RAW:
        return Read(None, v.message, _proof(v, info), v.actual)
    return refused("; ".join(v.message for v in o.verdicts) or "no content digest to check it by")


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError, ValueError)


def read_archive(
    path: Path, a: Archive, infos: Sequence[FileInfo], proofs: Sequence[Mapping[str, str]]
) -> tuple[Read, list[Read]]:
    """The archive judged by its published digest, and the files ``infos`` (members under
    ``a.members``) read out of the very bytes hashed, never extracted, each bounded by the zip's
    directory and the engine's bound for its shape; a bad member refuses only its own file, as a
    ``BadZipFile`` naming it. No member counts unless the archive is the published one; recorded
    ``proofs`` check each member too."""
    where = os.fspath(path)
    bad = too_big(path, a.max_size, "the archive's published bound")
    (whole,) = [bad] if bad else _core.read([_core.Request(where, _core.Mode.STORED)], errors=RETURN)
    if not isinstance(whole, _core.Outcome):
        why = whole if isinstance(whole, str) else f"unreadable: {reason(whole)}"
        return refused(why), [refused(why)] * len(infos)
    data = whole.stored
    assert data is not None
    try:
        with zipfile.ZipFile(BytesIO(data)) as z:
            members: list[Read | bytes] = [_member(z, where, a.members + i.name, i) for i in infos]
    except _ZIP_ERRORS as e:
        error = BadZipFile(f"{where}: not a readable zip archive: {e}")
        members = [refused(str(error), error)] * len(infos)
    todo = [k for k, m in enumerate(members) if isinstance(m, bytes)]
    kind, _, hex = published(a).partition(":")
    md5 = kind == "stored_md5"
    digest = _core.Expected(K.MD5 if md5 else K.SHA256, hex, f"the published archive {'MD5' if md5 else 'SHA-256'}")
    requests = [_core.Request(data, _core.Mode.DIGESTS, [digest])] + [
        _core.Request(
            (members[k], f"{where}:{a.members}{infos[k].name}"),
            expected=expected(infos[k], proofs[k], stored=False),
            report=[K.CONTENT_SHA256],
        )
        for k in todo
    ]
    # One engine call: the archive hashed on one core while its members inflate on the others.
    limit = max((infos[k].content_size for k in todo), default=0)
    whole, *outcomes = _core.read(requests, strict=False, max_bytes=limit, errors=RETURN)
    verdict = whole.verdicts[0]
    if not verdict.matched:
        return refused(verdict.message), [refused(verdict.message)] * len(infos)
    out = [m if isinstance(m, Read) else refused("not read") for m in members]
    for k, o in zip(todo, outcomes):
        info = infos[k]
        if isinstance(o, BaseException):
            out[k] = refused(f"unreadable: {reason(o)}", o)
        elif o.verdicts:  # the registry's content digest, or one recorded when it was verified
            out[k] = judge(o, info)
        else:  # no digest of its own: the verified archive proves it
            wrong = _fits(o.array, info)
            rule = f"a member of the verified archive ({verdict.message})"
            out[k] = refused(wrong) if wrong else Read(o.array, rule, Proof.ARCHIVE, o.digests[K.CONTENT_SHA256])
    return Read(np.empty(0, np.uint8), verdict.message, Proof.ARCHIVE), out


def _member(z: zipfile.ZipFile, where: str, name: str, info: FileInfo) -> Read | bytes:
    """The bytes of one member, read with a bound, or why it was refused (a ``BadZipFile``)."""

    def bad(problem: str) -> Read:
        error = BadZipFile(f"{where}: member {name}: {problem}")
        return refused(str(error), error)

    try:
        item = z.getinfo(name)
    except KeyError:
        return refused(f"no member {name} in the archive")
    bound = int(_core.max_compressed_size(info.dtype, list(info.shape)))
    if item.flag_bits & 0x1:
        return bad("encrypted; fmnist reads no encrypted members")
    if item.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return bad(f"compressed with zip method {item.compress_type}; fmnist reads stored and deflated members")
    if item.file_size > bound:
        size, shape = f"{item.file_size:,} bytes", f"{info.shape} {info.dtype} IDX file"
        return bad(f"the zip's directory gives it {size}, more than the {bound:,} any gzip of a {shape} can need")
    try:
        with z.open(item) as f:  # stops at the directory's size; the CRC is checked at the end
            data = f.read(bound + 1)
    except _ZIP_ERRORS as e:
        return bad(f"{type(e).__name__}: {e}")
    if len(data) != item.file_size:
        return bad(f"{len(data):,} bytes, not the {item.file_size:,} the zip's directory gives")
    return data


def read_npz(path: Path, ds: Dataset) -> tuple[Read, dict[str, Any]]:
    """keras's single-file form (``mnist.npz``): turned down from ``stat`` when larger than any .npz
    of the dataset's arrays, else judged by the SHA-256 keras publishes and, when it matches, its
    arrays, read from the very bytes that were hashed (no pickles)."""
    bad = too_big(
        path, sum(i.content_size for i in ds.files) * 9 // 8 + (1 << 20), "any .npz of the dataset's arrays needs"
    )
    if bad:
        return refused(bad), {}
    digest = _core.Expected(K.SHA256, ds.keras_npz_sha256, "keras's published SHA-256")
    (o,) = _core.read([_core.Request(os.fspath(path), _core.Mode.STORED, [digest])], strict=False, errors=RETURN)
    if isinstance(o, BaseException):
        return refused(f"unreadable: {reason(o)}", o), {}
    if not o.verdicts[0].matched:
        return refused(o.verdicts[0].message), {}
    try:
        with np.load(BytesIO(o.stored), allow_pickle=False) as npz:
            arrays = {k: np.ascontiguousarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        return refused(f"unreadable: {reason(e)}", e), {}
    return Read(np.empty(0, np.uint8), o.verdicts[0].message, Proof.KERAS_NPZ), arrays


def content_sha256(array: Any) -> str:
    """The content SHA-256 of ``array`` as an IDX file (encoded and hashed by the engine)."""
    request = _core.Request(_core.encode_idx(array), _core.Mode.DIGESTS, report=[K.CONTENT_SHA256])
    return str(_core.read([request])[0].digests[K.CONTENT_SHA256])
