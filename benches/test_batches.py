"""One epoch of shuffled batches of 256 from the real training set: fmnist.batches vs the numpy
idioms, against the one-pass floor (np.copyto of the whole set into a preallocated float32
array). The torch contenders are in benches/test_torch.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import fmnist

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's pixel mean and standard deviation, as usually quoted
BATCH = 256
ROUNDS = 50  # an epoch takes milliseconds: many rounds make the median robust to a noisy moment
U8 = "epoch of shuffled batches of 256, uint8"
F32 = "epoch of shuffled batches of 256, float32 normalised"


@pytest.fixture(scope="module")
def train(data_dir: Path) -> tuple[Any, Any]:
    return (
        fmnist.read_idx(data_dir / "train-images-idx3-ubyte.gz"),
        fmnist.read_idx(data_dir / "train-labels-idx1-ubyte.gz"),
    )


def numpy_u8(x: Any, y: Any) -> int:
    perm = np.random.default_rng(0).permutation(len(x))
    n = 0
    for i in range(0, len(x), BATCH):
        idx = perm[i : i + BATCH]
        xb, yb = x[idx], y[idx]
        n += len(xb) if len(xb) == len(yb) else 0
    return n


def numpy_f32(x: Any, y: Any) -> int:
    perm = np.random.default_rng(0).permutation(len(x))
    n = 0
    for i in range(0, len(x), BATCH):
        idx = perm[i : i + BATCH]
        xb, yb = (x[idx].astype(np.float32) / 255 - MEAN) / STD, y[idx]
        n += len(xb) if len(xb) == len(yb) else 0
    return n


def fmnist_epoch(x: Any, y: Any, **kw: Any) -> int:
    return sum(len(xb) for xb, _ in fmnist.batches(x, y, BATCH, **kw))


def test_uint8_fmnist(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    assert measure(U8, "fmnist.batches", lambda: fmnist_epoch(x, y), x.nbytes, rounds=ROUNDS) == 60000


def test_uint8_numpy(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    assert measure(U8, "numpy idiom", lambda: numpy_u8(x, y), x.nbytes, rounds=ROUNDS) == 60000


def test_float32_fmnist(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    n = measure(
        F32,
        "fmnist.batches",
        lambda: fmnist_epoch(x, y, dtype="float32", mean=MEAN, std=STD),
        x.nbytes * 4,
        rounds=ROUNDS,
    )
    assert n == 60000


def test_float32_numpy(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    assert measure(F32, "numpy idiom", lambda: numpy_f32(x, y), x.nbytes * 4, rounds=ROUNDS) == 60000


def test_float32_floor(measure: Callable[..., Any], train: Any) -> None:
    x, _ = train
    out = np.empty(x.shape, np.float32)  # preallocated: the floor is the one conversion pass
    measure(F32, "floor: np.copyto whole set to float32", lambda: np.copyto(out, x), x.nbytes * 4, rounds=ROUNDS)
