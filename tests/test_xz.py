"""xz in the engine: digests over the stored .xz bytes and over the content, max_bytes and forged
headers judged before anything is allocated, the stream-to-array paths, and QMNIST's real label
files (qmnist/ of the tests' data, see tests/conftest.py) recompressed as xz, as its nist split is published."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import fmnist
from fmnist import _core, reference


@pytest.fixture(scope="module")
def train_labels(qmnist_dir: Path) -> Path:
    return qmnist_dir / "qmnist-train-labels-idx2-int.gz"


@pytest.fixture(scope="module")
def labels(train_labels: Path) -> npt.NDArray[np.int32]:
    return fmnist.read_idx(train_labels, md5="0058f8dd561b90ffdd0f734c6a30e5e4")


def test_qmnist_labels_are_the_rows_source_md_quotes(labels: npt.NDArray[np.int32]) -> None:
    assert labels.shape == (60000, 8) and labels.dtype == np.int32 and labels.dtype.isnative
    assert labels[0].tolist() == [5, 4, 2154, 59, 35, 229421, 0, 0]
    assert set(np.unique(labels[:, 0]).tolist()) == set(range(10))


def test_xz_digests_cover_the_stored_bytes_and_the_content(labels: npt.NDArray[np.int32], train_labels: Path) -> None:
    content = gzip.decompress(train_labels.read_bytes())
    packed = lzma.compress(content, preset=1)
    stored_md5 = hashlib.md5(packed).hexdigest()
    got = fmnist.read_idx(packed, md5=stored_md5, content_sha256=hashlib.sha256(content).hexdigest())
    assert np.array_equal(got, labels)
    with pytest.raises(fmnist.ChecksumError, match=r"MD5 mismatch over the stored \(xz-compressed\) bytes"):
        fmnist.read_idx(packed, md5=hashlib.md5(content).hexdigest())
    # The streaming path (no array) agrees.
    K = _core.Kind
    (outcome,) = _core.read([_core.Request(packed, _core.Mode.DIGESTS, report=[K.MD5, K.CONTENT_MD5])])
    assert not isinstance(outcome, Exception)
    assert outcome.codec == _core.Codec.XZ and outcome.array is None
    assert outcome.digests == {K.MD5: stored_md5, K.CONTENT_MD5: hashlib.md5(content).hexdigest()}


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_max_bytes_and_forged_headers_are_refused_before_allocating() -> None:
    a = np.zeros((100, 100), np.uint8)
    packed = reference.write_idx(a, members=1, xz=True)
    with pytest.raises(fmnist.IdxFormatError, match="max_bytes"):
        fmnist.read_idx(packed, max_bytes=9999)
    # A header claiming 2**40 bytes inside a small, valid xz stream: its index says otherwise,
    # and that is judged before any allocation (under a 1 GiB address-space limit, in a child;
    # RLIMIT_AS is POSIX, hence the skip on Windows).
    forged = lzma.compress(bytes([0, 0, 8, 2]) + (2**20).to_bytes(4, "big") * 2 + bytes(1000))
    code = (
        "import resource, sys, fmnist\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "try:\n    fmnist.read_idx(sys.stdin.buffer.read())\n"
        "except fmnist.IdxFormatError as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=forged, capture_output=True, timeout=60)
    assert b"refused:" in out.stdout and b"the xz streams hold 1012" in out.stdout, out.stderr


def test_write_idx_xz_is_read_by_the_standard_library(
    tmp_path: Path, labels: npt.NDArray[np.int32], train_labels: Path
) -> None:
    path = tmp_path / "labels.idx.xz"
    fmnist.write_idx(path, labels, compress="xz")
    assert path.read_bytes()[:6] == reference.XZ_MAGIC
    assert lzma.decompress(path.read_bytes()) == gzip.decompress(train_labels.read_bytes())
    assert np.array_equal(fmnist.read_idx(path), labels)
    with pytest.raises(ValueError, match="'gzip' or 'xz'"):
        fmnist.write_idx(path, labels, compress="zstd")


def test_qmnist_column_0_is_mnists_labels_as_far_as_they_are_known_here(qmnist_dir: Path) -> None:
    # No MNIST files exist on this machine; what MNIST's labels are is widely published: the
    # per-class counts of its training and test sets, and the first ten labels of each. QMNIST's
    # training set matches MNIST's one by one and its test split starts with MNIST's test set.
    train = fmnist.read_idx(qmnist_dir / "qmnist-train-labels-idx2-int.gz")[:, 0]
    test = fmnist.read_idx(qmnist_dir / "qmnist-test-labels-idx2-int.gz")[:10000, 0]
    assert np.bincount(train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_a_stream_asking_for_a_huge_dictionary_is_refused_before_liblzma_allocates_it() -> None:
    packed = bytearray(lzma.compress(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(100), preset=0))
    # The block header after the 12-byte stream header: size, flags, LZMA2 filter (0x21), one
    # property byte (the dictionary size code), padding, CRC32. Code 40 asks for 4 GiB - 1.
    assert packed[12:16] == bytes([0x02, 0x00, 0x21, 0x01])
    packed[16] = 40
    packed[20:24] = zlib.crc32(bytes(packed[12:20])).to_bytes(4, "little")
    # The same refusal, of the same class, on every path: an array, and digests only.
    message = "asks for more decoder memory than the 128 MiB its content justifies"
    with pytest.raises(fmnist.XzError, match=message):
        fmnist.read_idx(bytes(packed))
    with pytest.raises(fmnist.XzError, match=message):
        _core.read([_core.Request(bytes(packed), _core.Mode.DIGESTS, report=[_core.Kind.CONTENT_SHA256])])
    # A stored digest that does not match comes first, as in the reference.
    with pytest.raises(fmnist.ChecksumError, match="MD5 mismatch over the stored"):
        fmnist.read_idx(bytes(packed), md5="0" * 32)
