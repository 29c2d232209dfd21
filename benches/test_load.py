"""Loading the four real Fashion-MNIST files, with and without MD5 of the stored bytes:
fmnist vs the pure-Python reference, the dataset's own mnist_reader idiom, and the fastest
pure-Python composition (libdeflate through the `deflate` package, hashlib, a thread pool)."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import deflate
import numpy as np
import pytest

import fmnist
from fmnist import reference
from tests.conftest import FILES, PEAK
from tests.test_real_data import REAL

from .conftest import record

PAYLOAD = sum(REAL[f][1] for f in FILES)  # decompressed IDX bytes of the four files


def stored_md5(data_dir: Path) -> dict[str, str | None]:
    # Of the .gz bytes as the test data holds them (upstream's or a recompressed copy's).
    return {f: hashlib.md5((data_dir / f).read_bytes()).hexdigest() for f in FILES}


def mnist_reader_idiom(paths: list[Path], md5: dict[str, str | None], check: bool) -> list[Any]:
    # utils/mnist_reader.py: gzip.open(...).read() into np.frombuffer, plus hashlib for the MD5.
    out = []
    for p in paths:
        if check:
            with open(p, "rb") as f:
                assert hashlib.md5(f.read()).hexdigest() == md5[p.name]
        with gzip.open(p, "rb") as f:
            out.append(np.frombuffer(f.read(), dtype=np.uint8, offset=16 if "images" in p.name else 8))
    return out


def libdeflate_composition(paths: list[Path], md5: dict[str, str | None], check: bool) -> list[Any]:
    def one(p: Path) -> Any:
        data = p.read_bytes()
        if check:
            assert hashlib.md5(data).hexdigest() == md5[p.name]
        content = deflate.gzip_decompress(data)
        return np.frombuffer(content, dtype=np.uint8, offset=16 if "images" in p.name else 8)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, sorted(paths, key=lambda p: -p.stat().st_size)))


CONTENDERS: dict[str, Callable[[list[Path], dict[str, str | None], bool], list[Any]]] = {
    "fmnist.read_idx_many": lambda ps, md5, check: fmnist.read_idx_many(
        ps, md5=[md5[p.name] for p in ps] if check else None
    ),
    "fmnist.read_idx, one by one": lambda ps, md5, check: [
        fmnist.read_idx(p, md5=md5[p.name] if check else None) for p in ps
    ],
    "reference": lambda ps, md5, check: [reference.read_idx(p, md5=md5[p.name] if check else None) for p in ps],
    "mnist_reader idiom": mnist_reader_idiom,
    "libdeflate (deflate pkg) + hashlib, 2 threads": libdeflate_composition,
}


@pytest.mark.parametrize("check", [False, True], ids=["no-md5", "md5"])
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_load_four_files(measure: Callable[..., Any], data_dir: Path, name: str, check: bool) -> None:
    paths = [data_dir / f for f in FILES]
    md5 = stored_md5(data_dir)
    group = f"load 4 files ({'with MD5' if check else 'no MD5'})"
    arrays = measure(group, name, lambda: CONTENDERS[name](paths, md5, check), PAYLOAD)
    assert sum(a.size for a in arrays) == 60000 * 785 + 10000 * 785


@pytest.mark.parametrize("group", ["load 4 files (no MD5)", "load 4 files (with MD5)"])
def test_libdeflate_alone_on_train_images(measure: Callable[..., Any], data_dir: Path, group: str) -> None:
    """The floor the issue names: libdeflate inflating the training images, nothing else."""
    data = (data_dir / FILES[0]).read_bytes()
    measure(
        group, "floor: libdeflate inflates train images only", lambda: deflate.gzip_decompress(data), REAL[FILES[0]][1]
    )


# The peak RSS a child grows by over one read_idx of a path, in bytes (tests.conftest.PEAK).
PEAK_RSS = (
    "import sys\nimport numpy, fmnist\n"
    + PEAK
    + "before = peak()\na = fmnist.read_idx(sys.argv[1])\nprint((peak() - before) * 1024, a.nbytes)\n"
)


def test_peak_memory_of_loading_train_images(data_dir: Path) -> None:
    path = data_dir / FILES[0]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, check=True)
    grown, payload = map(int, out.stdout.split())
    compressed = path.stat().st_size
    allowed = payload + compressed + 8 * 2**20
    record(
        "peak RSS, read_idx(train-images-idx3-ubyte.gz)",
        "fmnist",
        grown_MB=round(grown / 1e6, 1),
        payload_MB=round(payload / 1e6, 1),
        compressed_MB=round(compressed / 1e6, 1),
        allowed_MB=round(allowed / 1e6, 1),
    )
    assert grown <= allowed, (grown, allowed)
