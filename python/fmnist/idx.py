"""read_idx, read_idx_many and write_idx: the typed Python face of the Rust engine."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Sequence
from typing import Any, Protocol, Union

import numpy as np
import numpy.typing as npt

from . import _core


class Readable(Protocol):
    """A binary file object opened for reading (``open(path, "rb")``, ``io.BytesIO``, ...)."""

    def read(self, /) -> bytes: ...


class Writable(Protocol):
    """Any binary writable (``open(path, "wb")``, ``gzip.open(path, "wb")``, ``io.BytesIO``)."""

    def write(self, data: bytes, /) -> object: ...


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Readable, "npt.NDArray[Any]"]
Dest = Union[str, "os.PathLike[str]", Writable]

#: The dtypes IDX can hold (native byte order), by IDX type code: the engine's table.
IDX_DTYPES = {code: np.dtype(name) for code, name, _ in _core.ELEMENT_TYPES if code is not None}


#: The digest arguments of ``read_idx`` and ``read_idx_many``, and the engine's kind for each.
KINDS = {
    "md5": _core.Kind.MD5,
    "sha256": _core.Kind.SHA256,
    "content_md5": _core.Kind.CONTENT_MD5,
    "content_sha256": _core.Kind.CONTENT_SHA256,
}


def _source(source: Any) -> Any:
    """What the engine takes: a path becomes str (``os.fsdecode``: any path ``open()`` takes,
    undecodable bytes surrogate-escaped); a file object opened for reading becomes what its
    ``read()`` gives and its name; any object with the buffer protocol (bytes, bytearray,
    memoryview, a numpy array, mmap) is passed as it is and read in place by the engine. gzip
    and xz are told by their magic bytes, never by a name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(os.fspath(source))
    try:
        memoryview(source)
        return source  # the buffer protocol first: an mmap is a file object too, but read in place
    except TypeError:
        pass
    if isinstance(source, io.TextIOBase):
        raise TypeError("the file object must be opened in binary mode ('rb'), not text mode")
    read = getattr(source, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"the file object must be opened in binary mode ('rb'); its read() gave {type(data).__name__}"
            )
        name = getattr(source, "name", None)
        return (data, name) if isinstance(name, str) else data
    return source  # the engine names what it is not


def _request(source: Any, digests: dict[str, str | None]) -> _core.Request:
    expected = [
        _core.Expected(KINDS[kind], hex_digest) for kind, hex_digest in digests.items() if hex_digest is not None
    ]
    return _core.Request(_source(source), expected=expected)


def read_idx(
    source: Source,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    content_md5: str | None = None,
    content_sha256: str | None = None,
    max_bytes: int | None = None,
) -> npt.NDArray[Any]:
    """Read an IDX file, raw or gzip-compressed, into a numpy array.

    ``source`` is a path, a binary file object opened for reading, or any object with the buffer
    protocol (bytes, bytearray, memoryview, a contiguous numpy array, mmap), read in place: no
    copy is made of it. ``md5``/``sha256`` are hex digests of the bytes
    as stored (the .gz file itself when compressed); ``content_md5``/``content_sha256`` of the
    decompressed IDX bytes. Each one given must match, else ``ChecksumError``. ``max_bytes``
    refuses a larger payload before allocating it.

    Returns a C-contiguous, writeable, native-byte-order array with the IDX shape and dtype,
    allocated by numpy and owning its memory (OWNDATA, no base). Raises ``IdxFormatError`` for
    malformed IDX, ``BadGzipFile`` (a ``gzip.BadGzipFile``) for corrupt gzip, ``XzError`` (an
    ``lzma.LZMAError``) for corrupt xz — all ``fmnist.Error`` — and the OS's own ``OSError``
    subclasses. A path and the same bytes give the same result.
    """
    given = {"md5": md5, "sha256": sha256, "content_md5": content_md5, "content_sha256": content_sha256}
    (outcome,) = _core.read([_request(source, given)], max_bytes=max_bytes)
    array: npt.NDArray[Any] = outcome.array
    return array


def read_idx_many(
    sources: Sequence[Source],
    *,
    md5: Sequence[str | None] | None = None,
    sha256: Sequence[str | None] | None = None,
    content_md5: Sequence[str | None] | None = None,
    content_sha256: Sequence[str | None] | None = None,
    max_bytes: int | None = None,
) -> list[npt.NDArray[Any]]:
    """Read several IDX files at once, spread over the machine's cores (largest first).

    Each digest argument, when given, is a sequence aligned with ``sources`` (entries may be
    None). Returns the arrays in the order of ``sources``; if any source fails, raises the error
    of the first failing one, exactly as ``read_idx`` would have.
    """
    sources = list(sources)
    columns = {"md5": md5, "sha256": sha256, "content_md5": content_md5, "content_sha256": content_sha256}
    given: list[dict[str, str | None]] = [{} for _ in sources]
    for kind, column in columns.items():
        if column is None:
            continue
        column = list(column)
        if len(column) != len(sources):
            raise ValueError(f"{kind} has {len(column)} entries for {len(sources)} sources")
        for per_source, hex_digest in zip(given, column):
            per_source[kind] = hex_digest
    requests = [_request(s, g) for s, g in zip(sources, given)]
    return [o.array for o in _core.read(requests, max_bytes=max_bytes)]


def write_idx(dest: Dest, array: npt.ArrayLike, *, compress: bool | int | str = False) -> None:
    """Write ``array`` as an IDX file (C order, big-endian), gzip-compressed when ``compress`` is
    True, ``"gzip"`` or a gzip level 0-9, xz-compressed (preset 6, CRC64) when it is ``"xz"``.

    ``dest`` is a path or a binary file object. A path is written to a temporary file beside it
    and renamed into place, so it never holds a partial file. A dtype IDX cannot hold raises
    ``TypeError``.
    """
    data = _core.encode_idx(array, compress)
    if not isinstance(dest, (str, os.PathLike)):
        dest.write(data)
        return
    atomic_write(os.fspath(dest), data)


def atomic_write(path: str, *chunks: bytes | memoryview, fsync: bool = True, mode: int = 0o666) -> None:
    """Write ``chunks`` to ``path`` through a temporary file in the same folder, fsync (unless
    told not to) and rename: the path holds the old file or the whole new one, never a part."""
    # Not mkstemp: its 0600 mode would outlive the rename; O_EXCL with the umask's mode instead.
    tmp = f"{os.path.abspath(path)}.{secrets.token_hex(6)}.partial"
    # O_BINARY (Windows only): without it the C runtime writes in text mode, turning every
    # 0x0A byte into 0x0D 0x0A.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
