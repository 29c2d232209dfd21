"""The verification policy over the engine's proofs: when is a file the right one?

A file is accepted if its stored bytes match a published digest of the file as published (a
.gz or .xz), or if its decompressed content matches a known content digest (published, or
proven on this machine from a verified published form). For a decompressed copy only content
digests count. Each file is hashed and parsed from the same bytes in one engine call; the engine
compares every digest and words every verdict, and this module only reads them.
"""

from __future__ import annotations

import lzma
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .datasets import Archive, FileInfo
from .errors import BadZipFile

#: What the engine is told a file must have.
Expected = list[_core.Expected]

K = _core.Kind


@dataclass(frozen=True)
class Judged:
    """One copy of a file, read and judged: the array when it was accepted, why (``message``: the
    rule that accepted it, or every problem), and its content SHA-256 when it was computed."""

    array: npt.NDArray[Any] | None
    message: str
    content_sha256: str = ""
    error: BaseException | None = None
    #: what proved it, named as the registry names digests: "stored_md5", "stored_sha256",
    #: "content_md5", "content_sha256" (the registry's), "proven" (a content digest proven on this
    #: machine by a verified published form), "stamp", "archive", "keras_npz_sha256",
    #: "unverified" (torchvision's rules: loaded as torchvision would, proven by nothing)
    proof: str = ""
    #: a refused copy's array, when it was well-formed IDX and only no digest or shape proved it
    unproven: npt.NDArray[Any] | None = None

    @property
    def ok(self) -> bool:
        return self.array is not None


def refused(message: str, error: BaseException | None = None) -> Judged:
    return Judged(None, message, error=error)


def accepted(message: str, proof: str) -> Judged:
    """A verdict of acceptance for something that is not itself an array (an archive, an .npz)."""
    return Judged(np.empty(0, np.uint8), message, proof=proof)


def _proof(verdict: Any, info: FileInfo) -> str:
    """What a matched verdict proves the file by (see ``Judged.proof``)."""
    if verdict.kind in (K.MD5, K.SHA256):
        return f"stored_{verdict.kind.key}"
    return verdict.kind.key if verdict.expected in (info.content_sha256, info.content_md5) else "proven"


def published(item: FileInfo | Archive) -> str:
    """The published digest of a file's (or an archive's) stored form, the one the engine is given
    and that proofs made from it are keyed by: "stored_md5:<hex>", else "stored_sha256:<hex>"."""
    if item.stored_md5:
        return f"stored_md5:{item.stored_md5}"
    return f"stored_sha256:{item.stored_sha256}" if item.stored_sha256 else ""


def by_stored_digest(judged: Judged) -> bool:
    """Whether ``judged`` was accepted by a published digest of the stored form (then its content
    digest is proven by it, for copies in other forms)."""
    return judged.ok and judged.proof in ("stored_md5", "stored_sha256")


def has_content_digest(info: FileInfo) -> bool:
    """Whether the registry can judge a decompressed copy of ``info`` on its own."""
    return bool(info.content_sha256 or info.content_md5)


def expected(info: FileInfo, proofs: Mapping[str, str] = {}, *, stored: bool = True) -> Expected:
    """What the registry (and ``proofs``: content SHA-256s proven on this machine, with what
    proved each) says the file's digests are; ``stored=False`` leaves out the stored form's (a
    member of an archive has none of its own). The file is accepted when one matches."""
    # One digest of each form, the cheapest known: a second would prove the same bytes again.
    out: Expected = []
    if stored and info.stored_md5:
        out.append(_core.Expected(K.MD5, info.stored_md5, "the published stored MD5"))
    elif stored and info.stored_sha256:
        out.append(_core.Expected(K.SHA256, info.stored_sha256, "the published stored SHA-256"))
    if info.content_sha256:
        out.append(_core.Expected(K.CONTENT_SHA256, info.content_sha256, "the known content SHA-256"))
    elif info.content_md5:
        out.append(_core.Expected(K.CONTENT_MD5, info.content_md5, "the known content MD5"))
    out += [
        _core.Expected(K.CONTENT_SHA256, sha, f"that of {where}")
        for sha, where in proofs.items()
        if sha != info.content_sha256
    ]
    return out


def _judge(outcome: Any, info: FileInfo) -> Judged:
    """The policy over the engine's verdicts on one file: accepted if any expected digest
    matched (for a decompressed copy, any content digest) and the array is the registry's."""
    raw = outcome.codec == _core.Codec.RAW
    relevant = [v for v in outcome.verdicts if not raw or v.kind in (K.CONTENT_MD5, K.CONTENT_SHA256)]
    sha = outcome.digests.get(K.CONTENT_SHA256, "")
    for v in relevant:
        if v.matched:
            array = outcome.array
            if array is not None and (array.shape != info.shape or array.dtype != np.dtype(info.dtype)):
                found = f"expected {info.shape} {info.dtype}, found {array.shape} {array.dtype}"
                return Judged(None, found, sha, unproven=array)
            return Judged(array, v.message, sha, proof=_proof(v, info))
    if relevant:
        return Judged(None, "; ".join(v.message for v in relevant), sha, unproven=outcome.array)
    form = "decompressed" if raw else "compressed"
    return Judged(
        None,
        f"no published digest covers this form of the file ({form})"
        + (", and no verified published form of it proves its content" if form == "decompressed" else ""),
        sha,
        unproven=outcome.array,
    )


def read_files(
    paths: Sequence[str | os.PathLike[str]],
    infos: Sequence[FileInfo],
    proofs: Sequence[Mapping[str, str]],
    decompressed: Sequence[bool],
    *,
    bounded: bool = True,
) -> list[Judged]:
    """Reads each file into memory and judges it, all in one engine call (spread over the cores):
    hashed while it is read, parsed from the same bytes. A file named as decompressed must hold
    decompressed data. Malformed or unreadable files are refused, not raised, and do not hold
    the others back. ``max_bytes`` comes from the registry's shapes, so a header claiming more
    is refused before anything is inflated or allocated."""
    if not paths:
        return []
    outcomes = _core.read(
        [
            # A decompressed copy is judged by content digests only: no stored digest is hashed for it.
            _core.Request(os.fspath(p), expected=expected(i, pr, stored=not raw), report=[K.CONTENT_SHA256])
            for p, i, pr, raw in zip(paths, infos, proofs, decompressed)
        ],
        strict=False,
        errors=_core.Errors.RETURN,
        # (unbounded only for decompressed files, whose length must equal what their header says)
        max_bytes=max(i.content_size for i in infos) if bounded else None,
    )
    out = []
    for info, outcome, raw in zip(infos, outcomes, decompressed):
        if isinstance(outcome, BaseException):  # IdxFormatError, BadGzipFile, XzError, OSError
            out.append(refused(f"unreadable: {outcome}", outcome))
        elif raw and outcome.codec != _core.Codec.RAW:
            out.append(refused(f"{outcome.codec.key} data under a decompressed file's name"))
        else:
            out.append(_judge(outcome, info))
    return out


def hash_file(path: str | os.PathLike[str], info: FileInfo, proofs: Mapping[str, str]) -> Judged:
    """Hashes a decompressed file as it streams past, without keeping it (fmnist's own cache file,
    checked before it is mapped). There is no array either way: it matched when ``proof`` is
    set (then ``content_sha256`` is its digest)."""
    (outcome,) = _core.read(
        [_core.Request(os.fspath(path), _core.Mode.DIGESTS, expected(info, proofs, stored=False))],
        strict=False,
        errors=_core.Errors.RETURN,
    )
    if isinstance(outcome, BaseException):
        return refused(f"unreadable: {outcome}", outcome)
    matched = [v for v in outcome.verdicts if v.matched]
    if matched and outcome.codec == _core.Codec.RAW:
        return Judged(None, matched[0].message, matched[0].actual, proof=_proof(matched[0], info))
    return refused("; ".join(v.message for v in outcome.verdicts) or "no content digest to check it by")


#: Exceptions zipfile raises for a corrupt, encrypted or unusual member (beyond BadZipFile).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


def read_archive(
    path: str | os.PathLike[str], archive: Archive, infos: Sequence[FileInfo], proofs: Sequence[Mapping[str, str]]
) -> tuple[Judged, list[Judged]]:
    """The archive judged by its stored digest, and the files ``infos`` read out of it (members
    under ``archive.members``). The archive is read once: hashed while it is read, and its members
    taken from those very bytes, never extracted, never read from the file again. Each member's
    size is checked against the zip's directory and the engine's bound for the registry's shape
    before it is inflated, and read with that bound; a bad member (corrupt, encrypted, too big,
    an unusual compression) refuses only its own file, as a ``BadZipFile`` naming the member. No
    member is accepted unless the archive is the published one; ``proofs`` (content digests
    recorded when it was verified before) check each member too."""
    where = os.fspath(path)
    kind, _, hex_digest = published(archive).partition(":")
    algorithm, engine_kind = {"stored_md5": ("MD5", K.MD5), "stored_sha256": ("SHA-256", K.SHA256)}[kind]
    digest = [_core.Expected(engine_kind, hex_digest, f"the published archive {algorithm}")]
    (whole,) = _core.read([_core.Request(where, _core.Mode.STORED)], errors=_core.Errors.RETURN)  # read once
    if isinstance(whole, BaseException):
        bad = refused(f"unreadable: {whole}", whole)
        return bad, [bad] * len(infos)
    data = whole.stored
    members: list[Judged | bytes] = []
    try:
        with zipfile.ZipFile(BytesIO(data)) as z:
            members = [_member(z, where, archive.members + info.name, info) for info in infos]
    except _ZIP_ERRORS as e:
        error = BadZipFile(f"{where}: not a readable zip archive: {e}")
        members = [refused(str(error), error)] * len(infos)
    todo = [k for k, m in enumerate(members) if isinstance(m, bytes)]
    blobs = [(m, f"{where}:{archive.members}{infos[k].name}") for k, m in enumerate(members) if isinstance(m, bytes)]
    # One engine call: the archive's digest on one core while its members inflate on the others,
    # all from the bytes read above. No member counts unless the digest matches.
    whole_proof, *outcomes = _core.read(
        [
            _core.Request(data, _core.Mode.DIGESTS, digest),
            *(
                _core.Request(blob, expected=expected(infos[k], proofs[k], stored=False), report=[K.CONTENT_SHA256])
                for k, blob in zip(todo, blobs)
            ),
        ],
        strict=False,
        errors=_core.Errors.RETURN,
        max_bytes=max((infos[k].content_size for k in todo), default=0),
    )
    if isinstance(whole_proof, BaseException):
        bad = refused(f"unreadable: {whole_proof}", whole_proof)
        return bad, [bad] * len(infos)
    (verdict,) = whole_proof.verdicts
    if not verdict.matched:
        bad = refused(verdict.message)
        return bad, [bad] * len(infos)
    out: list[Judged] = [m if isinstance(m, Judged) else refused("") for m in members]
    for k, outcome in zip(todo, outcomes):
        info = infos[k]
        if isinstance(outcome, BaseException):
            out[k] = refused(f"unreadable: {outcome}", outcome)
            continue
        if outcome.verdicts:  # the registry's content digest, or one recorded when it was verified
            out[k] = _judge(outcome, info)
            continue
        array = outcome.array  # no digest of its own: the verified archive proves it
        if array.shape != info.shape or array.dtype != np.dtype(info.dtype):
            out[k] = refused(f"expected {info.shape} {info.dtype}, found {array.shape} {array.dtype}")
        else:
            rule = f"a member of the verified archive ({verdict.message})"
            out[k] = Judged(array, rule, outcome.digests[K.CONTENT_SHA256], proof="archive")
    return accepted(verdict.message, "archive"), out


def _member(z: zipfile.ZipFile, where: str, name: str, info: FileInfo) -> Judged | bytes:
    """The bytes of one member, read with a bound, or why it was refused (a ``BadZipFile``)."""

    def bad(problem: str) -> Judged:
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
        return bad(
            f"the zip's directory gives it {item.file_size:,} bytes, more than the {bound:,} any gzip of a "
            f"{info.shape} {info.dtype} IDX file can need"
        )
    try:
        with z.open(item) as f:  # stops at the directory's size; the CRC is checked at the end
            data = f.read(bound + 1)
    except _ZIP_ERRORS as e:
        return bad(f"{type(e).__name__}: {e}")
    if len(data) != item.file_size:
        return bad(f"{len(data):,} bytes, not the {item.file_size:,} the zip's directory gives")
    return data


def read_npz(path: str | os.PathLike[str], sha256: str) -> tuple[Judged, dict[str, npt.NDArray[Any]]]:
    """keras's single-file form of a dataset (``mnist.npz``): judged by the SHA-256 keras publishes
    for it and, when that matches, its arrays, read from the very bytes that were hashed (and
    without pickles)."""
    (outcome,) = _core.read(
        [
            _core.Request(
                os.fspath(path), _core.Mode.STORED, [_core.Expected(K.SHA256, sha256, "keras's published SHA-256")]
            )
        ],
        strict=False,
        errors=_core.Errors.RETURN,
    )
    if isinstance(outcome, BaseException):
        return refused(f"unreadable: {outcome}", outcome), {}
    (verdict,) = outcome.verdicts
    if not verdict.matched:
        return refused(verdict.message), {}
    try:
        with np.load(BytesIO(outcome.stored), allow_pickle=False) as npz:
            return accepted(verdict.message, "keras_npz_sha256"), {k: np.ascontiguousarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        return refused(f"unreadable: {e}", e), {}


def content_sha256(array: npt.NDArray[Any]) -> str:
    """The content SHA-256 of ``array`` as an IDX file (encoded and hashed by the engine): what
    proves a copy that came in another form (keras's .npz)."""
    (outcome,) = _core.read([_core.Request(_core.encode_idx(array), _core.Mode.DIGESTS, report=[K.CONTENT_SHA256])])
    return str(outcome.digests[K.CONTENT_SHA256])
