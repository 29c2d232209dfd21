"""Every error path: the bad input, the exception class, and a message that names the source and
says what was expected and what was found."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import lzma
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import reference

from .conftest import PEAK, linux_only

GOOD = reference.write_idx(np.arange(12, dtype=np.int16).reshape(3, 4))
GOOD_GZ = reference.write_idx(np.arange(12, dtype=np.int16).reshape(3, 4), members=1)


def test_exception_classes_are_importable_and_standard() -> None:
    assert issubclass(fmnist.IdxFormatError, ValueError)
    assert issubclass(fmnist.ChecksumError, ValueError)
    assert issubclass(fmnist.BadGzipFile, gzip.BadGzipFile) and issubclass(fmnist.XzError, lzma.LZMAError)
    assert issubclass(fmnist.InternalError, RuntimeError)
    for cls in (
        fmnist.IdxFormatError,
        fmnist.ChecksumError,
        fmnist.BadGzipFile,
        fmnist.XzError,
        fmnist.DownloadError,
        fmnist.DatasetNotFoundError,
        fmnist.RegistryError,
        fmnist.InternalError,
    ):
        assert issubclass(cls, fmnist.Error) and cls.__doc__, cls
    assert issubclass(fmnist.DownloadError, OSError) and issubclass(fmnist.RegistryError, ValueError)
    assert issubclass(fmnist.DatasetNotFoundError, FileNotFoundError)
    assert fmnist.IdxFormatError.__module__ == "fmnist.errors" and fmnist.ChecksumError.__module__ == "fmnist.errors"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short for an IDX header: expected at least 4 bytes, found 0"),
        (b"\x00\x01\x08\x01", "not an IDX file: expected magic bytes 00 00, found 00 01"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "2 dimensions need 12 header bytes, found 8"),
        (GOOD[:-1], "truncated): header declares 3 x 4 int16 = 24 payload bytes, 36 bytes in all; found 35"),
        (GOOD + b"\x00", "trailing bytes): header declares 3 x 4 int16 = 24 payload bytes, 36 bytes in all; found 37"),
        (b"\x00\x00\x08\x41" + b"\x00\x00\x00\x01" * 65 + b"\x07", "65 dimensions; numpy holds at most"),
    ],
)
def test_malformed_idx(data: bytes, message: str) -> None:
    with pytest.raises(fmnist.IdxFormatError, match=f"^<{len(data)} bytes in memory>: .*") as e:
        fmnist.read_idx(data)
    assert message in str(e.value)
    with pytest.raises(fmnist.IdxFormatError):
        reference.read_idx(data)


def test_length_mismatch_inside_gzip() -> None:
    short = reference.gzip_member(GOOD[:-2])
    with pytest.raises(fmnist.IdxFormatError, match="truncated.*found 34"):
        fmnist.read_idx(short)
    long = reference.gzip_member(GOOD + b"xy")
    with pytest.raises(fmnist.IdxFormatError, match="decompressed content is longer"):
        fmnist.read_idx(long)


def test_max_bytes_refuses_before_reading_the_payload() -> None:
    with pytest.raises(fmnist.IdxFormatError, match="payload of 3 x 4 int16 is 24 bytes, over max_bytes=23"):
        fmnist.read_idx(GOOD_GZ, max_bytes=23)
    assert fmnist.read_idx(GOOD_GZ, max_bytes=24).shape == (3, 4)
    with pytest.raises(ValueError, match="max_bytes"):
        fmnist.read_idx(GOOD, max_bytes=-1)


@linux_only
@pytest.mark.parametrize("compressed", [False, True])
def test_tiny_file_claiming_a_terabyte_fails_without_allocating(tmp_path: Path, compressed: bool) -> None:
    header = struct.pack(">BBBBIII", 0, 0, 0x0E, 3, 65535, 65535, 30000)  # ~1 TB of float64
    data = gzip.compress(header + b"\x00" * 64) if compressed else header + b"\x00" * 64
    path = tmp_path / "huge.idx"
    path.write_bytes(data)
    # In a child process: a huge allocation would abort or balloon it; we read its peak RSS.
    code = (
        "import sys, fmnist\n" + PEAK + "before = peak()\n"
        "try:\n    fmnist.read_idx(sys.argv[1])\nexcept fmnist.IdxFormatError as e:\n    print(e)\n"
        "print(peak() - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    message, grown_kib = out.stdout.strip().splitlines()
    assert str(path) in message and "65535 x 65535 x 30000 float64" in message
    assert ("gzip can hold at most" if compressed else "length mismatch") in message
    assert int(grown_kib) < 16 * 1024


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-8] + bytes([b[-8] ^ 1]) + b[-7:], "CRC32 check failed"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "ISIZE check failed"),
        (lambda b: b[:-5], "trailer missing"),
        (lambda b: b[:20], "truncated"),
        (lambda b: b + b"junk", "not a gzip member: expected magic bytes 1f 8b"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown gzip compression method 7"),
        (lambda b: b[:3] + b"\x80" + b[4:], "reserved flag bits"),
    ],
)
def test_corrupt_gzip(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    bad = mutate(GOOD_GZ)
    with pytest.raises(gzip.BadGzipFile, match=message) as e:
        fmnist.read_idx(bad)
    assert str(e.value).startswith(f"<{len(bad)} bytes in memory>: ")
    with pytest.raises(gzip.BadGzipFile):
        reference.read_idx(bad)


def test_header_crc16_is_checked() -> None:
    data = bytearray(reference.gzip_member(GOOD, name=b"n", header_crc=True))
    data[12] ^= 0xFF  # inside the header CRC16
    with pytest.raises(gzip.BadGzipFile, match="CRC16 mismatch"):
        fmnist.read_idx(bytes(data))


def test_checksum_messages_name_file_algorithm_coverage_expected_and_actual(tmp_path: Path) -> None:
    path = tmp_path / "x.idx.gz"
    path.write_bytes(GOOD_GZ)
    wrong = "0" * 32
    with pytest.raises(fmnist.ChecksumError) as e:
        fmnist.read_idx(path, md5=wrong)
    actual = __import__("hashlib").md5(GOOD_GZ).hexdigest()
    assert str(e.value) == (
        f"{path}: MD5 mismatch over the stored (gzip-compressed) bytes: expected {wrong}, found {actual}"
    )
    sha = __import__("hashlib").sha256(GOOD).hexdigest()
    with pytest.raises(
        fmnist.ChecksumError,
        match=f"SHA-256 mismatch over the decompressed IDX content: expected {'a' * 64}, found {sha}",
    ):
        fmnist.read_idx(path, content_sha256="A" * 64)
    assert fmnist.read_idx(path, content_sha256=sha.upper(), md5=actual).shape == (3, 4)


def test_stored_checksum_wins_over_corruption() -> None:
    broken = GOOD_GZ[:-3]
    with pytest.raises(fmnist.ChecksumError):
        fmnist.read_idx(broken, md5="0" * 32)


def test_uncompressed_file_digests_cover_the_same_bytes(tmp_path: Path) -> None:
    md5 = __import__("hashlib").md5(GOOD).hexdigest()
    assert fmnist.read_idx(GOOD, md5=md5, content_md5=md5).shape == (3, 4)
    with pytest.raises(fmnist.ChecksumError, match=r"uncompressed: stored = content"):
        fmnist.read_idx(GOOD, content_md5="1" * 32)


@pytest.mark.parametrize("bad", ["abc", "z" * 32, "0" * 31])
def test_malformed_expected_digest_is_a_usage_error(bad: str) -> None:
    with pytest.raises(ValueError, match="must be 32 hex digits") as e:
        fmnist.read_idx(GOOD, md5=bad)
    assert not isinstance(e.value, fmnist.ChecksumError)


def test_os_errors_keep_their_class_and_filename(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gz"
    with pytest.raises(FileNotFoundError) as e:
        fmnist.read_idx(missing)
    assert e.value.errno == errno.ENOENT and e.value.filename == str(missing)
    # Opening a folder: EISDIR on POSIX; Windows denies it (ERROR_ACCESS_DENIED, errno EACCES).
    with pytest.raises(PermissionError if os.name == "nt" else IsADirectoryError) as d:
        fmnist.read_idx(tmp_path)
    assert d.value.filename == str(tmp_path)
    if os.name != "nt" and os.geteuid() != 0:  # root reads anything, so only an unprivileged user can see EACCES
        locked = tmp_path / "locked"
        locked.write_bytes(GOOD)
        locked.chmod(0)
        with pytest.raises(PermissionError):
            fmnist.read_idx(locked)


def test_bad_source_types() -> None:
    with pytest.raises(TypeError, match="a path, a binary file object or a bytes-like object, not int"):
        fmnist.read_idx(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="md5 has 1 entries for 2 sources"):
        fmnist.read_idx_many([GOOD, GOOD], md5=[None])


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_, np.complex64, np.float16, object])
def test_write_refuses_dtypes_idx_cannot_hold(tmp_path: Path, dtype: Any) -> None:
    with pytest.raises(TypeError, match="IDX cannot hold an array of dtype"):
        fmnist.write_idx(tmp_path / "x.idx", np.zeros(3, dtype=dtype))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compress", [10, -1, "yes", 2.0])
def test_write_refuses_bad_compress(compress: object) -> None:
    with pytest.raises(ValueError, match="gzip level 0-9"):
        fmnist.write_idx(io.BytesIO(), np.zeros(3, np.uint8), compress=compress)  # type: ignore[arg-type]


def test_write_replaces_a_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(b"old")
    fmnist.write_idx(path, np.arange(5, dtype=np.uint8), compress=True)
    assert np.array_equal(fmnist.read_idx(path), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["x.idx"]
    with pytest.raises(FileNotFoundError):
        fmnist.write_idx(tmp_path / "no" / "x.idx", np.zeros(1, np.uint8))


@linux_only
def test_a_valid_file_larger_than_memory_is_a_memory_error(tmp_path: Path) -> None:
    # A sparse file: a true 1.1 TB IDX file, exact length, that no allocator here can hold.
    path = tmp_path / "huge.idx"
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 65535, 65535, 256))
        f.truncate(16 + 65535 * 65535 * 256)
    with open("/proc/sys/vm/overcommit_memory") as f:
        overcommit = f.read().strip()
    if overcommit == "1":  # "always overcommit": the allocation would succeed lazily
        with pytest.raises(fmnist.IdxFormatError, match="over max_bytes"):
            fmnist.read_idx(path, max_bytes=2**30)
        return
    where = re.escape(str(path))  # the path is the regex's text: tmp_path may hold "+" or "("
    with pytest.raises(MemoryError, match=f"{where}: cannot allocate 1099478073600 bytes for 65535 x 65535 x 256"):
        fmnist.read_idx(path)


def test_the_engines_seam_is_typed() -> None:
    from fmnist import _core

    K = _core.Kind
    with pytest.raises(TypeError):
        _core.Request(GOOD, report=["sha1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _core.Request(GOOD, mode="decode")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.read([_core.Request(GOOD)], errors="return")  # type: ignore[arg-type]
    (outcome,) = _core.read([_core.Request(GOOD_GZ, report=[K.MD5, K.CONTENT_SHA256])])
    assert outcome.array is not None and outcome.codec == _core.Codec.GZIP
    assert outcome.array.shape == (3, 4) and set(outcome.digests) == {K.MD5, K.CONTENT_SHA256}
    assert (outcome.dtype, outcome.shape) == ("int16", [3, 4])
    assert [k.key for k in (K.MD5, K.SHA256, K.CONTENT_MD5, K.CONTENT_SHA256)] == [
        "md5",
        "sha256",
        "content_md5",
        "content_sha256",
    ]
    # A malformed expected digest names the source it was for.
    with pytest.raises(ValueError, match=r"<\d+ bytes in memory>: expected MD5 digest must be 32 hex digits"):
        _core.read([_core.Request(GOOD, expected=[_core.Expected(K.MD5, "abc")])])


def test_internal_digest_reader_gives_one_outcome_per_file(tmp_path: Path) -> None:
    from fmnist import _core

    every = [_core.Kind.MD5, _core.Kind.SHA256, _core.Kind.CONTENT_MD5, _core.Kind.CONTENT_SHA256]
    broken = GOOD_GZ[:-5]
    sources = [GOOD, broken, str(tmp_path / "nope"), GOOD_GZ]
    outcomes = _core.read([_core.Request(s, report=every) for s in sources], errors=_core.Errors.RETURN)
    assert isinstance(outcomes[1], gzip.BadGzipFile) and isinstance(outcomes[2], FileNotFoundError)
    good, good_gz = outcomes[0], outcomes[3]
    assert not isinstance(good, BaseException) and not isinstance(good_gz, BaseException)
    assert good.codec == _core.Codec.RAW and good_gz.codec == _core.Codec.GZIP
    sha = _core.Kind.CONTENT_SHA256
    assert good.digests[sha] == good_gz.digests[sha] == hashlib.sha256(GOOD).hexdigest()
    assert good_gz.digests[_core.Kind.MD5] == hashlib.md5(GOOD_GZ).hexdigest()
    # Without decoding: the same digests, no array, and the same outcome for the broken one.
    streamed = _core.read(
        [_core.Request(s, _core.Mode.DIGESTS, report=every) for s in (GOOD, broken, GOOD_GZ)],
        errors=_core.Errors.RETURN,
    )
    assert streamed[0].array is None and streamed[0].digests == good.digests and streamed[0].codec == _core.Codec.RAW
    assert isinstance(streamed[1], gzip.BadGzipFile)
    assert not isinstance(streamed[2], BaseException) and streamed[2].digests == good_gz.digests
    with pytest.raises(gzip.BadGzipFile):
        _core.read([_core.Request(s, report=every) for s in (GOOD, broken)])  # raise: the first failing one


# --- sources beyond paths and bytes -------------------------------------------------------------


def test_file_objects_buffers_and_any_writable(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    path = tmp_path / "a.idx.gz"
    with gzip.open(path, "wb") as g:  # any binary writable: the IDX goes through gzip's writer
        fmnist.write_idx(g, a)
    with open(path, "rb") as f:
        assert np.array_equal(fmnist.read_idx(f), a)
    with open(path, "rb") as f:  # errors name the file object's file
        with pytest.raises(fmnist.ChecksumError, match=f"^{re.escape(str(path))}: MD5 mismatch"):
            fmnist.read_idx(f, md5="0" * 32)
    assert np.array_equal(fmnist.read_idx(io.BytesIO(path.read_bytes())), a)
    stored = np.frombuffer(path.read_bytes(), np.uint8)  # a buffer: a uint8 array of the file
    assert np.array_equal(fmnist.read_idx(stored), a)
    assert [x.shape for x in fmnist.read_idx_many([io.BytesIO(path.read_bytes()), path])] == [(2, 3, 4)] * 2
    with open(path) as text, pytest.raises(TypeError, match="binary mode"):
        fmnist.read_idx(text)  # type: ignore[arg-type]


def test_every_buffer_is_read_in_place(tmp_path: Path) -> None:
    import mmap

    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    data = fmnist.reference.write_idx(a, members=1)
    path = tmp_path / "a.idx.gz"
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        padded = bytearray(data) + bytearray(-len(data) % 4)
        sources: list[Any] = [
            bytearray(data),
            memoryview(data),
            memoryview(bytearray(data))[: len(data)],
            np.frombuffer(data, np.uint8),
            mapped,
        ]
        for source in sources:
            assert np.array_equal(fmnist.read_idx(source), a), type(source)
        # Any element type: its bytes are the file (here with zero padding after it: trailing
        # data in gzip's padding, which gzip allows).
        assert np.array_equal(fmnist.read_idx(np.frombuffer(padded, np.float32)), a)
        assert [x.shape for x in fmnist.read_idx_many([mapped, bytearray(data)])] == [(2, 3, 4)] * 2
        # Held for the call, released after it: the map closes.
    strided = memoryview(bytes(range(16)))[::2]
    with pytest.raises(TypeError, match=r"source is a buffer that is not contiguous \(shape \(8,\), strides \(2,\)\)"):
        fmnist.read_idx(strided)
    with pytest.raises(TypeError, match="not contiguous"):
        fmnist.read_idx(np.zeros((4, 4), np.uint8)[:, ::2])


@linux_only
def test_a_bytearray_is_read_without_a_copy() -> None:
    # 100 MB of raw IDX in a bytearray: reading it raises the peak RSS by the array it returns
    # (the payload, 100 MB) and not by a second copy of the input.
    code = (
        "import numpy as np, fmnist\n" + PEAK + "n = 100 * 1000 * 1000\n"
        "data = bytearray(8 + n)\n"
        "data[:8] = bytes([0, 0, 8, 1]) + n.to_bytes(4, 'big')\n"
        "np.frombuffer(data, np.uint8)[8:] = 7\n"  # every page touched, in place: no temporary
        "before = peak()\n"
        "a = fmnist.read_idx(data)\n"
        "print(a.nbytes, (peak() - before) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    nbytes, grown = map(int, out.stdout.split())
    assert nbytes == 100_000_000 and grown <= 1.1 * nbytes, grown / nbytes


@pytest.mark.skipif(os.name == "nt", reason="POSIX file names are bytes; Windows ones are UTF-16")
def test_paths_that_are_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.idx")  # Latin-1 bytes: a surrogate
    fmnist.write_idx(name, np.arange(5, dtype=np.uint8))
    assert fmnist.read_idx(name).tolist() == [0, 1, 2, 3, 4]
    assert fmnist.read_idx(Path(name)).tolist() == [0, 1, 2, 3, 4]
    missing = name + ".gz"
    with pytest.raises(FileNotFoundError) as e:
        fmnist.read_idx(missing)
    assert (
        e.value.filename == missing and e.value.errno == errno.ENOENT and e.value.strerror == os.strerror(errno.ENOENT)
    )


# A FIFO's writer, deterministic without a reader waiting in open(): it opens the FIFO for
# reading and writing (on Linux that never waits), then for writing, writes everything into the
# pipe's buffer, lets go of its reading end and says it is ready; it closes once a reader has
# emptied the buffer (FIONREAD), so the reader then sees the end of the data.
FIFO_WRITER = """
import fcntl, os, struct, sys, termios, time
data = sys.stdin.buffer.read()
both = os.open(sys.argv[1], os.O_RDWR)
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, data)
os.close(both)
print("ready", flush=True)
while struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, bytes(4)))[0]:
    time.sleep(0.01)
os.close(fd)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="opening a FIFO O_RDWR is Linux's")
@pytest.mark.parametrize("compressed", [False, True, "xz"])
def test_pipes_and_fifos_are_read_as_they_come(tmp_path: Path, compressed: bool | str) -> None:
    a = np.arange(3000, dtype=np.float32).reshape(30, 100)
    data = fmnist.reference.write_idx(a, members=2 if compressed else 0, xz=compressed == "xz")
    assert len(data) < 65536  # the pipe's buffer holds it all
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(
        [sys.executable, "-c", FIFO_WRITER, str(fifo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(data)
    writer.stdin.close()
    assert writer.stdout.readline().strip() == b"ready"
    assert np.array_equal(fmnist.read_idx(fifo), a)
    writer.wait(30)
    # /dev/stdin of a child fed through a pipe; a short one is a length error, not a hang.
    code = (
        "import sys, fmnist\n"
        "try:\n    print(fmnist.read_idx('/dev/stdin').shape)\n"
        "except Exception as e:\n    print(type(e).__name__)\n"
    )
    short = {False: "IdxFormatError", True: "BadGzipFile", "xz": "XzError"}[compressed]
    for feed, out in ((data, "(30, 100)"), (data[:-7], short)):
        done = subprocess.run([sys.executable, "-c", code], input=feed, capture_output=True, timeout=60)
        assert done.stdout.decode().strip() == out, done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/zero and FIFOs as Linux has them")
def test_a_fifo_with_no_writer_and_dev_zero_are_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # open() never waits (O_NONBLOCK), and what is read is judged as it comes: a FIFO no one
    # writes to reads as empty; /dev/zero's type code (byte 2) is already wrong. A child with a
    # deadline: a hang fails the test rather than the suite.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = (
        "import sys, fmnist\n"
        "for source in sys.argv[1:]:\n"
        "    for max_bytes in (None, 100):\n"
        "        try:\n            fmnist.read_idx(source, max_bytes=max_bytes)\n"
        "        except fmnist.IdxFormatError as e:\n            print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fifo), "/dev/zero"], capture_output=True, text=True, timeout=60
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout + out.stderr
    assert all(f"{fifo}: nothing to read: a pipe, FIFO or device that gave no bytes" in line for line in lines[:2])
    assert all(line.startswith("/dev/zero: unknown IDX type code 0x00") for line in lines[2:])
    # A socket cannot be opened as a file at all: the OS's own error, at once.
    import socket

    # Bound by a relative name: a socket's path has room for 107 bytes, tmp_path may be longer.
    monkeypatch.chdir(tmp_path)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")
        server.listen()
        with pytest.raises(OSError) as e:
            fmnist.read_idx("sock")
        assert e.value.errno == errno.ENXIO and e.value.filename == "sock"


def test_fmnist_torch_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "fmnist.torch", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"fmnist.torch needs torch: pip install 'fmnist\[torch\]'"):
        importlib.import_module("fmnist.torch")


def test_the_torch_suite_cannot_run_without_torch(tmp_path: Path) -> None:
    # FMNIST_REQUIRE_TORCH=1 (scripts/test's torch suite) turns torch's absence, which otherwise
    # leaves tests/test_torch.py uncollected, into an error.
    from .conftest import REPO, TORCH

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", str(REPO / "tests/test_typing.py")],
        env={**os.environ, "FMNIST_REQUIRE_TORCH": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if TORCH:
        assert out.returncode == 0, out.stdout + out.stderr
    else:
        assert out.returncode != 0
        assert "FMNIST_REQUIRE_TORCH=1 but torch or torchvision is not installed" in out.stdout + out.stderr


@pytest.mark.parametrize("on_worker", [False, True])
def test_a_rust_panic_is_an_ordinary_exception(on_worker: bool) -> None:
    from fmnist import _core

    # InternalError is a RuntimeError: `except Exception` catches it (pyo3's PanicException is not).
    with pytest.raises(fmnist.InternalError, match=r"_panic: internal error in fmnist \(a .*panic"):
        _core._panic(on_worker)
    assert issubclass(fmnist.InternalError, RuntimeError)
