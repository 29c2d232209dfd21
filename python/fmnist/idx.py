"""read_idx, read_idx_many and write_idx: the typed Python face of the Rust engine; and how every
file fmnist writes is written (``write``): made under a name of its own
(``<name>.<12 hex>.partial``) with ``O_EXCL`` (never opened over an existing name, link or not),
checked to be what fmnist made (a regular file with one link, its owner's, the very inode written)
and only then renamed into place, fsynced (the file, then its folder) when it must survive a
crash; and how small files fmnist only reads (registries, records) are read (``read_small``)."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
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

    ``dest`` is a path or a binary file object. A path is written by ``write_path``'s rule: a
    regular file or a missing name atomically (never a partial file there), a character device
    or FIFO written through, a symlink followed to what it names; anything else refused. A
    dtype IDX cannot hold raises ``TypeError``.
    """
    data = _core.encode_idx(array, compress)
    if not isinstance(dest, (str, os.PathLike)):
        dest.write(data)
        return
    write_path(Path(os.fspath(dest)), data)


def write_path(dest: Path, data: bytes) -> None:
    """Writes ``data`` to the path a user gave: a symlink is followed to what it names (the link
    stays); a regular file or a missing name is written through a temporary file of its own and
    renamed into place (so it holds the old bytes or all the new ones, and no temporary file is
    left); a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a pipe) is written
    through, as a shell's redirection would; anything else (a folder, a socket, a block device)
    is refused with an ``OSError`` naming it."""
    target = Path(os.path.realpath(dest)) if dest.is_symlink() else dest
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is None or stat.S_ISREG(mode):
        write(target, [data])
    elif stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        with open(target, "wb") as f:
            f.write(data)
    else:
        kind = "a folder" if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode) else "a block device"
        raise OSError(
            errno.EEXIST, f"{kind} is there: fmnist writes a regular file, a character device or a FIFO", str(dest)
        )


def read_small(path: str | os.PathLike[str], most: int = 1 << 20) -> bytes:
    """A registry or record file's bytes: opened without waiting (a FIFO), judged by ``fstat`` (a
    regular file) before a byte is read, at most ``most``; ``ValueError`` naming the rule broken."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # judged before a file object is made of it (a folder)
        os.close(fd)
        raise ValueError("not a regular file")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(most + 1)
    if len(raw) > most:
        raise ValueError(f"over {most} bytes")
    return raw


def read_json(raw: bytes | str) -> Any:
    """JSON, or ``ValueError`` for anything unreadable: malformed, or nested deeper than Python's
    recursion limit (where ``json`` raises RecursionError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested deeper than Python's recursion limit") from None


#: A temporary file of fmnist's: ``<name>.<12 hex digits>.partial``.
TEMPORARY = re.compile(r".+\.[0-9a-f]{12}\.partial")
Chunk = Union[bytes, memoryview]


def temporary(final: Path) -> Path:
    """A name of its own beside ``final``, for a file fmnist is about to create."""
    return final.with_name(f"{final.name}.{secrets.token_hex(6)}.partial")


def create(path: Path, mode: int = 0o666) -> int:
    """A new file at ``path``, opened for writing; ``FileExistsError`` if anything is there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, mode)


def mine(path: Path, fd: int) -> None:
    """Checks that ``path`` is still the file fmnist created and holds open as ``fd``: a regular
    file with one link, the same inode, fmnist's user's. ``OSError`` naming what is wrong."""
    st, held = os.lstat(path), os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (held.st_dev, held.st_ino):
        raise OSError(f"{path} is no longer the file fmnist wrote; not renamed into place")
    if st.st_nlink != 1 or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
        raise OSError(f"{path} has {st.st_nlink} links or another owner; not renamed into place")


def fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (Windows journals it itself and cannot open folders)."""
    if os.name != "nt":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def finish(tmp: Path, final: Path, *, replace: bool = True, durable: bool = True) -> bool:
    """Renames the checked ``tmp`` to ``final``. ``replace=False`` never replaces anything at
    ``final`` (another process, or another loader, was first): then ``tmp`` is removed and False
    returned. The caller holds ``tmp`` open (and checked it with ``mine``)."""
    if replace:
        os.replace(tmp, final)
    else:
        try:
            os.link(tmp, final)  # fails if anything is at final: nothing of anyone's is replaced
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
    if durable:
        fsync_folder(final.parent)
    return True


def write(
    final: Path, chunks: Iterable[Chunk], *, mode: int = 0o666, durable: bool = True, replace: bool = True
) -> bool:
    """Writes ``chunks`` to ``final`` through a file of fmnist's own beside it, checked and renamed
    into place: ``final`` holds what was there or the whole new file, never a part, and no
    temporary file is left behind. Returns what ``finish`` returns."""
    tmp = temporary(final)
    fd = create(tmp, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            if durable:
                os.fsync(fd)
        mine(tmp, fd)
        return finish(tmp, final, replace=replace, durable=durable)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)
