"""When is a copy the right one: its stored bytes match a published digest of the file as published
(a .gz, an .xz), or its decompressed content a known content digest (the registry's, or one proven
here from a verified published form; a decompressed copy counts by these only). Each copy is hashed
and parsed from the same bytes in one engine call, which words every verdict; this module reads
them. A copy whose size rules it out is turned down from ``stat``, before a byte is read."""

from __future__ import annotations

import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core, idx
from ..datasets import Archive, Dataset, FileInfo
from ..errors import BadZipFile
from .results import Copy, Judgment, Proof, judged, reason

K, RETURN = _core.Kind, _core.Errors.RETURN
Proofs = Mapping[str, Mapping[str, str]]  #: file name -> {content SHA-256 proven here: what proved it}


def form(key: str) -> _core.Kind:
    """The engine's kind of a registry digest field ("stored_md5", "content_sha256", ...)."""
    return idx.KINDS[key.removeprefix("stored_")]


def published(item: FileInfo | Archive) -> str:
    """The published digest of a stored form: "stored_md5:<hex>", else "stored_sha256:<hex>"."""
    return f"stored_md5:{item.stored_md5}" if item.stored_md5 else f"stored_sha256:{item.stored_sha256 or ''}"


def proof_key(ds: Dataset, info: FileInfo, keras_npz: bool = False) -> str:
    """What a content digest proven for ``info`` is keyed by: the published digest that proved it
    (its stored form's, the archive's for a member, keras's for its .npz); it counts only while
    the registry still publishes that digest (``proof_keys``)."""
    if keras_npz:
        return f"keras_npz_sha256:{ds.keras_npz_sha256}"
    return f"archive {ds.archive.name} {published(ds.archive)}" if ds.archive is not None else published(info)


def proof_keys(ds: Dataset, info: FileInfo) -> set[str]:
    """Every key under which a proof of ``info``'s content counts today."""
    return {proof_key(ds, info)} | ({proof_key(ds, info, keras_npz=True)} if ds.keras_npz_sha256 else set())


def accepted(info: FileInfo, proofs: Mapping[str, str]) -> set[str]:
    """The content SHA-256s the registry accepts for ``info`` today: its own and those proven here."""
    return {d for d in (info.content_sha256, *proofs) if d}


def expected(info: FileInfo, proofs: Mapping[str, str], stored: bool = True) -> list[_core.Expected]:
    """The digests ``info`` is known to have (the cheapest of each form): one matching accepts it."""
    out = []
    for pair in (("stored_md5", "stored_sha256"),) * stored + (("content_sha256", "content_md5"),):
        key = next((k for k in pair if getattr(info, k)), None)
        if key is not None:
            what = ("the published stored " if key[0] == "s" else "the known content ") + key.split("_")[1].upper()
            out.append(_core.Expected(form(key), getattr(info, key), what.replace("SHA256", "SHA-256")))
    return out + [
        _core.Expected(K.CONTENT_SHA256, d, f"that of {w}") for d, w in proofs.items() if d != info.content_sha256
    ]


def _proof(v: Any, info: FileInfo) -> Proof:
    if v.kind in (K.MD5, K.SHA256):
        return Proof("stored_" + v.kind.key)
    return Proof(v.kind.key) if v.expected in (info.content_sha256, info.content_md5) else Proof.PROVEN


def _fits(a: Any, info: FileInfo) -> str:
    ok = a.shape == info.shape and a.dtype == np.dtype(info.dtype)
    return "" if ok else f"expected {info.shape} {info.dtype}, found {a.shape} {a.dtype}"


def judge(o: Any, info: FileInfo, copy: Copy, member: str = "") -> Judgment:
    """The engine's outcome ``o`` (or exception) on one copy, judged: accepted if an expected digest
    matched (for a decompressed copy, a content digest) and the array is the registry's."""
    if isinstance(o, BaseException):  # IdxFormatError, BadGzipFile, XzError, OSError
        return judged(info, copy, f"unreadable: {reason(o)}", error=o, member=member)
    if copy.decompressed and o.codec != _core.Codec.RAW:
        return judged(info, copy, f"{o.codec.key} data under a decompressed file's name")
    raw, sha, a = o.codec == _core.Codec.RAW, o.digests.get(K.CONTENT_SHA256, ""), o.array
    relevant = [v for v in o.verdicts if not raw or v.kind in (K.CONTENT_MD5, K.CONTENT_SHA256)]
    v = next((v for v in relevant if v.matched), None)
    if v is not None and not (a is not None and _fits(a, info)):
        return judged(info, copy, v.message, _proof(v, info), array=a, sha=sha, member=member)
    why = (a is not None and v is not None and _fits(a, info)) or "; ".join(x.message for x in relevant)
    if not relevant:
        why = "no published digest covers this form of the file (" + ("decompressed" if raw else "compressed") + ")"
        why += ", and no verified published form of it proves its content" if raw else ""
    return judged(info, copy, why, sha=sha, unproven=a, member=member)


def too_big(path: Path, most: int, what: str, exact: int = -1) -> str:
    """Why ``path`` is turned down from ``stat`` alone ("" when it is not): no regular file, longer
    than ``most``, or not ``exact`` bytes long."""
    try:
        st = path.stat()
    except OSError as e:
        return f"unreadable: {reason(e)}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if exact >= 0 and st.st_size != exact:
        return f"{st.st_size:,} bytes, not the {exact:,} of {what}"
    return f"{st.st_size:,} bytes, more than {what} ({most:,})" if st.st_size > most else ""


def read_files(heads: Sequence[tuple[FileInfo, Copy]], proofs: Proofs, exact: bool = True) -> list[Judgment]:
    """Each copy turned down from its size (a decompressed copy has the IDX file's length, or when
    not ``exact`` at most that; a stored one at most what any gzip or xz needs), or read and judged,
    all in one engine call (on every core): hashed as read, parsed from the same bytes."""

    def size_rule(i: FileInfo, c: Copy) -> str:
        if c.decompressed:
            return too_big(c.path, i.content_size, "the decompressed IDX file", i.content_size if exact else -1)
        most = int(_core.max_compressed_size(i.dtype, list(i.shape)))
        return too_big(c.path, most, f"any gzip or xz of a {i.shape} {i.dtype} IDX file needs")

    out = [judged(i, c, why) if (why := size_rule(i, c)) else None for i, c in heads]
    todo = [k for k, j in enumerate(out) if j is None]
    requests = [
        _core.Request(
            os.fspath(c.path),
            expected=expected(i, proofs.get(i.name, {}), not c.decompressed),
            report=[K.CONTENT_SHA256],
        )
        for i, c in (heads[k] for k in todo)
    ]
    limit = max((heads[k][0].content_size for k in todo), default=0)
    for k, o in zip(todo, _core.read(requests, strict=False, max_bytes=limit, errors=RETURN) if todo else []):
        out[k] = judge(o, *heads[k])
    return [j for j in out if j is not None]


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError, ValueError)


def whole(a: Archive) -> FileInfo:
    """An archive as a file to download and judge."""
    return FileInfo(a.file, "", "archive", (a.max_size,), stored_md5=a.stored_md5, stored_sha256=a.stored_sha256)


def read_archive(copy: Copy, a: Archive, infos: Sequence[FileInfo], proofs: Proofs) -> list[Judgment]:
    """[The archive judged by its published digest, then each file of ``infos`` (a member under
    ``a.members``)]: members are read out of the very bytes hashed, never extracted, each bounded by
    the zip's directory and the engine's bound for its shape: a bad member refuses only its own file
    (a ``BadZipFile`` naming it). No member counts unless the archive is the published one; recorded
    ``proofs`` check each member too."""
    where, names = os.fspath(copy.path), [a.members + i.name for i in infos]
    why = too_big(copy.path, a.max_size, "the archive's published bound")
    o = None if why else _core.read([_core.Request(where, _core.Mode.STORED)], errors=RETURN)[0]
    if why or isinstance(o, BaseException):
        error = o if isinstance(o, BaseException) else None
        j = judged(whole(a), copy, why or f"unreadable: {reason(error or OSError())}", error=error)
        return [j] + [judged(i, copy, j.message, error=error, member=n) for i, n in zip(infos, names)]
    assert o is not None and o.stored is not None
    try:
        with zipfile.ZipFile(BytesIO(o.stored)) as z:
            members = [_member(z, where, n, i) for n, i in zip(names, infos)]
    except _ZIP_ERRORS as e:
        members = [BadZipFile(f"{where}: not a readable zip archive: {e}")] * len(infos)
    todo = [k for k, m in enumerate(members) if isinstance(m, bytes)]
    kind, hex = published(a).split(":")
    digest = _core.Expected(form(kind), hex, f"the published archive {'MD5' if kind.endswith('md5') else 'SHA-256'}")
    requests = [_core.Request(o.stored, _core.Mode.DIGESTS, [digest])] + [
        _core.Request(
            (members[k], f"{where}:{names[k]}"),
            expected=expected(infos[k], proofs.get(infos[k].name, {}), False),
            report=[K.CONTENT_SHA256],
        )
        for k in todo
    ]
    # One engine call: the archive hashed on one core while its members inflate on the others.
    limit = max((infos[k].content_size for k in todo), default=0)
    verdict, *outcomes = _core.read(requests, strict=False, max_bytes=limit, errors=RETURN)
    v = verdict.verdicts[0]
    out = [judged(i, copy, v.message, member=n) for i, n in zip(infos, names)]
    if not v.matched:
        return [judged(whole(a), copy, v.message), *out]
    for k, m in enumerate(members):
        if not isinstance(m, bytes):
            out[k] = judged(infos[k], copy, str(m), error=m if isinstance(m, BaseException) else None, member=names[k])
    for k, o in zip(todo, outcomes):
        if isinstance(o, BaseException) or o.verdicts:  # unreadable, or a content digest to judge it by
            out[k] = judge(o, infos[k], copy, names[k])
        else:  # no digest of its own: the verified archive proves it
            wrong, rule = _fits(o.array, infos[k]), f"a member of the verified archive ({v.message})"
            sha = o.digests[K.CONTENT_SHA256]
            out[k] = judged(
                infos[k], copy, wrong or rule, None if wrong else Proof.ARCHIVE, member=names[k], array=o.array, sha=sha
            )
    return [judged(whole(a), copy, v.message, Proof.ARCHIVE), *out]


def _member(z: zipfile.ZipFile, where: str, name: str, info: FileInfo) -> bytes | str | BadZipFile:
    """The bytes of one member, read with a bound; or why not (a ``BadZipFile`` naming it)."""
    try:
        item = z.getinfo(name)
    except KeyError:
        return f"no member {name} in the archive"
    bound = int(_core.max_compressed_size(info.dtype, list(info.shape)))
    if item.flag_bits & 0x1:
        why = "encrypted; fmnist reads no encrypted members"
    elif item.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        why = f"compressed with zip method {item.compress_type}; fmnist reads stored and deflated members"
    elif item.file_size > bound:
        why = f"the zip's directory gives it {item.file_size:,} bytes, more than the {bound:,} any gzip"
        why += f" of a {info.shape} {info.dtype} IDX file can need"
    else:
        try:
            with z.open(item) as f:  # stops at the directory's size; the CRC is checked at the end
                data = f.read(bound + 1)
        except _ZIP_ERRORS as e:
            return BadZipFile(f"{where}: member {name}: {type(e).__name__}: {e}")
        if len(data) == item.file_size:
            return data
        why = f"{len(data):,} bytes, not the {item.file_size:,} the zip's directory gives"
    return BadZipFile(f"{where}: member {name}: {why}")


def read_npz(copy: Copy, ds: Dataset, infos: Sequence[FileInfo]) -> list[Judgment]:
    """keras's single-file form (``mnist.npz``): turned down from ``stat`` when larger than any .npz of
    the dataset's arrays, else judged by the SHA-256 keras publishes and, when it matches, each file's
    array (``x_test``, ...) read from the very bytes hashed (no pickles)."""
    most = sum(i.content_size for i in ds.files) * 9 // 8 + (1 << 20)
    why, arrays, message = too_big(copy.path, most, "any .npz of the dataset's arrays needs"), {}, ""
    if not why:
        digest = _core.Expected(K.SHA256, ds.keras_npz_sha256, "keras's published SHA-256")
        (o,) = _core.read(
            [_core.Request(os.fspath(copy.path), _core.Mode.STORED, [digest])], strict=False, errors=RETURN
        )
        if isinstance(o, BaseException) or not o.verdicts[0].matched:
            why = f"unreadable: {reason(o)}" if isinstance(o, BaseException) else o.verdicts[0].message
        else:
            message = o.verdicts[0].message
            try:
                with np.load(BytesIO(o.stored), allow_pickle=False) as npz:
                    arrays = {k: np.ascontiguousarray(npz[k]) for k in npz.files}
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                why = f"unreadable: {reason(e)}"
    out = []
    for i in infos:
        key = ("x_" if i.kind == "images" else "y_") + i.split
        a = arrays.get(key)
        if why or a is None or _fits(a, i):
            out.append(
                judged(i, copy, why or f"no {i.dtype} {key} of shape {i.shape} in it", member="" if why else key)
            )
        else:
            out.append(judged(i, copy, message, Proof.KERAS_NPZ, member=key, array=a, sha=content_sha256(a)))
    return out


def content_sha256(array: Any) -> str:
    """The content SHA-256 of ``array`` as an IDX file (encoded and hashed by the engine)."""
    request = _core.Request(_core.encode_idx(array), _core.Mode.DIGESTS, report=[K.CONTENT_SHA256])
    return str(_core.read([request])[0].digests[K.CONTENT_SHA256])
