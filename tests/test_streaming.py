"""Compressed files over the engine's WHOLE bound (64 MiB stored) are decoded as they are read,
straight into the array: the same arrays, digests and errors as the same bytes read from memory
(which libdeflate inflates whole), with a peak memory of the array and little more."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import reference

from .conftest import PEAK, linux_only

#: The engine's bound: a compressed file larger than this is streamed (src/reader.rs: WHOLE).
WHOLE = 64 << 20


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes, np.ndarray]]:
    """Random uint8 content (incompressible: its gzip and xz are larger than WHOLE), as .gz
    (two members) and as .xz, with the content's bytes."""
    folder = tmp_path_factory.mktemp("big")
    array = np.random.default_rng(7).integers(0, 256, size=(66, 1 << 20), dtype=np.uint8)
    content = reference.write_idx(array)
    half = len(content) // 2
    files = {
        "gzip": gzip.compress(content[:half], compresslevel=1, mtime=0) + gzip.compress(content[half:], 1, mtime=0),
        "xz": lzma.compress(content, preset=0),
    }
    out = {}
    for codec, data in files.items():
        assert len(data) > WHOLE
        path = folder / f"big.{codec}"
        path.write_bytes(data)
        out[codec] = (path, content, array)
    return out


@pytest.mark.parametrize("codec", ["gzip", "xz"])
def test_a_file_over_the_bound_reads_as_its_bytes_with_its_digests(
    big: dict[str, tuple[Path, bytes, np.ndarray]], codec: str
) -> None:
    path, content, array = big[codec]
    stored = path.read_bytes()
    digests: dict[str, Any] = {
        "md5": hashlib.md5(stored).hexdigest(),
        "sha256": hashlib.sha256(stored).hexdigest(),
        "content_md5": hashlib.md5(content).hexdigest(),
        "content_sha256": hashlib.sha256(content).hexdigest(),
    }
    from_path = fmnist.read_idx(path, **digests)
    assert from_path.shape == array.shape and np.array_equal(from_path, array)
    assert np.array_equal(fmnist.read_idx(stored), array)
    for kind in digests:
        with pytest.raises(fmnist.ChecksumError, match=re.escape(str(path))) as e:
            wrong: dict[str, Any] = {kind: "0" * len(digests[kind])}
            fmnist.read_idx(path, **wrong)
        assert e.value.actual == digests[kind] and e.value.covers == ("content" if "content" in kind else "stored")
    # max_bytes is judged from the header, before anything is allocated.
    with pytest.raises(fmnist.IdxFormatError, match="over max_bytes=1000"):
        fmnist.read_idx(path, max_bytes=1000)


@pytest.mark.parametrize("codec", ["gzip", "xz"])
def test_a_file_over_the_bound_corrupt_near_its_end_is_the_same_error_as_its_bytes(
    big: dict[str, tuple[Path, bytes, np.ndarray]], codec: str, tmp_path: Path
) -> None:
    path, _, _ = big[codec]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # inside the last member's deflate data, or the xz index
    bad = tmp_path / f"bad.{codec}"
    bad.write_bytes(data)
    error = {"gzip": gzip.BadGzipFile, "xz": fmnist.XzError}[codec]
    with pytest.raises(error, match=re.escape(str(bad))):
        fmnist.read_idx(bad)
    with pytest.raises(error):
        fmnist.read_idx(bytes(data))
    # Cut short: the same class from the path and from the bytes.
    bad.write_bytes(data[: len(data) - 5000])
    with pytest.raises(error):
        fmnist.read_idx(bad)
    with pytest.raises(error):
        fmnist.read_idx(bytes(data[: len(data) - 5000]))


def test_trailing_content_and_a_bad_header_over_the_bound(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    payload = rng.integers(0, 256, size=WHOLE + (1 << 20), dtype=np.uint8).tobytes()
    # A header declaring fewer bytes than the content holds: trailing bytes, as from memory.
    short_header = bytes([0, 0, 8, 1]) + (len(payload) - 10).to_bytes(4, "big")
    path = tmp_path / "trailing.gz"
    path.write_bytes(gzip.compress(short_header + payload, compresslevel=1))
    with pytest.raises(fmnist.IdxFormatError, match="trailing bytes"):
        fmnist.read_idx(path)
    # A bad type code, then a stream corrupt near its end: the reference's order, a corrupt
    # stream first (the file is decoded again, as it is read, to find out).
    bad_header = bytes([0, 0, 7, 1]) + len(payload).to_bytes(4, "big")
    data = bytearray(gzip.compress(bad_header + payload, compresslevel=1))
    data[-100] ^= 0xFF
    path.write_bytes(data)
    with pytest.raises(gzip.BadGzipFile):
        reference.read_idx(bytes(data))
    with pytest.raises(gzip.BadGzipFile, match=re.escape(str(path))):
        fmnist.read_idx(path)


@linux_only
@pytest.mark.parametrize("codec", ["gzip", "xz"])
def test_reading_a_file_over_the_bound_holds_the_array_and_little_more(
    big: dict[str, tuple[Path, bytes, np.ndarray]], codec: str
) -> None:
    path, content, _ = big[codec]
    code = (
        "import sys, fmnist\n" + PEAK + "before = peak()\n"
        "a = fmnist.read_idx(sys.argv[1])\n"
        "print(a.nbytes, (peak() - before) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    nbytes, grown = map(int, out.stdout.split())
    # The array, and the decoder's working memory (a read buffer; xz's dictionary at preset 6 is
    # 256 KiB at preset 0): far less than the 66 MiB of compressed bytes a whole read would hold beside it.
    assert nbytes == len(content) - 12 and grown < nbytes + (24 << 20), (grown - nbytes) >> 20
