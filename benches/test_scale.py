"""Reading at scale: IDX files of 50 MB, 500 MB and 2 GB (gzip, built here from Fashion-MNIST's
training images), their time and the peak memory of reading them from a path as a ratio to the
array returned; and reading from buffers in memory, which the engine reads in place."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import deflate
import numpy as np
import pytest

import fmnist
from benches.test_load import PEAK_RSS
from fmnist import reference
from tests.conftest import FILES, PEAK

from .conftest import record

#: Decompressed sizes of the files built: about 50 MB, 500 MB and 2 GB of 28x28 images.
SIZES = {"50 MB": 63_776, "500 MB": 637_755, "2 GB": 2_551_020}


@pytest.fixture(scope="module")
def scaled(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three .gz files: the training images repeated to each size, compressed by libdeflate
    at level 1 (the 2 GB file takes seconds, not minutes, to make)."""
    images = fmnist.read_idx(data_dir / FILES[0])
    folder = tmp_path_factory.mktemp("scale")
    out = {}
    for name, n in SIZES.items():
        tiled = np.resize(images, (n, 28, 28))
        path = folder / f"{name.replace(' ', '')}-idx3-ubyte.gz"
        fmnist.write_idx(path, tiled, compress=1)
        out[name] = path
        del tiled
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
@pytest.mark.parametrize("size", list(SIZES))
def test_peak_memory_of_reading_a_path_by_size(scaled: dict[str, Path], size: str) -> None:
    path = scaled[size]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, check=True)
    grown, output = map(int, out.stdout.split())
    stored = path.stat().st_size
    record(
        "peak RSS of read_idx(path) over the array it returns, IDX .gz of Fashion-MNIST's images (libdeflate level 1)",
        size,
        array_MB=round(output / 1e6, 1),
        stored_MB=round(stored / 1e6, 1),
        peak_grew_MB=round(grown / 1e6, 1),
        working_MB=round((grown - output) / 1e6, 1),
        ratio=f"{grown / output:.3f}",
    )
    # Over 64 MiB stored, decoded as it is read: the array and at most 64 MiB of working memory.
    if stored > 64 << 20:
        assert grown <= output + (64 << 20), (grown - output) >> 20


def _mnist_reader_idiom(path: Path) -> Any:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=16)


def _libdeflate_whole(path: Path) -> Any:
    return np.frombuffer(deflate.gzip_decompress(path.read_bytes()), dtype=np.uint8, offset=16)


@pytest.mark.parametrize(
    "name",
    ["fmnist.read_idx (decoded as it is read)", "mnist_reader idiom", "libdeflate (deflate pkg), whole file in memory"],
)
def test_reading_500_mb(measure: Callable[..., Any], scaled: dict[str, Path], name: str) -> None:
    path = scaled["500 MB"]
    fn = {
        "fmnist.read_idx (decoded as it is read)": lambda: fmnist.read_idx(path),
        "mnist_reader idiom": lambda: _mnist_reader_idiom(path),
        "libdeflate (deflate pkg), whole file in memory": lambda: _libdeflate_whole(path),
    }[name]
    a = measure("load one 500 MB IDX .gz from a path", name, fn, SIZES["500 MB"] * 784, rounds=3)
    assert a.size == SIZES["500 MB"] * 784


@pytest.fixture(scope="module")
def raw_100mb() -> bytes:
    """100 MB of raw IDX content in memory (uint8, 100 rows of 1 MB)."""
    payload = np.random.default_rng(0).integers(0, 256, size=(100, 1_000_000), dtype=np.uint8)
    return reference.write_idx(payload)


@pytest.mark.parametrize(
    "name", ["fmnist.read_idx(bytearray)", "fmnist.read_idx(bytes)", "fmnist.read_idx(numpy array)", "reference"]
)
def test_reading_a_buffer(measure: Callable[..., Any], raw_100mb: bytes, name: str) -> None:
    source: Any = {
        "fmnist.read_idx(bytearray)": bytearray(raw_100mb),
        "fmnist.read_idx(bytes)": raw_100mb,
        "fmnist.read_idx(numpy array)": np.frombuffer(raw_100mb, np.uint8),
        "reference": raw_100mb,
    }[name]
    read = reference.read_idx if name == "reference" else fmnist.read_idx
    a = measure("load 100 MB of raw IDX from memory", name, lambda: read(source), 100_000_000, rounds=15)
    assert a.nbytes == 100_000_000


# The bytearray's pages are all touched (filled in place, no temporary) before the peak is read.
BUFFER_RSS = (
    "import numpy as np, fmnist\n"
    + PEAK
    + """
n = 100_000_000
data = bytearray(8 + n)
data[:8] = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
np.frombuffer(data, np.uint8)[8:] = 7
before = peak()
a = fmnist.read_idx(data)
print((peak() - before) * 1024, a.nbytes)
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
def test_peak_memory_of_reading_a_bytearray() -> None:
    out = subprocess.run([sys.executable, "-c", BUFFER_RSS], capture_output=True, text=True, check=True)
    grown, output = map(int, out.stdout.split())
    record(
        "peak RSS of read_idx(bytearray) over the array it returns, 100 MB of raw IDX",
        "fmnist",
        array_MB=round(output / 1e6, 1),
        peak_grew_MB=round(grown / 1e6, 1),
        ratio=f"{grown / output:.3f}",
    )
    assert grown <= 1.1 * output
