"""The pure-Python reference reader and writer: the executable specification of fmnist.

Short on purpose, using only the standard library's zlib/hashlib and numpy. The tests check
that ``fmnist.read_idx`` agrees with ``read_idx`` here bit for bit, and rejects exactly what
it rejects; the benches measure how much faster the Rust engine is.

IDX: big-endian; bytes 0-1 zero, byte 2 the type code, byte 3 the number of dimensions n,
then n uint32 sizes, then the payload in C order; the length must be exact.
gzip (RFC 1952): one or more members, each header | deflate | CRC32 | ISIZE, with zero bytes
of padding allowed after a member (as Python's gzip module and GNU gzip allow).
xz: one or more streams (with stream padding), as the standard library's ``lzma`` reads them;
a corrupt or truncated xz stream raises ``lzma.LZMAError``.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import struct
import zlib
from gzip import BadGzipFile
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ChecksumError, IdxFormatError

#: type code -> numpy dtype as stored (big-endian)
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}
MAX_NDIM = 64 if int(np.__version__.split(".")[0]) >= 2 else 32

FHCRC, FEXTRA, FNAME, FCOMMENT, RESERVED = 2, 4, 8, 16, 0xE0
XZ_MAGIC = b"\xfd7zXZ\x00"


def _member_header(data: bytes, pos: int) -> int:
    """Checks the gzip member header at ``pos``; returns where its deflate data starts."""
    start = pos
    if data[pos : pos + 2] != b"\x1f\x8b"[: len(data) - pos]:
        raise BadGzipFile(f"not a gzip member: expected magic bytes 1f 8b, found {data[pos : pos + 2].hex(' ')}")
    if len(data) - pos < 10:
        raise BadGzipFile("truncated gzip member header")
    method, flags = data[pos + 2], data[pos + 3]
    if method != 8:
        raise BadGzipFile(f"unknown gzip compression method {method}: expected 8 (deflate)")
    if flags & RESERVED:
        raise BadGzipFile(f"gzip header has reserved flag bits set (flags 0x{flags:02x})")
    pos += 10
    if flags & FEXTRA:
        if len(data) < pos + 2:
            raise BadGzipFile("truncated gzip member header")
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for flag in (FNAME, FCOMMENT):
        if flags & flag:
            nul = data.find(b"\x00", pos)
            if nul < 0:
                raise BadGzipFile("truncated gzip member header")
            pos = nul + 1
    if pos > len(data):
        raise BadGzipFile("truncated gzip member header")
    if flags & FHCRC:
        if len(data) < pos + 2:
            raise BadGzipFile("truncated gzip member header")
        if int.from_bytes(data[pos : pos + 2], "little") != zlib.crc32(data[start:pos]) & 0xFFFF:
            raise BadGzipFile("gzip header CRC16 mismatch")
        pos += 2
    return pos


def gunzip(data: bytes) -> bytes:
    """Decompresses every member, checking each header CRC16 (if present), CRC32 and ISIZE."""
    out: list[bytes] = []
    pos = 0
    while True:
        while pos < len(data) and data[pos] == 0:
            pos += 1
        if pos == len(data):
            return b"".join(out)
        pos = _member_header(data, pos)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data[pos:])
        except zlib.error as e:
            raise BadGzipFile(f"corrupt deflate data: {e}") from None
        if not inflater.eof:
            raise BadGzipFile("corrupt or truncated deflate data")
        pos = len(data) - len(inflater.unused_data)
        if len(data) - pos < 8:
            raise BadGzipFile("truncated gzip member: CRC32/ISIZE trailer missing")
        crc, isize = struct.unpack_from("<II", data, pos)
        if crc != zlib.crc32(chunk):
            raise BadGzipFile("CRC32 check failed")
        if isize != len(chunk) & 0xFFFFFFFF:
            raise BadGzipFile("ISIZE check failed")
        out.append(chunk)
        pos += 8


def unxz(data: bytes) -> bytes:
    """The content of one or more xz streams, each followed by stream padding (zero bytes, a
    multiple of four), as the xz format defines it. Unlike ``lzma.decompress``, which ignores
    anything after a stream that is not another stream, trailing data is an error here."""
    out = []
    pos = 0
    while pos < len(data):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        out.append(d.decompress(data[pos:]))
        if not d.eof:
            raise lzma.LZMAError("the data ends before the last stream does")
        rest = d.unused_data
        padding = len(rest) - len(rest.lstrip(b"\0"))
        if padding % 4:
            raise lzma.LZMAError(f"stream padding of {padding} bytes is not a multiple of four")
        pos = len(data) - len(rest) + padding
        if pos < len(data) and data[pos : pos + 6] != XZ_MAGIC:
            raise lzma.LZMAError("trailing data after the last stream")
    return b"".join(out)


def _check(name: str, algo: str, what: str, data: bytes, expected: str | None) -> None:
    if expected is not None:
        actual = hashlib.new(algo, data).hexdigest()
        if actual != expected.strip().lower():
            raise ChecksumError(f"{name}: {algo} mismatch over {what}: expected {expected}, found {actual}")


def read_idx(
    source: str | os.PathLike[str] | bytes,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    content_md5: str | None = None,
    content_sha256: str | None = None,
    max_bytes: int | None = None,
) -> npt.NDArray[Any]:
    """Reads an IDX file (raw or gzip) from a path or bytes into a native-order numpy array."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(source, "rb") as f:
            stored = f.read()
    else:
        stored = bytes(source)
        name = f"<{len(stored)} bytes in memory>"
    _check(name, "md5", "the stored bytes", stored, md5)
    _check(name, "sha256", "the stored bytes", stored, sha256)
    try:
        if stored[:2] == b"\x1f\x8b":
            content = gunzip(stored)
        elif stored[:6] == XZ_MAGIC:
            content = unxz(stored)
        else:
            content = stored
    except BadGzipFile as e:
        raise BadGzipFile(f"{name}: {e}") from None
    except lzma.LZMAError as e:
        raise lzma.LZMAError(f"{name}: corrupt or truncated xz data: {e}") from None
    _check(name, "md5", "the content", content, content_md5)
    _check(name, "sha256", "the content", content, content_sha256)

    def bad(problem: str) -> IdxFormatError:
        return IdxFormatError(f"{name}: {problem}")

    if len(content) < 4:
        raise bad(f"too short for an IDX header: expected at least 4 bytes, found {len(content)}")
    if content[:2] != b"\x00\x00":
        raise bad("not an IDX file: expected magic bytes 00 00")
    code, ndim = content[2], content[3]
    if code not in DTYPES:
        raise bad(f"unknown IDX type code 0x{code:02X}")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise bad(f"truncated IDX header: {ndim} dimensions need {header_len} header bytes")
    if ndim > MAX_NDIM:
        raise bad(f"IDX header declares {ndim} dimensions; numpy holds at most {MAX_NDIM}")
    dims = struct.unpack_from(f">{ndim}I", content, 4)
    dtype = np.dtype(DTYPES[code])
    payload = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if max_bytes is not None and payload > max_bytes:
        raise bad(f"payload is {payload} bytes, over max_bytes={max_bytes}")
    if len(content) != header_len + payload:
        raise bad(f"IDX length mismatch: expected {header_len + payload} bytes, found {len(content)}")
    array = np.frombuffer(content, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a native-order, writeable copy


def gzip_member(
    data: bytes,
    *,
    level: int = 6,
    name: bytes | None = None,
    comment: bytes | None = None,
    extra: bytes | None = None,
    header_crc: bool = False,
    mtime: int = 0,
) -> bytes:
    """One gzip member holding ``data``, with any of the optional header fields."""
    flags = (FNAME if name is not None else 0) | (FCOMMENT if comment is not None else 0)
    flags |= (FEXTRA if extra is not None else 0) | (FHCRC if header_crc else 0)
    header = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", mtime) + b"\x00\xff"
    if extra is not None:
        header += struct.pack("<H", len(extra)) + extra
    for field in (name, comment):
        if field is not None:
            header += field + b"\x00"
    if header_crc:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflater = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflater.compress(data) + deflater.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def encode_idx(array: npt.ArrayLike) -> bytes:
    """The raw IDX bytes of ``array`` (C order, big-endian)."""
    a = np.asarray(array)
    code = CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot hold an array of dtype {a.dtype}")
    header = struct.pack(f">BBBB{a.ndim}I", 0, 0, code, a.ndim, *a.shape)
    return header + a.astype(DTYPES[code]).tobytes(order="C")


def write_idx(array: npt.ArrayLike, *, members: int = 0, xz: bool = False, **gzip_fields: Any) -> bytes:
    """IDX bytes of ``array``: raw when ``members`` is 0, else gzip split into that many members
    (or, with ``xz``, that many concatenated xz streams)."""
    content = encode_idx(array)
    if xz and members:
        step = -(-len(content) // members)
        return b"".join(lzma.compress(content[i * step : (i + 1) * step]) for i in range(members))
    if members == 0:
        return content
    step = -(-len(content) // members)
    parts = [content[i * step : (i + 1) * step] for i in range(members)]
    return b"".join(gzip_member(p, **gzip_fields) for p in parts)
