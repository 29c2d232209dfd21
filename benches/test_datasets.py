"""fmnist.load_data() of both splits, cold (found on disk, verified, no cache) and warm (the
cache stamped by an earlier verification), vs the dataset's mnist_reader idiom and the
reference (both of which verify nothing)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import fmnist
from fmnist import reference
from tests.conftest import FILES
from tests.test_real_data import REAL

PAYLOAD = sum(REAL[f][1] for f in FILES)
COLD = "load_data(): both splits, cold (verify from .gz)"
WARM = "load_data(): both splits, warm"


@pytest.fixture(scope="module")
def env(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    search = tmp_path_factory.mktemp("search")
    (search / "fashion-mnist").symlink_to(data_dir)
    return {"FMNIST_HOME": str(tmp_path_factory.mktemp("root")), "FMNIST_SEARCH_PATH": str(search)}


@pytest.fixture
def fmnist_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def mnist_reader(path: Path) -> Any:
    # utils/mnist_reader.py, both kinds
    out = []
    for kind in ("train", "t10k"):
        with gzip.open(path / f"{kind}-labels-idx1-ubyte.gz", "rb") as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
        with gzip.open(path / f"{kind}-images-idx3-ubyte.gz", "rb") as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(len(labels), 784)
        out.append((images, labels))
    return out


@pytest.mark.parametrize("group", [COLD, WARM])
def test_mnist_reader_idiom(measure: Callable[..., Any], data_dir: Path, group: str) -> None:
    measure(group, "mnist_reader idiom (no verification)", lambda: mnist_reader(data_dir), PAYLOAD, rounds=7)


@pytest.mark.parametrize("group", [COLD, WARM])
def test_reference(measure: Callable[..., Any], data_dir: Path, group: str) -> None:
    measure(
        group,
        "reference (no verification)",
        lambda: [reference.read_idx(data_dir / f) for f in FILES],
        PAYLOAD,
        rounds=7,
    )


def test_fmnist_cold(measure: Callable[..., Any], fmnist_env: None) -> None:
    result = measure(
        COLD, "fmnist.load_data (verified, cache off)", lambda: fmnist.load_data(download=False, cache=False), PAYLOAD
    )
    assert result[0][0].shape == (60000, 28, 28)


def test_fmnist_first_load_writes_the_cache(measure: Callable[..., Any], fmnist_env: None, tmp_path: Path) -> None:
    """The first load into an empty root: verified from the .gz files, and the cache written."""
    roots: list[Path] = []

    def empty_root() -> tuple[tuple[Path], dict[str, Any]]:
        if roots:
            shutil.rmtree(roots[-1])  # untimed: the previous round's root and its cache
        roots.append(tmp_path / f"root{len(roots)}")
        return (roots[-1],), {}

    result = measure(
        COLD,
        "fmnist.load_data (verified, first: cache written)",
        lambda root: fmnist.load_data(root=root, download=False),
        PAYLOAD,
        setup=empty_root,
    )
    assert result[0][0].shape == (60000, 28, 28)
    assert (roots[-1] / "fashion-mnist" / "train-images-idx3-ubyte").stat().st_size == REAL[FILES[0]][1]


def test_fmnist_warm(measure: Callable[..., Any], fmnist_env: None) -> None:
    fmnist.load_data(download=False)  # the first, verifying load fills the cache
    result = measure(
        WARM, "fmnist.load_data (warm cache)", lambda: fmnist.load_data(download=False), PAYLOAD, rounds=50
    )
    assert result[1][1].shape == (10000,)


SLICED = "load one split, warm: whole, or sliced as tfds slices it"


def test_fmnist_load_a_split_warm(measure: Callable[..., Any], fmnist_env: None) -> None:
    fmnist.load(download=False)
    result = measure(SLICED, "fmnist.load (train, warm)", lambda: fmnist.load(download=False), 47040016, rounds=1000)
    assert result[0].shape == (60000, 28, 28)


def test_fmnist_load_a_sliced_split_warm(measure: Callable[..., Any], fmnist_env: None) -> None:
    fmnist.load(download=False)
    result = measure(
        SLICED, "fmnist.load sliced (train[:90%], warm)", lambda: fmnist.load(split="train[:90%]", download=False),
        47040016 * 9 // 10, rounds=1000,
    )  # fmt: skip
    assert result[0].shape == (54000, 28, 28)
