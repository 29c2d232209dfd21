"""Keras 3: ``fmnist.batches`` as the ``keras.utils.PyDataset`` that ``model.fit`` takes, on any
backend (``pip install fmnist[keras]``; set ``KERAS_BACKEND`` before importing keras, as ever).

    train = fmnist.keras.Batches(x, y, 128, augment=fmnist.Augment(pad=4, hflip=0.5))
    model.fit(train, epochs=10)             # was: model.fit(x, y, batch_size=128, epochs=10)

Each epoch's batches are ``fmnist.batches``' for that epoch (its order, ``seed + epoch``, and its
augmentation). ``on_epoch_end``, which keras calls after every epoch, moves to the next once every
batch of this one was served: keras also calls it after peeking at one batch to build the model,
before the first epoch, and that peek starts no epoch (``fit``'s first epoch is ``epoch``, 0
unless given). ``set_epoch`` sets it by hand, as ``DistributedSampler.set_epoch`` does. A
batch is made when keras asks for it (``Batcher.batch``: in the engine, the GIL released), in
whatever order keras asks (``fit`` shuffles the batches' order too, by default), so
``workers=2`` (a ``PyDataset`` argument) makes two at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

try:
    import keras  # type: ignore[import-untyped]
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError(
        "fmnist.keras needs Keras 3: pip install 'fmnist[keras]' (and a backend: torch, jax or tensorflow)",
        name=e.name,
    ) from e

from .augment import Augment
from .pipeline import Stat, batches

__all__ = ["Batches"]


class Batches(keras.utils.PyDataset):  # type: ignore[misc]  # (keras is untyped)
    """``(x, y)`` batches of ``images`` and ``labels`` for ``model.fit``: ``fmnist.batches``'
    arguments (``dtype="float32"`` by default: scaled to [0, 1], normalised by ``mean``/``std``;
    ``indices`` for a validation split without a copy), and ``PyDataset``'s (``workers``,
    ``use_multiprocessing``, ``max_queue_size``). ``y`` is int64 unless ``int64_labels=False``.
    Images of shape (N, H, W) give batches (B, H, W); pass ``images[..., None]`` (a view) for the
    (B, H, W, 1) a ``Conv2D`` wants. ``epoch`` is the epoch the next batches are of."""

    def __init__(
        self,
        images: npt.ArrayLike,
        labels: npt.ArrayLike,
        batch_size: int = 256,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        dtype: str | None = "float32",
        mean: Stat = None,
        std: Stat = None,
        flatten: bool = False,
        augment: Augment | None = None,
        indices: npt.ArrayLike | None = None,
        int64_labels: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        y = np.asarray(labels)
        self.images = np.asarray(images)
        self.labels = np.ascontiguousarray(y, dtype=np.int64) if int64_labels else y
        self.batch_size = batch_size
        self.epoch = epoch
        self._options: dict[str, Any] = dict(
            shuffle=shuffle, seed=seed, drop_last=drop_last, dtype=dtype, mean=mean, std=std, flatten=flatten,
            augment=augment, indices=indices,
        )  # fmt: skip
        self._epoch_batches = self._make()  # bad arguments fail here, not in the middle of fit
        self._served = np.zeros(len(self._epoch_batches), dtype=bool)  # this epoch's batches served

    def _make(self) -> Any:
        return batches(self.images, self.labels, self.batch_size, epoch=self.epoch, **self._options)

    def __len__(self) -> int:
        return len(self._epoch_batches)

    def __getitem__(self, index: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of an epoch of {len(self)} batches")
        x, y = self._epoch_batches.batch(index)
        self._served[index] = True
        return x, y

    def on_epoch_end(self) -> None:
        """The next epoch's batches, once every batch of this one was served (see the module)."""
        if self._served.all():
            self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """The batches are now ``epoch``'s: its order and augmentation (``fmnist.batches(epoch=)``)."""
        self._epoch_batches.close()
        self.epoch = epoch
        self._epoch_batches = self._make()
        self._served[:] = False
