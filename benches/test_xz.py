"""xz decoding: fmnist.read_idx of an .xz file (liblzma in Rust, straight into the array) vs the
standard library's lzma.decompress + numpy, on real content: Fashion-MNIST's test images
(7.8 MB) compressed by xz at its default preset, as QMNIST's nist split is published."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import fmnist

GROUP = "load one .xz file (t10k images, 7.8 MB of content, xz -6)"


@pytest.fixture(scope="module")
def packed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    content = gzip.decompress((data_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    path = tmp_path_factory.mktemp("xz") / "t10k-images-idx3-ubyte.xz"
    path.write_bytes(lzma.compress(content, preset=6))
    return path, len(content)


def stdlib(path: Path) -> Any:
    content = lzma.decompress(path.read_bytes())
    return np.frombuffer(content, np.uint8, offset=16).reshape(10000, 28, 28)


def test_lzma_decompress(measure: Callable[..., Any], packed: tuple[Path, int]) -> None:
    path, n = packed
    got = measure(GROUP, "lzma.decompress + numpy (the standard library)", lambda: stdlib(path), n)
    assert got.shape == (10000, 28, 28)


def test_fmnist_read_idx_xz(measure: Callable[..., Any], packed: tuple[Path, int]) -> None:
    path, n = packed
    got = measure(GROUP, "fmnist.read_idx", lambda: fmnist.read_idx(path), n)
    assert np.array_equal(got, stdlib(path))
