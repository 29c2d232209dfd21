"""Augmentation fused into the batch maker: ``fmnist.Augment``, for ``fmnist.batches(...,
augment=)`` and ``fmnist.torch.loader(..., augment=)``.

Per example, in this order, as torchvision applies them:

1. ``RandomCrop(size, padding=pad)``: a crop of the image's own size from the image padded with
   ``pad`` zeros on each side, at an offset (top, left) drawn uniformly from ``0..2*pad``;
2. ``RandomHorizontalFlip(hflip)``;
3. the conversion to float32 and the normalisation (``dtype="float32"``, ``mean``, ``std``);
4. ``RandomErasing(erase, scale, ratio, value)``: with probability ``erase``, up to ten tries at
   a rectangle of area ``uniform(*scale)`` times the image's and aspect ratio
   ``exp(uniform(log(ratio[0]), log(ratio[1])))``, rounded as Python rounds; the first that fits
   is set to ``value``, after normalisation (in the batch's units).

The engine does all four in one pass over each example, writing straight into the batch, on the
batch maker's thread with the GIL released. Every draw comes from a counter-based generator
(Philox4x32-10) keyed by ``seed``, with the epoch and the example's row index in the counter, so
an example is augmented the same way whatever the batch size, world size, rank or thread count;
``Augment.draws`` returns them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Union

import numpy as np
import numpy.typing as npt

from . import _core

Value = Union[float, Sequence[float]]


class Draws(NamedTuple):
    """The draws for some examples, one row each (what the batch maker applies to them)."""

    #: (n, 2) int64: the crop's (top, left) in the padded image, each in ``0..2*pad``.
    crop: npt.NDArray[np.int64]
    #: (n,) bool: flipped left to right.
    flip: npt.NDArray[np.bool_]
    #: (n, 4) int64: the erased rectangle's (top, left, height, width) in the augmented image;
    #: height or width 0 when nothing is erased.
    erase: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Augment:
    """Random crop, horizontal flip and random erasing, applied per example as batches are made.

    The defaults do nothing; ``Augment(pad=4, hflip=0.5)`` is the usual crop-and-flip recipe, and
    ``erase=0.5`` adds random erasing (Zhong et al. 2017) with torchvision's defaults for
    ``scale``, ``ratio`` and ``value``.

    - ``pad``: pixels of zero padding on each side before the random crop (0: no crop);
    - ``hflip``: the probability of a horizontal flip;
    - ``erase``: the probability of erasing a rectangle;
    - ``scale``: the erased area's range, as fractions of the image's;
    - ``ratio``: the erased rectangle's aspect ratio (height / width) range;
    - ``value``: what erased elements become, in the batch's units (after normalisation for
      float32 batches): one number, or one per channel. For batches in the images' own dtype it
      must be a value of that dtype.
    """

    pad: int = 0
    hflip: float = 0.0
    erase: float = 0.0
    scale: tuple[float, float] = (0.02, 0.33)
    ratio: tuple[float, float] = (0.3, 3.3)
    value: Value = 0.0

    def __post_init__(self) -> None:
        # The engine checks every parameter (types and ranges, each error naming it) and gives
        # them back as it holds them; a frozen dataclass stores them once, here.
        checked = _core.augment_check(self)
        for name, v in zip(("pad", "hflip", "erase", "scale", "ratio", "value"), checked):
            object.__setattr__(self, name, v)

    def draws(
        self,
        indices: npt.ArrayLike,
        *,
        seed: int = 0,
        epoch: int = 0,
        shape: tuple[int, int] = (28, 28),
    ) -> Draws:
        """The draws for examples ``indices`` (row numbers in the images array) in ``epoch`` under
        ``seed``, for images of ``shape`` (height, width): what ``batches(..., seed=seed,
        epoch=epoch, augment=self)`` applies to those rows."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (idx.dtype.kind in "iu" or idx.size == 0):
            raise TypeError(f"indices must be a 1-d array of row numbers, not {idx.dtype} of shape {idx.shape}")
        if (
            isinstance(shape, (str, bytes))
            or not isinstance(shape, Sequence)
            or len(shape) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in shape)
        ):
            raise ValueError(f"shape must be (height, width), two ints >= 0, not {shape!r}")
        h, w = (int(v) for v in shape)
        return Draws(*_core.augment_draws(self, idx.astype(np.int64, copy=False), seed, epoch, h, w))
