"""An epoch of Keras 3's ``model.fit`` on the real training set in batches of 256, the model
trivial (flatten, one dense layer) so that the input dominates: ``fmnist.keras.Batches`` against
keras's own idiom for numpy arrays (``model.fit(x, y, batch_size=256)``, the images made float32
in [0, 1] beforehand, untimed), and with augmentation (crop with padding 4, horizontal flip,
erasing) against keras's preprocessing layers for the same (RandomTranslation by up to 4 pixels
with zeros filled in, keras's form of a crop with padding 4; RandomFlip; RandomErasing), in the
model. The first 10,240 training images (40 batches): keras's per-step cost is the same for each
batch. Keras runs on its torch backend (the torch extra's)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fmnist  # noqa: E402

keras = pytest.importorskip("keras")  # benches measure what is installed (the tests never skip it)

from fmnist.keras import Batches  # noqa: E402

BATCH = 256
PLAIN = "epoch of keras model.fit, 40 batches of 256 (a trivial model: the input dominates)"
AUGMENTED = "epoch of keras model.fit with augmentation (crop pad 4, flip, erase 0.5), 40 batches of 256"
ROWS = 10240
NBYTES = ROWS * 784 * 4


@pytest.fixture(scope="module")
def train(data_dir: Path) -> tuple[Any, Any]:
    return (
        fmnist.read_idx(data_dir / "train-images-idx3-ubyte.gz")[:ROWS],
        fmnist.read_idx(data_dir / "train-labels-idx1-ubyte.gz")[:ROWS],
    )


def model(*first: Any) -> Any:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((28, 28, 1)), *first, keras.layers.Flatten(), keras.layers.Dense(10)])
    m.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def epochs(m: Any, *args: Any, **kwargs: Any) -> int:
    history = m.fit(*args, epochs=1, verbose=0, **kwargs)
    return len(history.history["loss"])


def test_keras_numpy_idiom(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    xf = (x.astype(np.float32) / 255)[..., None]  # the idiom's preparation, once, untimed
    m = model()
    name = "keras model.fit(x, y, batch_size) (numpy arrays)"
    assert measure(PLAIN, name, lambda: epochs(m, xf, y.astype(np.int64), batch_size=BATCH), NBYTES, rounds=5) == 1


def test_fmnist_keras_batches(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    m, ds = model(), Batches(x[..., None], y, BATCH)
    assert measure(PLAIN, "fmnist.keras.Batches", lambda: epochs(m, ds), NBYTES, rounds=5) == 1


def test_keras_preprocessing_layers(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    xf = (x.astype(np.float32) / 255)[..., None]
    layers = [
        keras.layers.RandomTranslation(4 / 28, 4 / 28, fill_mode="constant", seed=0),
        keras.layers.RandomFlip("horizontal", seed=0),
        keras.layers.RandomErasing(factor=0.5, value_range=(0, 1), seed=0),
    ]
    m = model(*layers)
    name = "keras preprocessing layers (RandomTranslation, RandomFlip, RandomErasing)"
    assert measure(AUGMENTED, name, lambda: epochs(m, xf, y.astype(np.int64), batch_size=BATCH), NBYTES, rounds=5) == 1


def test_fmnist_keras_batches_augmented(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    m = model()
    ds = Batches(x[..., None], y, BATCH, augment=fmnist.Augment(pad=4, hflip=0.5, erase=0.5))
    assert measure(AUGMENTED, "fmnist.keras.Batches + Augment", lambda: epochs(m, ds), NBYTES, rounds=5) == 1
