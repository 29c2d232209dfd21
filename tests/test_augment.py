"""fmnist.Augment: batches made with augmentation are exactly what a plain numpy implementation
makes from ``Augment.draws``, for every option, shape, dtype and sharding; an example's draws
depend on (seed, epoch, row) alone; bad parameters are clear errors. The draws' distribution
against torchvision's own transforms is in tests/test_augment_torch.py."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fmnist
from fmnist.pipeline import epoch_indices


def reference(
    x: npt.NDArray[Any],
    rows: npt.NDArray[np.int64],
    aug: fmnist.Augment,
    *,
    seed: int,
    epoch: int,
    dtype: str | None,
    mean: Any = None,
    std: Any = None,
) -> npt.NDArray[Any]:
    """numpy, from the draws: rows of x zero-padded and cropped, flipped, converted and
    normalised (as fmnist.batches computes it: ``(x - mean) * (1 / std)`` when every 1 / std is a
    normal float, else ``/ std``), then erased."""
    d = aug.draws(rows, seed=seed, epoch=epoch, shape=(x.shape[1], x.shape[2]))
    imgs = x[rows] if x.ndim == 4 else x[rows][..., None]
    n, h, w, c = imgs.shape
    p = aug.pad
    padded = np.zeros((n, h + 2 * p, w + 2 * p, c), x.dtype)
    padded[:, p : p + h, p : p + w] = imgs
    out = np.stack([padded[k, t : t + h, left : left + w] for k, (t, left) in enumerate(d.crop)]) if n else imgs
    out[d.flip] = out[d.flip][:, :, ::-1]
    if dtype == "float32":
        f = out.astype(np.float32)
        if x.dtype == np.uint8:
            f = f / np.float32(255)
        shape = x.shape[1:]
        m = np.broadcast_to(np.asarray(0 if mean is None else mean, np.float32), shape).reshape(h, w, c)
        if std is not None:
            s = np.broadcast_to(np.asarray(std, np.float32), shape).reshape(h, w, c)
            with np.errstate(over="ignore", divide="ignore"):
                r = np.float32(1) / s
            normal = np.all(np.isfinite(r) & (np.abs(r) >= np.finfo(np.float32).tiny))
            f = (f - m) * r if normal else (f - m) / s
        else:
            f = f - m
        out = f
    value = np.broadcast_to(np.asarray(aug.value, np.float64), (c,)).astype(out.dtype)
    for k, (t, left, eh, ew) in enumerate(d.erase):
        out[k, t : t + eh, left : left + ew, :] = value
    return out if x.ndim == 4 else out[..., 0]


def epoch_of(x: Any, y: Any, batch_size: int, **kw: Any) -> npt.NDArray[Any]:
    return np.concatenate([xb for xb, _ in fmnist.batches(x, y, batch_size, **kw)])


def images(shape: tuple[int, ...], dtype: str, seed: int = 0) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 3, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)


CASES = [
    # (image shape, dtype, augment, batches' dtype, mean, std)
    ((28, 28), "uint8", fmnist.Augment(pad=4, hflip=0.5, erase=0.5), "float32", 0.286, 0.353),
    ((28, 28), "uint8", fmnist.Augment(pad=2, hflip=1.0, erase=1.0, value=7), "uint8", None, None),
    (
        (7, 9, 3),
        "float64",
        fmnist.Augment(pad=3, hflip=0.5, erase=0.8, value=(-1, 0, 2.5)),
        "float32",
        [1, 2, 3],
        [2, 4, 0.5],
    ),
    ((5, 6), "int16", fmnist.Augment(pad=12, hflip=0.3), None, None, None),  # pad past the image
    (
        (4, 4, 2),
        "uint16",
        fmnist.Augment(hflip=0.5, erase=1.0, scale=(0.1, 0.9), ratio=(0.5, 2), value=(9, 8)),
        None,
        None,
        None,
    ),
    ((6, 5), "int64", fmnist.Augment(pad=1, erase=1.0, scale=(0.5, 1.0), ratio=(0.2, 5.0)), "float32", 3.0, None),
    ((8, 8), "float32", fmnist.Augment(pad=2, hflip=0.5), "float32", None, 3e38),  # 1 / std subnormal: divided
    ((3, 3), "int8", fmnist.Augment(), "float32", None, None),  # the identity
]


@pytest.mark.parametrize("shape,dtype,aug,out,mean,std", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
@pytest.mark.parametrize("shard", [(0, 1), (1, 3)], ids=["whole", "rank1of3"])
def test_batches_equal_the_numpy_implementation(
    shape: tuple[int, ...],
    dtype: str,
    aug: fmnist.Augment,
    out: str | None,
    mean: Any,
    std: Any,
    shard: tuple[int, int],
) -> None:
    x = images((101, *shape), dtype)
    y = np.arange(101)
    rank, world = shard
    kw: dict[str, Any] = dict(seed=5, epoch=2, rank=rank, world_size=world, dtype=out, augment=aug)
    if mean is not None:
        kw["mean"] = mean
    if std is not None:
        kw["std"] = std
    got = epoch_of(x, y, 16, **kw)
    rows = epoch_indices(101, seed=5, epoch=2, rank=rank, world_size=world)
    want = reference(x, rows, aug, seed=5, epoch=2, dtype=out, mean=mean, std=std)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if aug != fmnist.Augment():
        plain = epoch_of(x, y, 16, **{**kw, "augment": None})
        assert not np.array_equal(got, plain)  # it did augment


@st.composite
def settings_(draw: Any) -> tuple[Any, ...]:
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    channels = draw(st.sampled_from([None, 1, 3]))
    dtype = draw(
        st.sampled_from(["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"])
    )
    n = draw(st.integers(0, 40))
    s0 = draw(st.floats(0.01, 1.0))
    r0 = draw(st.floats(0.1, 4.0))
    aug = fmnist.Augment(
        pad=draw(st.integers(0, 6)),
        hflip=draw(st.sampled_from([0.0, 0.5, 1.0])),
        erase=draw(st.sampled_from([0.0, 0.5, 1.0])),
        scale=(s0, draw(st.floats(s0, 1.0))),
        ratio=(r0, draw(st.floats(r0, 8.0))),
        value=draw(st.integers(0, 100))
        if channels is None
        else tuple(draw(st.integers(0, 100)) for _ in range(channels)),
    )
    world = draw(st.integers(1, 4))
    return (
        (n, h, w) if channels is None else (n, h, w, channels),
        dtype,
        aug,
        draw(st.sampled_from(["float32", None])),
        draw(st.integers(1, 50)),
        world,
        draw(st.integers(0, world - 1)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.booleans()),
    )


@given(settings_())
def test_every_option_shape_dtype_and_shard_equals_the_numpy_implementation(case: tuple[Any, ...]) -> None:
    shape, dtype, aug, out, batch, world, rank, seed, epoch, drop_last = case
    x = images(shape, dtype, seed=seed % 1000)
    y = np.arange(shape[0])
    kw = dict(seed=seed, epoch=epoch, rank=rank, world_size=world, dtype=out, augment=aug, drop_last=drop_last)
    parts = [xb for xb, _ in fmnist.batches(x, y, batch, **kw)]
    rows = epoch_indices(shape[0], seed=seed, epoch=epoch, rank=rank, world_size=world, drop_last=drop_last)
    rows = rows[: len(rows) // batch * batch] if drop_last else rows
    want = reference(x, rows, aug, seed=seed, epoch=epoch, dtype=out)
    got = np.concatenate(parts) if parts else want[:0]
    np.testing.assert_array_equal(got, want)


def test_an_example_is_augmented_the_same_way_whatever_the_batch_size_world_size_and_rank() -> None:
    x = images((300, 28, 28), "uint8")
    y = np.arange(300)
    aug = fmnist.Augment(pad=4, hflip=0.5, erase=0.5)

    def by_row(**kw: Any) -> dict[int, bytes]:
        seen: dict[int, bytes] = {}
        for xb, yb in fmnist.batches(x, y, dtype="float32", seed=3, epoch=1, augment=aug, **kw):
            for img, row in zip(xb, yb):
                seen.setdefault(int(row), img.tobytes())
                assert seen[int(row)] == img.tobytes()  # a padded repeat is the same augmentation
        return seen

    whole = by_row(batch_size=256)
    assert len(whole) == 300
    assert by_row(batch_size=1) == whole
    for world in (2, 7):
        ranks: dict[int, bytes] = {}
        for rank in range(world):
            ranks.update(by_row(batch_size=13, world_size=world, rank=rank))
        assert ranks == whole
    # Not the same in another epoch, nor under another seed; the order shuffles with them, the
    # augmentation is keyed by the row.
    other = {}
    for xb, yb in fmnist.batches(x, y, 64, dtype="float32", seed=3, epoch=2, augment=aug):
        other.update({int(r): i.tobytes() for i, r in zip(xb, yb)})
    assert sum(other[r] != whole[r] for r in whole) > 200
    # A single-threaded maker (one batch) and the prefetching one agree.
    one = next(iter(fmnist.batches(x, y, 300, dtype="float32", seed=3, epoch=1, augment=aug)))
    assert {int(r): i.tobytes() for i, r in zip(one[0], one[1])} == whole


def test_draws_are_a_pure_function_of_seed_epoch_and_row() -> None:
    aug = fmnist.Augment(pad=4, hflip=0.5, erase=0.5)
    d = aug.draws(np.arange(1000), seed=1, epoch=0)
    again = aug.draws(np.arange(1000)[::-1], seed=1, epoch=0)
    for a, b in zip(d, again):
        np.testing.assert_array_equal(a, b[::-1])
    assert d.crop.shape == (1000, 2) and d.flip.shape == (1000,) and d.erase.shape == (1000, 4)
    assert d.crop.min() == 0 and d.crop.max() == 8
    assert not np.array_equal(d.crop, aug.draws(np.arange(1000), seed=2).crop)
    assert not np.array_equal(d.crop, aug.draws(np.arange(1000), seed=1, epoch=1).crop)
    # Each draw has its own place in the stream: turning erasing off keeps crops and flips.
    plain = fmnist.Augment(pad=4, hflip=0.5).draws(np.arange(1000), seed=1)
    np.testing.assert_array_equal(plain.crop, d.crop)
    np.testing.assert_array_equal(plain.flip, d.flip)
    assert not plain.erase.any()
    empty = aug.draws(np.array([], np.int64))
    assert empty.crop.shape == (0, 2) and empty.erase.shape == (0, 4)


BAD = [
    (dict(pad=-1), ValueError, "Augment.pad must be an int from 0 to 65536, not -1"),
    (dict(pad=1.5), TypeError, "Augment.pad must be an int, not 1.5"),
    (dict(pad=True), TypeError, "Augment.pad must be an int, not True"),
    (dict(pad=2**16 + 1), ValueError, "Augment.pad must be an int from 0 to 65536, not 65537"),
    (dict(pad=2**200), ValueError, "Augment.pad must be an int from 0 to 65536"),
    (dict(hflip=1.5), ValueError, "Augment.hflip is a probability, in [0, 1], not 1.5"),
    (dict(hflip=float("nan")), ValueError, "Augment.hflip is a probability"),
    (dict(hflip="0.5"), TypeError, "Augment.hflip must be a number"),
    (dict(erase=-0.1), ValueError, "Augment.erase is a probability"),
    (dict(scale=(0.5, 0.1)), ValueError, "Augment.scale must be (min, max) with 0 < min <= max <= 1"),
    (dict(scale=(0.0, 0.3)), ValueError, "Augment.scale must be"),
    (dict(scale=(0.1, 1.5)), ValueError, "Augment.scale must be"),
    (dict(scale=0.3), TypeError, "Augment.scale must be a (min, max) pair"),
    (dict(scale=(0.1,)), TypeError, "Augment.scale must be a (min, max) pair"),
    (dict(ratio=(3.3, 0.3)), ValueError, "Augment.ratio must be (min, max) with 0 < min <= max"),
    (dict(ratio=(0.3, float("inf"))), ValueError, "Augment.ratio must be"),
    (dict(value="random"), TypeError, "value='random' is not supported"),
    (dict(value=float("nan")), ValueError, "Augment.value must be one finite number"),
    (dict(value=()), ValueError, "Augment.value must be one finite number, or one per channel"),
    (dict(value=(1, "a")), TypeError, "Augment.value must be a number"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_parameters_are_clear_errors(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=re.escape(message)):
        fmnist.Augment(**kwargs)


def test_bad_uses_are_clear_errors() -> None:
    x = images((10, 28, 28), "uint8")
    y = np.arange(10)
    aug = fmnist.Augment(pad=2, erase=1.0)
    cases: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
        (x.reshape(10, -1), dict(augment=aug), ValueError, "augment needs images of shape (N, H, W) or (N, H, W, C)"),
        (x.reshape(10, 2, 14, 7, 4), dict(augment=aug), ValueError, "augment needs images of shape"),
        (x, dict(augment="crop"), TypeError, "augment must be an fmnist.Augment or None, not str"),
        (
            x[..., None].repeat(3, -1),
            dict(augment=fmnist.Augment(value=(1, 2))),
            ValueError,
            "value has 2 numbers but the images have 3 channels",
        ),
        (x, dict(augment=fmnist.Augment(erase=1, value=0.5)), ValueError, "Augment.value 0.5 is not a uint8 value"),
        (x, dict(augment=fmnist.Augment(erase=1, value=300)), ValueError, "Augment.value 300.0 is not a uint8 value"),
        (x, dict(augment=aug, seed=-1), ValueError, "with augment, seed must be an int in [0, 2**64), not -1"),
        (x, dict(augment=aug, epoch=2**32), ValueError, "with augment, epoch must be an int in [0, 2**32)"),
    ]
    for images_, kw, exc, message in cases:
        with pytest.raises(exc, match=re.escape(message)):
            fmnist.batches(images_, y, 4, **kw)
    # A value of the images' dtype is fine, and float32 batches erase with any number.
    assert next(iter(fmnist.batches(x, y, 4, augment=fmnist.Augment(erase=1, value=255))))[0].dtype == np.uint8
    xb = next(iter(fmnist.batches(x, y, 4, dtype="float32", augment=fmnist.Augment(erase=1, value=-0.5))))[0]
    assert (xb == -0.5).any()
    with pytest.raises(TypeError, match="indices must be a 1-d array of row numbers"):
        aug.draws(np.array([0.5]))
    with pytest.raises(ValueError, match="indices must be >= 0, not -3"):
        aug.draws(np.array([1, -3]))
    for shape in [(28,), (28, -1), (28.0, 28), "28x28"]:
        with pytest.raises(ValueError, match=re.escape("shape must be (height, width), two ints >= 0")):
            aug.draws([0], shape=shape)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        aug.pad = 3  # type: ignore[misc]  # frozen
