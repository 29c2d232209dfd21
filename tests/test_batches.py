"""fmnist.batches against a plain numpy model of the same semantics (DESIGN.md's order and
torch's DistributedSampler rule, written out as torch writes it), plus thread hygiene."""

from __future__ import annotations

import functools
import gc
import math
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmnist
from fmnist.pipeline import epoch_indices

from .conftest import linux_only


def sampler_model(
    n: int, shuffle: bool, seed: int, epoch: int, drop_last: bool, rank: int, world_size: int
) -> list[int]:
    """torch.utils.data.DistributedSampler.__iter__, with numpy's permutation for the shuffle."""
    indices = np.random.default_rng(seed + epoch).permutation(n).tolist() if shuffle else list(range(n))
    if drop_last and n % world_size != 0:
        num_samples = math.ceil((n - world_size) / world_size)
    else:
        num_samples = math.ceil(n / world_size)
    total_size = num_samples * world_size
    if not drop_last:
        padding_size = total_size - len(indices)
        if padding_size <= len(indices):
            indices += indices[:padding_size]
        elif indices:
            indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
    else:
        indices = indices[:total_size]
    return indices[rank:total_size:world_size]


def batches_model(
    images: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    batch_size: int,
    *,
    dtype: str | None,
    mean: Any,
    std: Any,
    flatten: bool,
    drop_last: bool,
    **order: Any,
) -> list[tuple[Any, Any]]:
    idx = sampler_model(len(images), drop_last=drop_last, **order)
    out = []
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        if drop_last and len(b) < batch_size:
            break
        x = images[b]
        if dtype == "float32":
            x = x.astype(np.float32)
            if images.dtype == np.uint8:
                x = x / np.float32(255)
            if mean is not None:
                x = x - np.asarray(mean, np.float32)
            if std is not None:
                x = x / np.asarray(std, np.float32)
        if flatten:
            x = x.reshape(len(b), -1)
        out.append((x, labels[b]))
    return out


order_args = st.fixed_dictionaries(
    {
        "shuffle": st.booleans(),
        "seed": st.integers(0, 2**32),
        "epoch": st.integers(0, 5),
        "drop_last": st.booleans(),
    }
).flatmap(
    lambda d: st.integers(1, 5).flatmap(
        lambda ws: st.integers(0, ws - 1).map(lambda r: {**d, "world_size": ws, "rank": r})
    )
)


@st.composite
def conversions(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(st.sampled_from(["uint8", "float32"]))
    stat = (
        st.none()
        | st.floats(0.0625, 2.0, width=32)
        | st.lists(st.floats(0.0625, 2.0, width=32), min_size=4, max_size=4)
    )
    return {
        "dtype": dtype,
        "mean": draw(stat) if dtype == "float32" else None,
        "std": draw(stat) if dtype == "float32" else None,
        "flatten": draw(st.booleans()),
    }


@given(st.integers(0, 300), st.integers(1, 64), order_args, conversions(), st.integers(0, 2**31))
@settings(max_examples=200, deadline=None)
def test_same_batches_as_the_model(
    n: int, batch_size: int, order: dict[str, Any], conv: dict[str, Any], data_seed: int
) -> None:
    rng = np.random.default_rng(data_seed)
    images = rng.integers(0, 256, (n, 3, 4), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64)  # a label is its row index: order is visible
    got = list(fmnist.batches(images, labels, batch_size, **order, **conv))
    want = batches_model(images, labels, batch_size, **order, **conv)
    assert [y.tolist() for _, y in got] == [y.tolist() for _, y in want]
    for (x, _), (wx, _) in zip(got, want):
        assert x.shape == wx.shape and x.dtype == wx.dtype
        if x.dtype == np.float32:
            np.testing.assert_array_max_ulp(x, wx, maxulp=1)
        else:
            assert np.array_equal(x, wx)


@given(st.integers(0, 200), order_args)
def test_epoch_indices_is_the_sampler(n: int, order: dict[str, Any]) -> None:
    assert epoch_indices(n, **order).tolist() == sampler_model(n, **order)


@pytest.mark.parametrize("n, world_size", [(60, 4), (61, 4), (3, 5), (0, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_cover_the_permutation(n: int, world_size: int, drop_last: bool) -> None:
    labels = np.arange(n)
    images = np.zeros((n, 2), np.uint8)
    shards = [
        np.concatenate(
            [
                y
                for _, y in fmnist.batches(
                    images, labels, 1, seed=3, epoch=1, rank=r, world_size=world_size, drop_last=drop_last
                )
            ]
            or [np.array([], np.int64)]
        )
        for r in range(world_size)
    ]
    assert len({len(s) for s in shards}) == 1  # every rank the same number of samples
    everything = np.concatenate(shards)
    perm = np.random.default_rng(4).permutation(n)
    if n % world_size == 0:
        assert sorted(everything.tolist()) == list(range(n))  # each index exactly once
    elif drop_last:
        assert sorted(everything.tolist()) == sorted(perm[: n // world_size * world_size].tolist())
    else:
        counts = np.bincount(everything, minlength=n)
        assert counts.min() >= 1 and len(everything) == -(-n // world_size) * world_size
        padded = everything.size - n
        assert sorted(np.repeat(np.arange(n), counts - 1).tolist()) == sorted(np.resize(perm, n + padded)[n:].tolist())


def test_real_training_set_float32(data_dir: Any) -> None:
    x = fmnist.read_idx(data_dir / "train-images-idx3-ubyte.gz")
    y = fmnist.read_idx(data_dir / "train-labels-idx1-ubyte.gz")
    perm = np.random.default_rng(7 + 2).permutation(len(x))
    got = list(fmnist.batches(x, y, 256, seed=7, epoch=2, dtype="float32", mean=0.2860, std=0.3530))
    assert len(got) == 235 and got[-1][0].shape == (60000 - 234 * 256, 28, 28)
    xs = np.concatenate([b for b, _ in got])
    want = (x[perm].astype(np.float32) / np.float32(255) - np.float32(0.2860)) / np.float32(0.3530)
    np.testing.assert_array_max_ulp(xs, want, maxulp=1)
    assert np.array_equal(np.concatenate([labels for _, labels in got]), y[perm])


def test_any_shape_and_dtype() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(-300, 300, (10, 2, 3, 4)).astype(np.int16)
    labels = rng.random((10, 3))
    ((x, y),) = fmnist.batches(images, labels, 16, shuffle=False, dtype="float32", mean=[1, 2, 3, 4], std=2)
    assert x.shape == (10, 2, 3, 4) and y.shape == (10, 3) and y.dtype == np.float64
    mean = np.array([1, 2, 3, 4], np.float32)
    np.testing.assert_array_max_ulp(x, (images.astype(np.float32) - mean) / np.float32(2), maxulp=1)
    ((x, _),) = fmnist.batches(images.astype(">f8"), labels, 16, shuffle=False, dtype=None, flatten=True)
    assert x.dtype == np.float64 and x.shape == (10, 24) and np.array_equal(x, images.reshape(10, -1))
    chw = rng.integers(0, 256, (5, 3, 2, 2), dtype=np.uint8)  # channels first: mean of shape (3, 1, 1)
    ((x, _),) = fmnist.batches(
        chw, np.zeros(5), 8, shuffle=False, dtype="float32", mean=np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1)
    )
    mean = np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)
    np.testing.assert_array_max_ulp(x, chw.astype(np.float32) / np.float32(255) - mean, maxulp=1)


def test_batches_are_fresh_writeable_arrays() -> None:
    images = np.arange(40, dtype=np.uint8).reshape(10, 4)
    got = list(fmnist.batches(images, np.arange(10), 3))
    for i, (x, y) in enumerate(got):
        assert x.flags.writeable and x.flags.c_contiguous and y.flags.writeable
        assert not np.shares_memory(x, images)
        for x2, _ in got[i + 1 :]:
            assert not np.shares_memory(x, x2)
    got[0][0][:] = 0
    assert images.sum() == sum(range(40))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"labels": np.zeros(9)}, ValueError, "images has 10 rows but labels has 9"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"world_size": 0}, ValueError, "world_size must be an int >= 1"),
        ({"world_size": 2, "rank": 2}, ValueError, r"rank must be an int in \[0, 2\)"),
        ({"rank": -1}, ValueError, "rank must be"),
        ({"dtype": "float16"}, ValueError, "dtype must be 'uint8', 'float32' or None"),
        ({"dtype": "int8"}, ValueError, "dtype must be"),
        ({"mean": 0.5}, ValueError, "pass dtype='float32'"),
        ({"dtype": "float32", "mean": [1, 2, 3]}, ValueError, "does not broadcast to one image of shape"),
        ({"images": np.zeros((10, 2), bool)}, TypeError, "integer or float dtype"),
        ({"images": np.zeros((10, 2), np.float64)}, ValueError, "dtype='uint8' needs uint8 images"),
        ({"images": np.float32(3)}, ValueError, "first axis"),
        ({"dtype": "float32", "mean": float("nan")}, ValueError, "mean must be finite; element 0 is NaN"),
        ({"dtype": "float32", "mean": [0, float("inf")]}, ValueError, "mean must be finite; element 1 is inf"),
        ({"dtype": "float32", "std": 0}, ValueError, "std must be finite and positive .* element 0 is 0"),
        ({"dtype": "float32", "std": [1, -1]}, ValueError, "std must be finite and positive .* element 1 is -1"),
        ({"dtype": "float32", "std": float("inf")}, ValueError, "std must be finite and positive"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0, not -1"),
        ({"epoch": 1.5}, ValueError, "epoch must be an int >= 0, not 1.5"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, message: str) -> None:
    args: dict[str, Any] = {"images": np.zeros((10, 2), np.uint8), "labels": np.zeros(10)} | kwargs
    with pytest.raises(error, match=message):
        fmnist.batches(**args)


def os_threads() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


@linux_only
def test_no_thread_outlives_its_iterator() -> None:
    images = np.zeros((5000, 28, 28), np.uint8)
    labels = np.zeros(5000, np.uint8)
    before = (threading.active_count(), os_threads())
    for _ in fmnist.batches(images, labels, 64):  # early break
        break
    it = fmnist.batches(images, labels, 64)
    next(it)
    del it  # dropped mid-epoch
    gc.collect()
    many = [fmnist.batches(images, labels, 32, seed=i) for i in range(12)]
    for it in many[::2]:
        next(it)
        next(it)
    assert os_threads() > before[1]  # the started ones are running
    many[0].close()
    with pytest.raises(StopIteration):
        next(many[0])
    del many, it
    gc.collect()
    assert (threading.active_count(), os_threads()) == before
    assert len(list(fmnist.batches(images, labels, 64))) == 79  # exhausted: thread gone too
    assert (threading.active_count(), os_threads()) == before


def test_len_counts_batches_left() -> None:
    it = fmnist.batches(np.zeros((10, 1), np.uint8), np.zeros(10), 4)
    assert len(it) == 3
    next(it)
    assert len(it) == 2


def _numpy_allocations(make: Any) -> int:
    """The peak of numpy's own allocations (tracemalloc traces them) while ``make()`` runs: a
    copy of the input would show here; the engine's batch buffers do not."""
    import tracemalloc

    tracemalloc.start()
    try:
        make()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_views_are_read_through_their_strides_never_copied() -> None:
    base = np.arange(20000 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(20000, 28, 28)
    labels = np.arange(20000)
    views = {
        "every other row": (base[::2], labels[::2]),
        "reversed": (base[::-1], labels[::-1]),
        "broadcast": (np.broadcast_to(base[7], (50000, 28, 28)), np.broadcast_to(labels[7:8], (50000,))),
    }
    for what, (x, y) in views.items():
        want = [(x[i : i + 4096], y[i : i + 4096]) for i in range(0, len(x), 4096)]
        got = list(fmnist.batches(x, y, 4096, shuffle=False))
        assert len(got) == len(want) and all(
            np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(got, want)
        ), what
        # Making the iterator and its first batch allocates nothing of numpy's in proportion to
        # the view (a copy of it would be 7.8 MB or more).
        assert _numpy_allocations(lambda x=x, y=y: next(fmnist.batches(x, y, 4096))) < 1 << 20, what
    # Rows that are not each contiguous are copied, and served the same.
    inner = base[:, :, ::2]
    (x, y), *_ = fmnist.batches(inner, labels, 3, shuffle=False)
    assert np.array_equal(x, inner[:3]) and y.tolist() == [0, 1, 2]


def test_a_broadcast_view_claiming_more_rows_than_memory_is_refused_from_its_shape() -> None:
    x = np.broadcast_to(np.zeros((1, 28, 28), np.uint8), (2**40, 28, 28))
    y = np.broadcast_to(np.zeros(1, np.uint8), (2**40,))

    def make() -> None:
        with pytest.raises(ValueError, match=r"1099511627776 rows: an epoch's order alone would need"):
            fmnist.batches(x, y, 256)

    assert _numpy_allocations(make) < 1 << 20


def test_a_world_far_larger_than_the_rows_allocates_nothing_in_proportion() -> None:
    x = np.arange(16 * 4, dtype=np.uint8).reshape(16, 2, 2)
    y = np.arange(16)
    for rank in (0, 15, 2**40 - 1):
        shard: list[Any] = []
        make = functools.partial(fmnist.batches, x, y, 4, shuffle=False, rank=rank, world_size=2**40)
        peak = _numpy_allocations(lambda make=make, shard=shard: shard.extend(make()))
        assert peak < 1 << 20
        # DistributedSampler's padding: rank r serves row r % 16.
        ((bx, by),) = shard
        assert by.tolist() == [rank % 16] and np.array_equal(bx[0], x[rank % 16])
    assert list(fmnist.batches(x, y, 4, rank=3, world_size=2**40, drop_last=True)) == []
