"""The hostile inputs of the engine's issue, each against the reference (the executable spec):
an xz file whose index claims 8 GiB, arrays of 33 to 64 dimensions, headers far into the stream
(a path and the same bytes must agree), and the xz tool's large dictionaries."""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import fmnist
from fmnist import _core, reference

IDX = reference.write_idx(np.arange(300, dtype=np.uint8).reshape(3, 100))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _forge_xz_index(packed: bytes, claimed: int) -> bytes:
    """One xz stream with its index (and footer) rewritten to record `claimed` bytes of content,
    CRCs correct: what a hostile file looks like, which only decoding the block can expose."""
    backward = struct.unpack_from("<I", packed, len(packed) - 8)[0]
    index_len = (backward + 1) * 4
    index_start = len(packed) - 12 - index_len
    index = packed[index_start : index_start + index_len]
    assert index[0] == 0 and index[1] == 1  # indicator, one record
    pos, values = 2, []
    for _ in range(2):  # unpadded size, uncompressed size
        n = shift = 0
        while True:
            b = index[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        values.append(n)
    body = b"\0\1" + _varint(values[0]) + _varint(claimed)
    body += bytes(-len(body) % 4)
    new_index = body + struct.pack("<I", zlib.crc32(body))
    flags = packed[len(packed) - 4 : len(packed) - 2]
    size_flags = struct.pack("<I", len(new_index) // 4 - 1) + flags
    footer = struct.pack("<I", zlib.crc32(size_flags)) + size_flags + b"YZ"
    return packed[:index_start] + new_index + footer


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_an_xz_index_claiming_8_gib_is_the_references_error_and_allocates_nothing(tmp_path: Path) -> None:
    claimed = 8 << 30
    header = struct.pack(">BBBBII", 0, 0, 8, 2, 1 << 17, 1 << 16)  # 8 GiB of uint8
    forged = _forge_xz_index(lzma.compress(header, check=lzma.CHECK_CRC32), claimed + len(header))
    assert len(forged) < 200
    with pytest.raises(lzma.LZMAError):
        reference.read_idx(forged)
    path = tmp_path / "forged.xz"
    path.write_bytes(forged)
    # Under a 2 GiB address-space limit: an 8 GiB allocation would be a MemoryError.
    code = (
        "import resource, sys, fmnist\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "for source in (sys.argv[1], open(sys.argv[1], 'rb').read()):\n"
        "    try:\n        fmnist.read_idx(source)\n"
        "    except Exception as e:\n        print(type(e).__name__, isinstance(e, __import__('lzma').LZMAError), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("XzError True") for line in lines), out.stdout + out.stderr
    assert f"claims {claimed + len(header)} bytes of content" in lines[0] and str(path) in lines[0]


@pytest.mark.skipif(_core.MAX_NDIM < 64, reason="numpy 1.x makes no array of more than 32 dimensions")
@pytest.mark.parametrize("ndim", [33, 48, 64])
def test_arrays_of_33_to_64_dimensions_write_read_and_batch(tmp_path: Path, ndim: int) -> None:
    a = np.arange(6, dtype=np.int16).reshape((2, 3) + (1,) * (ndim - 2))
    for compress in (False, True, "xz"):
        fmnist.write_idx(tmp_path / "a.idx", a, compress=compress)
        back = fmnist.read_idx(tmp_path / "a.idx")
        assert back.shape == a.shape and np.array_equal(back, a)
        assert np.array_equal(reference.read_idx(tmp_path / "a.idx"), a)
    (x, y), *rest = list(fmnist.batches(a, np.arange(2), 2, shuffle=False, dtype=None))
    assert not rest and x.shape == a.shape and np.array_equal(x, a) and y.tolist() == [0, 1]
    np.save(tmp_path / "a.npy", a)
    from fmnist.cli import main

    assert main(["convert", str(tmp_path / "a.npy"), str(tmp_path / "b.idx.gz")]) == 0
    assert np.array_equal(fmnist.read_idx(tmp_path / "b.idx.gz"), a)


def test_more_dimensions_than_numpy_holds_is_a_clear_error_naming_the_limit() -> None:
    limit = _core.MAX_NDIM
    header = bytes([0, 0, 8, limit + 1]) + struct.pack(f">{limit + 1}I", *([1] * (limit + 1)))
    for data in (header + b"\0", gzip.compress(header + b"\0")):
        message = f"declares {limit + 1} dimensions; numpy holds at most {limit}"
        with pytest.raises(fmnist.IdxFormatError, match=message):
            fmnist.read_idx(data)


def _far_into_the_stream() -> dict[str, bytes]:
    member = gzip.compress(IDX, mtime=0)
    empty_gz = gzip.compress(b"", mtime=0)
    comment = b"\x1f\x8b\x08\x10" + bytes(6) + b"c" * (2 << 20) + b"\0"
    empty_xz = lzma.compress(b"")
    return {
        "1 MiB of empty gzip members": empty_gz * ((1 << 20) // len(empty_gz) + 1) + member,
        "a gzip member with a 2 MiB comment": comment + member[10:],
        "1 MiB of empty xz streams": empty_xz * ((1 << 20) // len(empty_xz) + 1) + lzma.compress(IDX),
        "1 MiB of xz stream padding": empty_xz + bytes(1 << 20) + lzma.compress(IDX),
    }


@pytest.mark.parametrize("what", list(_far_into_the_stream()))
def test_a_header_far_into_the_stream_reads_the_same_from_a_path_and_from_bytes(tmp_path: Path, what: str) -> None:
    data = _far_into_the_stream()[what]
    assert len(data) > 1 << 20
    path = tmp_path / "far"
    path.write_bytes(data)
    want = reference.read_idx(data)
    for source in (path, data):
        got = fmnist.read_idx(source)
        assert got.shape == want.shape and np.array_equal(got, want), (what, source)
    md5 = [_core.Kind.CONTENT_MD5]
    (digests,) = _core.read([_core.Request(str(path), _core.Mode.DIGESTS, report=md5)])
    (decoded,) = _core.read([_core.Request(data, report=md5)])
    assert digests.digests == decoded.digests


XZ = shutil.which("xz")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no xz tool")
def test_every_file_the_xz_tool_writes_decodes_on_every_path(tmp_path: Path) -> None:
    assert XZ is not None, "this test runs the xz tool: install xz-utils (.ci/run does)"
    small = tmp_path / "small.idx"
    small.write_bytes(IDX)
    for preset in [f"-{n}" for n in range(10)] + ["-9e"]:
        packed = subprocess.run([XZ, preset, "-c", str(small)], capture_output=True, check=True).stdout
        assert np.array_equal(fmnist.read_idx(packed), reference.read_idx(IDX)), preset
    # 120 MiB of content with a 128 MiB dictionary (the case): the decoder needs more
    # than 128 MiB, which the content's size justifies.
    big = tmp_path / "big.idx"
    with open(big, "wb") as f:
        f.write(struct.pack(">BBBBII", 0, 0, 8, 2, 120, 1 << 20))
        f.truncate(12 + (120 << 20))
    packed_path = tmp_path / "big.idx.xz"
    with open(packed_path, "wb") as out:
        subprocess.run([XZ, "--lzma2=preset=0,dict=128MiB", "-T1", "-c", str(big)], stdout=out, check=True)
    arrays = [fmnist.read_idx(packed_path), fmnist.read_idx(packed_path.read_bytes())]
    assert all(a.shape == (120, 1 << 20) and not a.any() for a in arrays)
    (outcome,) = _core.read([_core.Request(str(packed_path), _core.Mode.DIGESTS, report=[_core.Kind.CONTENT_MD5])])
    assert outcome.codec == _core.Codec.XZ and len(outcome.digests[_core.Kind.CONTENT_MD5]) == 32
