"""fmnist.keras.Batches with the real keras package, on its torch backend: the batches are
``fmnist.batches``' own, epoch by epoch, in whatever order keras asks for them, and a small
model's ``fit`` trains on them."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported (the torch extra's torch)

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import keras  # type: ignore[import-untyped]  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pytest  # noqa: E402

import fmnist  # noqa: E402
from fmnist.keras import Batches  # noqa: E402

from .conftest import FILES  # noqa: E402

Array = npt.NDArray[Any]


@pytest.fixture(scope="module")
def train(data_dir: Path) -> tuple[Array, Array]:
    images, labels = fmnist.read_idx_many([data_dir / FILES[0], data_dir / FILES[1]])
    return images[:2048], labels[:2048]


def test_the_batches_are_fmnists_own_epoch_by_epoch_in_any_order(train: tuple[Array, Array]) -> None:
    x, y = train
    augment = fmnist.Augment(pad=2, hflip=0.5, erase=0.5)
    ds = Batches(x, y, 100, seed=7, augment=augment, mean=0.29, std=0.35)
    assert isinstance(ds, keras.utils.PyDataset) and len(ds) == 21 and ds.num_batches == 21
    for epoch in range(2):
        own = list(
            fmnist.batches(x, y, 100, seed=7, epoch=epoch, dtype="float32", augment=augment, mean=0.29, std=0.35)
        )
        ds[4]
        ds.on_epoch_end()  # after a peek (keras's, to build the model): still this epoch
        for k in [20, 3, 0, 19, *range(21)]:  # keras's fit asks in a shuffled order
            xb, yb = ds[k]
            assert np.array_equal(xb, own[k][0]) and np.array_equal(yb, own[k][1].astype(np.int64)), (epoch, k)
            assert yb.dtype == np.int64 and xb.dtype == np.float32
        ds.on_epoch_end()  # every batch was served: the next epoch
    with pytest.raises(IndexError, match="batch 21 of an epoch of 21 batches"):
        ds[21]
    with pytest.raises(ValueError, match="batch_size"):
        Batches(x, y, 0)


def test_a_validation_split_without_a_copy(train: tuple[Array, Array]) -> None:
    x, y = train
    rest, held = fmnist.split_indices(len(y), 0.25, seed=1, stratify=y)
    ds = Batches(x, y, 64, indices=held, shuffle=False)
    seen = np.concatenate([ds[k][1] for k in range(len(ds))])
    assert np.array_equal(seen, y[held]) and len(ds) == 8  # 512 rows, in order


def test_a_small_model_fits_for_an_epoch_on_the_batches(train: tuple[Array, Array]) -> None:
    assert keras.backend.backend() == "torch"
    x, y = train
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    ds = Batches(x, y, 64, seed=0)
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    assert ds.epoch == 2  # fit's two epochs were fmnist's epochs 0 and 1: the next is 2
    assert history.history["accuracy"][1] > 0.5
