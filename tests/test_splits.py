"""Splits as tfds slices them (``fmnist.splits``), for ``load``, ``download``, fmnist.torch and the
command line; and validation splits without a copy (``split_indices``, ``batches(indices=)``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fmnist
from fmnist.splits import GRAMMAR, parse

from .resolving import _searchable


def rows(spec: str, n: int) -> tuple[int, int]:
    cut = parse(spec).rows(n)
    return cut.start, cut.stop


def test_percent_bounds_round_as_tfds_documents() -> None:
    # tfds.even_splits('train', n=3) == ['train[0%:33%]', 'train[33%:67%]', 'train[67%:100%]'],
    # on 60,000 rows; and the documented 999-row example of the closest rounding: [50%:52%] is
    # records 500 (included) to 519 (excluded), [52%:54%] 519 to 539.
    assert [rows(s, 60000) for s in ("train[0%:33%]", "train[33%:67%]", "train[67%:100%]")] == [
        (0, 19800),
        (19800, 40200),
        (40200, 60000),
    ]
    assert rows("train[:33%]", 60000) == (0, 19800) and rows("train[90%:]", 60000) == (54000, 60000)
    assert rows("train[50%:52%]", 999) == (500, 519) and rows("train[52%:54%]", 999) == (519, 539)
    assert rows("train[-5000:]", 60000) == (55000, 60000) and rows("train[:-10%]", 60000) == (0, 54000)
    assert rows("train[10%:20%]", 60000) == (6000, 12000) and rows("test[:1000]", 10000) == (0, 1000)
    assert rows("train[:33.5%]", 1000) == (0, 335)  # fractions of a percent, as tfds takes them


@given(st.integers(1, 200_000), st.integers(0, 100), st.integers(0, 100))
def test_percent_slices_tile_the_split(n: int, a: int, b: int) -> None:
    # Adjacent percent slices meet: each boundary is computed once, so nothing is lost or doubled.
    lo, hi = sorted((a, b))
    if round(lo * n / 100) < round(hi * n / 100):
        start, stop = rows(f"train[{lo}%:{hi}%]", n)
        assert (start, stop) == (int(round(lo * n / 100)), int(round(hi * n / 100)))


@pytest.mark.parametrize(
    "spec, why",
    [
        ("train[:90]x", "not a split spec"),
        ("train[5%:100]", "mixes rows and percents"),
        ("train[:200%]", "a percent bound is from -100% to 100%"),
        ("train[70000:]", "70000 is past the 60,000 rows"),
        ("train[50:10]", "cuts no row of the 60,000"),
        ("train[1.5:]", "a row bound is a whole number"),
        ("train[a:b]", "its bounds are not rows or percents"),
        ("train[:]", "its bounds are not rows or percents"),
        ("train[3]", "not a split spec"),
    ],
)
def test_a_bad_spec_is_a_value_error_quoting_it_and_the_grammar(
    env: Path, data_dir: Path, tmp_path: Path, spec: str, why: str
) -> None:
    _searchable(data_dir, tmp_path)
    with pytest.raises(ValueError) as e:
        fmnist.load(split=spec)
    assert f"split {spec!r}" in str(e.value) and why in str(e.value) and GRAMMAR in str(e.value), str(e.value)


def test_slices_are_views_of_the_verified_arrays_and_lists_give_a_pair_each(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    _searchable(data_dir, tmp_path)
    x, y = expected["train-images-idx3-ubyte.gz"], expected["train-labels-idx1-ubyte.gz"]
    (whole, _), (head, head_y), (tail, tail_y) = fmnist.load(split=["train", "train[:90%]", "train[90%:]"])
    assert np.array_equal(head, x[:54000]) and np.array_equal(tail_y, y[54000:]) and len(head_y) == 54000
    assert np.shares_memory(head, whole) and np.shares_memory(tail, whole)  # one array, views of it
    assert not head.flags.owndata and head.base is not None
    xt, yt = fmnist.load(split="test[:1000]")
    assert xt.shape == (1000, 28, 28) and np.array_equal(yt, expected["t10k-labels-idx1-ubyte.gz"][:1000])
    with pytest.raises(ValueError, match="split must be a split or a non-empty list"):
        fmnist.load(split=[])
    with pytest.raises(ValueError, match="split 'validation': fashion-mnist has the splits 'train' or 'test'"):
        fmnist.load(split=["train", "validation"])


def test_a_registry_slice_sliced_again() -> None:
    # QMNIST's test10k is a slice its registry names (rows 0 to 10,000 of its test split); a spec
    # slices that slice, and the class column is taken after.
    from fmnist.loaders import finish

    qm = fmnist.DATASETS["qmnist"]
    images = np.arange(60000, dtype=np.uint32).reshape(60000, 1, 1)
    labels = np.stack([np.arange(60000) % 10] + [np.arange(60000)] * 7, axis=1).astype(np.int32)
    x, y = finish(qm, "test10k[:10%]", images, labels, extended=False)
    assert x.shape == (1000, 1, 1) and x[-1, 0, 0] == 999 and np.array_equal(y, np.arange(1000) % 10)
    x, y = finish(qm, "test50k[-5:]", images, labels, extended=True)
    assert x[:, 0, 0].tolist() == list(range(59995, 60000)) and y.shape == (5, 8)


def test_download_takes_sliced_splits_and_fetches_their_files_whole(env: Path, server: Any) -> None:
    folder = fmnist.download(mirrors=[server.mirror("ok")], splits=["test[:10%]"])
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".gz")) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    with pytest.raises(ValueError, match=r"split 'val\[:10%\]': fashion-mnist has the splits 'train' or 'test'"):
        fmnist.download(mirrors=[server.mirror("ok")], splits=["val[:10%]"])


def test_split_indices_are_seeded_disjoint_and_stratified() -> None:
    labels = np.repeat(np.arange(10), [600, 500, 700, 650, 550, 600, 600, 620, 580, 600])
    n = len(labels)
    train, held = fmnist.split_indices(n, 0.1, seed=3, stratify=labels)
    assert len(held) == round(n * 0.1) and len(train) + len(held) == n
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(n))  # disjoint, whole
    assert train.dtype == held.dtype == np.int64 and np.all(np.diff(held) > 0)
    share = np.bincount(labels[held], minlength=10) / np.bincount(labels)
    assert np.all(np.abs(share - 0.1) <= 1 / 500)  # each class its share, up to one row
    again = fmnist.split_indices(n, 0.1, seed=3, stratify=labels)
    other = fmnist.split_indices(n, 0.1, seed=4, stratify=labels)
    assert np.array_equal(again[1], held) and not np.array_equal(other[1], held)
    plain = fmnist.split_indices(n, 0.25, seed=0)[1]
    assert len(plain) == round(n * 0.25)
    for bad, why in (
        ((n, 0.0), "fraction must leave rows"),
        ((n, 1.5), "fraction must leave rows"),
        ((1, 0.5), "n must"),
    ):
        with pytest.raises(ValueError, match=why):
            fmnist.split_indices(*bad)
    with pytest.raises(ValueError, match=r"stratify must be the 6000 rows' labels"):
        fmnist.split_indices(n, 0.1, stratify=labels[:10])


def test_batches_of_a_subset_are_the_subsets_rows_ordered_and_sharded_as_the_whole() -> None:
    x = np.arange(1000 * 6, dtype=np.uint8).reshape(1000, 6)
    y = np.arange(1000, dtype=np.int32)
    train, held = fmnist.split_indices(1000, 0.2, seed=1)
    got = np.concatenate([yb for _, yb in fmnist.batches(x, y, 64, seed=5, epoch=2, indices=held)])
    order = np.random.default_rng(5 + 2).permutation(len(held))
    assert np.array_equal(got, y[held[order]])  # the subset's positions ordered, each naming its row
    ranks = [
        np.concatenate([yb for _, yb in fmnist.batches(x, y, 50, indices=train, rank=r, world_size=3)])
        for r in range(3)
    ]  # 800 rows over 3 ranks: 267 each, the order padded from its start (DistributedSampler's rule)
    assert [len(r) for r in ranks] == [267] * 3 and set(np.concatenate(ranks)) == set(y[train])
    mask = np.zeros(1000, bool)
    mask[held] = True
    assert np.array_equal(
        np.concatenate([yb for _, yb in fmnist.batches(x, y, 64, shuffle=False, indices=mask)]), y[held]
    )
    # Augmentation draws follow the row: a row gets the same crop in the subset as in the whole.
    aug = fmnist.Augment(pad=2, hflip=0.5)
    img = np.arange(1000 * 8 * 8, dtype=np.uint8).reshape(1000, 8, 8)
    whole = {
        int(r): xb[i] for xb, yb in fmnist.batches(img, y, 100, shuffle=False, augment=aug) for i, r in enumerate(yb)
    }
    for xb, yb in fmnist.batches(img, y, 100, shuffle=False, augment=aug, indices=held):
        assert all(np.array_equal(xb[i], whole[int(r)]) for i, r in enumerate(yb))
    for bad, why in (([1000], "row 1000 is not one of the 1000 rows"), ([-1], "row -1"), ([[1]], "1-D array"),
                     ([0.5], "1-D array of row numbers"), (np.zeros(3, bool), "boolean mask")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            fmnist.batches(x, y, 8, indices=bad)


def test_a_bound_past_the_split_is_refused_before_anything_is_read(env: Path) -> None:
    # Nothing on the machine and no download: the bound is judged from the registry's shape,
    # so the error is the spec's, not "no copy found" after a search (or a download).
    for spec, why in [("train[70000:]", "70000 is past the 60,000 rows"), ("test[:-20000]", "past the 10,000")]:
        with pytest.raises(ValueError, match=re.escape(why)):  # not DatasetNotFoundError (an OSError)
            fmnist.load(split=spec, download=False)
    with pytest.raises(ValueError, match=re.escape("12000 is past the 10,000 rows of 'test10k'")):
        fmnist.load("qmnist", "test10k[12000:]", download=False)
