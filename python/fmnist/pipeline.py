"""Training batches: ``fmnist.batches``, one epoch of (x, y) pairs for a training loop.

Order (fixed by the design, so runs and ranks agree):

1. ``perm = numpy.random.default_rng(seed + epoch).permutation(N)`` when shuffling, else
   ``arange(N)``;
2. for ``world_size > 1``, torch's DistributedSampler rule: pad by repeating from the start to
   a multiple of ``world_size`` (or cut to one when ``drop_last``), then rank takes
   ``perm[rank::world_size]``;
3. batches of ``batch_size`` in that order, the last one short unless ``drop_last``.

With ``indices`` (a subset of the rows: a validation split, ``split_indices``), steps 1 and 2
order the subset's positions, and each position names its row: ``order = indices[perm]``. The
rows are gathered from the arrays as they are; nothing is copied.

Gathering, augmentation (``augment=``, see ``fmnist.augment``), conversion and normalisation
happen in one pass in Rust with the GIL released, one batch ahead on a background thread.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import _core
from .augment import Augment

Stat = Union[float, Sequence[float], npt.NDArray[Any], None]

#: The iterator ``batches`` returns: ``len()`` (batches left), ``close()``, and a context manager
#: (``with fmnist.batches(...) as it:`` closes it on the way out).
Batches = _core.Batcher


def _order_limit() -> int:
    """The most bytes an epoch's order may take: this machine's memory (an order is 8 bytes a
    row; a view claiming more rows than that serves no epoch)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): numpy's MemoryError decides
        return sys.maxsize


def epoch_indices(
    n: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> npt.NDArray[np.int64]:
    """The row indices one rank serves in one epoch, in order (steps 1 and 2 above). The padded
    (or cut) order is never made whole: a rank's share is computed from its positions in it, so
    a world far larger than the rows costs nothing in proportion to it."""
    if 8 * n > _order_limit():
        raise ValueError(
            f"{n} rows: an epoch's order alone would need {8 * n:,} bytes, more than this machine's "
            f"{_order_limit():,} bytes of memory (a broadcast view claiming rows it does not hold?)"
        )
    perm = np.random.default_rng(seed + epoch).permutation(n) if shuffle else np.arange(n)
    if world_size > 1:
        # DistributedSampler's rule: the order padded by repeating from the start to a multiple
        # of world_size (padded[j] = perm[j % n]), or cut to one; rank takes positions
        # rank, rank + world_size, ...
        share = n // world_size if drop_last else -(-n // world_size)
        positions = rank + world_size * np.arange(share, dtype=np.int64)
        perm = perm[positions % n] if n else perm[:0]
    return perm.astype(np.int64, copy=False)


def split_indices(
    n: int, fraction: float, *, seed: int = 0, stratify: npt.ArrayLike | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(train, validation)``: the row numbers of ``n`` rows split at random (seeded by
    ``seed``), ``round(n * fraction)`` of them for validation, each array sorted. With
    ``stratify`` (the labels), each class gives the same share of its rows: ``fraction`` of
    them, rounded, the rounding's remainder going to the classes whose shares were cut most, so
    that the total is still ``round(n * fraction)``. For ``batches(..., indices=train)``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be a whole number of rows, at least 2, not {n!r}")
    f = float(fraction)
    k = int(round(n * f))
    if not 0 < f < 1 or not 0 < k < n:
        raise ValueError(f"fraction must leave rows on both sides of the split: {fraction!r} of {n} rows")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, not {seed!r}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        chosen = rng.permutation(n)[:k]
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must be the {n} rows' labels, shape ({n},), not shape {labels.shape}")
        classes, inverse = np.unique(labels, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(classes))
        shares = np.floor(counts * f).astype(np.int64)
        cut = counts * f - shares  # what rounding down took from each class
        extra = np.argsort(-cut, kind="stable")[: k - int(shares.sum())]
        shares[extra] += 1
        members = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        chosen = np.concatenate([rng.permutation(members[s : s + c])[:t] for s, c, t in zip(starts, counts, shares)])
    validation = np.sort(chosen).astype(np.int64)
    train = np.setdiff1d(np.arange(n, dtype=np.int64), validation, assume_unique=True)
    return train, validation


def row_subset(indices: npt.ArrayLike, rows: int) -> npt.NDArray[np.int64]:
    """``indices`` as the engine takes them: row numbers of ``rows`` (or a boolean mask of them)."""
    a = np.asarray(indices)
    if a.dtype == np.bool_:
        if a.shape != (rows,):
            raise ValueError(f"indices as a boolean mask must have one value a row, shape ({rows},), not {a.shape}")
        return np.flatnonzero(a).astype(np.int64)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise ValueError(f"indices must be a 1-D array of row numbers (or a boolean mask), not {a.dtype} {a.shape}")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= rows):
        bad = int(a.min()) if int(a.min()) < 0 else int(a.max())
        raise ValueError(f"indices: row {bad} is not one of the {rows} rows (0 to {rows - 1})")
    return a.astype(np.int64, copy=False)


def _rows(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``a`` as the engine reads it in place: native byte order, each row contiguous and aligned.
    Rows may be any distance apart (every other row, reversed, a broadcast view): those are read
    through their stride, never copied. Only an array whose rows are not so is copied."""
    if a.ndim == 0:
        return a  # the engine refuses it, with the reason
    step, contiguous = a.itemsize, True
    for n, s in zip(reversed(a.shape[1:]), reversed(a.strides[1:])):
        contiguous &= n <= 1 or s == step
        step *= n
    if a.dtype.isnative and a.flags.aligned and contiguous:
        return a
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def _stat(value: Stat, name: str, shape: tuple[int, ...]) -> list[float] | None:
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float32)
    try:
        full = np.broadcast_to(v, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {v.shape} does not broadcast to one image of shape {shape} "
            "(numpy's rule: per-channel values go on the last axis, or shape (C, 1, 1) for channels-first)"
        ) from None
    return [float(x) for x in full.ravel()]


def batches(
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    batch_size: int = 256,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    dtype: str | None = "uint8",
    flatten: bool = False,
    mean: Stat = None,
    std: Stat = None,
    augment: Augment | None = None,
    indices: npt.ArrayLike | None = None,
) -> Batches:
    """One epoch of ``(x, y)`` batches from ``images`` and ``labels`` (same length).

    ``dtype``: ``"uint8"`` serves uint8 images as they are; ``"float32"`` converts (uint8 is
    scaled by 1/255 to [0, 1], other types are converted as they are) and then normalises with
    ``(x - mean) / std`` when given (scalars, or per-channel values that broadcast to one image);
    ``None`` serves images of any dtype as they are. ``flatten`` gives x the shape
    ``(B, prod(image shape))``. Each batch is a fresh array the caller may keep.

    ``augment``: an ``fmnist.Augment``, applied to each example as it is gathered (images of shape
    (N, H, W) or (N, H, W, C)); its draws depend on ``seed``, ``epoch`` and the example's row
    alone (``Augment.draws``).

    ``indices``: only these rows (row numbers, or a boolean mask): a validation split without a
    copy of the data (``split_indices``); the order and the sharding are over the subset.

    The result is an iterator with ``len()`` (batches left) and ``close()``; leaving a loop
    early, closing it or dropping it stops its background thread.
    """
    x = np.asarray(images)
    y = np.asarray(labels)
    if augment is not None and not isinstance(augment, Augment):
        raise TypeError(f"augment must be an fmnist.Augment or None, not {type(augment).__name__}")
    batch_size, rank, world_size, dtype, seed, epoch = _core.batch_args(
        batch_size, rank, world_size, dtype, seed, epoch, augment is not None
    )
    x, y = _rows(x), _rows(y)
    fused = None if augment is None else (augment, seed, epoch)
    image_shape = x.shape[1:]
    rows = x.shape[0] if x.ndim else 0  # a 0-d array: the engine refuses it, with the reason
    subset = None if indices is None else row_subset(indices, rows)
    order = epoch_indices(
        rows if subset is None else len(subset),
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
        drop_last=drop_last,
        rank=rank,
        world_size=world_size,
    )
    order = order if subset is None else subset[order]
    out_shape = [int(np.prod(image_shape, dtype=np.int64))] if flatten else [int(d) for d in image_shape]
    return _core.Batcher(
        x,
        y,
        order,
        batch_size,
        bool(drop_last),
        dtype,
        _stat(mean, "mean", image_shape),
        _stat(std, "std", image_shape),
        out_shape,
        fused,
    )
