"""The real Fashion-MNIST files: shapes, class balance, and every digest SOURCE.md publishes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fmnist
from fmnist import reference
from fmnist.datasets import FASHION_MNIST

from .conftest import FILES, PUBLISHED_GZ_MD5, REPO, is_upstream, stored_md5

# From ../shared/data/fashion-mnist/SOURCE.md (checked against it below when it is present):
# file -> (.gz MD5 of the Debian-recompressed copy, IDX bytes, IDX MD5, IDX SHA-256)
REAL = {
    "train-images-idx3-ubyte.gz": (
        "cf8536b0aa1a6ac5fa3f23001093305c",
        47040016,
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": (
        "10bea18fdb374794d4bb42e356e600c9",
        60008,
        "9018921c3c673c538a1fc5bad174d6f9",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "f78720b4224f21cce2f2ccf2d7a94c9a",
        7840016,
        "8181f5470baa50b63fa0f6fddb340f0a",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "0d30e22e447f3c33dab9ed536400ac01",
        10008,
        "15d484375f8d13e6eb1aabb0c3f46965",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
SHAPES = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}


def test_digest_table_matches_source_md(data_dir: Path) -> None:
    # SOURCE.md travels with the files (shared/data/fashion-mnist/); fmnist download writes none.
    found = [data_dir / "SOURCE.md", REPO.parent / "shared" / "data" / "fashion-mnist" / "SOURCE.md"]
    source_md = next((p for p in found if p.exists()), None)
    if source_md is None:
        pytest.skip("no SOURCE.md beside the test data or the repository (the constants above were copied from it)")
    text = source_md.read_text()
    for name, (gz_md5, size, md5, sha) in REAL.items():
        stem = name[: -len(".gz")]
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert [c.strip() for c in row.split("|")[3:7:3]] == [gz_md5, md5]
        assert f"| {size} |" in row
        assert re.search(rf"\| {re.escape(stem)} \| {sha} \|", text)


@pytest.mark.parametrize("name", FILES)
def test_content_digests_shapes_and_sizes(data_dir: Path, name: str) -> None:
    _, size, md5, sha = REAL[name]
    array = fmnist.read_idx(data_dir / name, content_md5=md5, content_sha256=sha)
    assert array.shape == SHAPES[name]
    assert array.dtype == np.uint8
    assert array.nbytes + 4 + 4 * array.ndim == size


def test_stored_digests(data_dir: Path) -> None:
    # Either form passes: upstream's bytes match the published MD5, a recompressed copy's (such
    # as Debian's, in shared/) match SOURCE.md's; the registry knows both by their content.
    published = {f.name: f.stored_md5 for f in FASHION_MNIST.files}
    assert published == PUBLISHED_GZ_MD5
    for name, (debian_md5, _, _, _) in REAL.items():
        actual = stored_md5(data_dir / name)
        assert actual in (debian_md5, published[name])
        fmnist.read_idx(data_dir / name, md5=actual)


@pytest.mark.parametrize("name", FILES)
def test_the_published_gz_md5_decides_the_form(data_dir: Path, name: str) -> None:
    path = data_dir / name
    _, _, md5, sha = REAL[name]
    if is_upstream(path):
        fmnist.read_idx(path, md5=PUBLISHED_GZ_MD5[name], content_sha256=sha)
    else:
        # SOURCE.md: Debian recompressed the archives, so the published .gz MD5 does not match;
        # the content's digests still do.
        with pytest.raises(fmnist.ChecksumError, match="MD5 mismatch over the stored"):
            fmnist.read_idx(path, md5=PUBLISHED_GZ_MD5[name])
        fmnist.read_idx(path, content_md5=md5, content_sha256=sha)


def test_shapes_and_class_balance(data_dir: Path) -> None:
    x_train, y_train, x_test, y_test = fmnist.read_idx_many([data_dir / f for f in FILES])
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.max() == 255 and x_train.min() == 0


def test_equal_to_the_reference(data_dir: Path) -> None:
    for name in FILES:
        ours = fmnist.read_idx(data_dir / name)
        ref = reference.read_idx(data_dir / name)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        assert np.array_equal(ours, ref)


def test_result_is_native_writeable_and_owned(data_dir: Path) -> None:
    import importlib

    # numpy.core became numpy._core in numpy 2 (the old name is deprecated there).
    core = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
    get_handler_name = importlib.import_module(core + ".multiarray").get_handler_name

    a = fmnist.read_idx(data_dir / "t10k-labels-idx1-ubyte.gz")
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert a.dtype.isnative
    # It owns its memory: no base, OWNDATA, allocated (and freed) by numpy's own allocator.
    assert a.base is None and a.flags.owndata and get_handler_name(a) == get_handler_name(np.empty(3))
    a[:] = 0
    assert fmnist.read_idx(data_dir / "t10k-labels-idx1-ubyte.gz").any()
    a.resize(20000, refcheck=False)  # numpy reallocates through the same handler
    assert a.shape == (20000,) and not a[:10000].any()


def test_many_matches_one_by_one_with_digests(data_dir: Path) -> None:
    paths = [data_dir / f for f in FILES]
    many = fmnist.read_idx_many(
        paths, content_md5=[REAL[f][2] for f in FILES], content_sha256=[REAL[f][3] for f in FILES]
    )
    for path, a in zip(paths, many):
        assert np.array_equal(a, fmnist.read_idx(path))
    bad = [REAL[f][2] for f in FILES]
    bad[2] = "0" * 32
    with pytest.raises(fmnist.ChecksumError, match="t10k-images"):
        fmnist.read_idx_many(paths, content_md5=bad)


def test_decompressed_and_in_memory_sources(data_dir: Path, tmp_path: Path) -> None:
    import gzip

    raw = gzip.decompress((data_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw)
    from_file = fmnist.read_idx(str(tmp_path / "t10k-images-idx3-ubyte"), md5=REAL["t10k-images-idx3-ubyte.gz"][2])
    from_bytes = fmnist.read_idx(raw, content_sha256=REAL["t10k-images-idx3-ubyte.gz"][3])
    from_view = fmnist.read_idx(memoryview(bytearray(raw)))
    assert np.array_equal(from_file, from_bytes) and np.array_equal(from_file, from_view)
