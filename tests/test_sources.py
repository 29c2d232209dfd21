"""Where copies are found (``fmnist.resolve.sources``): the layouts of other loaders (torchvision,
keras, Debian, a clone of the dataset's repository), keras's .npz, zip archives, and where the
pipeline says it looked."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.datasets import DATASETS, FASHION_MNIST, Dataset
from fmnist.resolve import Audit

from .conftest import FILES, link
from .httpserver import Server
from .resolving import _archive, _archive_of, final_files, found


@pytest.mark.parametrize(
    "layout, folder, decompressed",
    [
        ("torchvision", "FashionMNIST/raw", False),
        ("torchvision", "FashionMNIST/raw", True),
        ("dataset repository", "data/fashion", False),
        ("fmnist", "fashion-mnist", True),
    ],
)
def test_discovery_of_each_layout(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], layout: str, folder: str, decompressed: bool
) -> None:
    where = tmp_path / "search" / folder
    where.mkdir(parents=True)
    for f in FILES:
        if decompressed:
            (where / f[:-3]).write_bytes(gzip.decompress((data_dir / f).read_bytes()))
        else:
            link(data_dir / f, where / f)
    arrays, result = found(FASHION_MNIST, cache=False)
    for f, a in zip(FILES, arrays):
        assert np.array_equal(a, expected[f])
        p = result.files[f]
        assert p.source == layout and p.path.parent == where
        assert p.path.name == (f[:-3] if decompressed else f)
        assert not p.mapped and a.flags.owndata  # another loader's copy: read into memory, never mapped
    assert not (env / "fashion-mnist").exists() or final_files(env / "fashion-mnist") == []


@pytest.mark.parametrize(
    "folder, layout",
    [
        ("data/fashion-mnist", "fmnist"),
        ("fashion-mnist", "fmnist"),
        ("data/FashionMNIST/raw", "torchvision"),
        ("FashionMNIST/raw", "torchvision"),
        ("data/fashion", "dataset repository"),  # the working folder is a clone of the dataset's repository
        ("debian/fashion-mnist", "Debian"),  # /usr/share/datasets/ stands at debian/
    ],
)
def test_discovery_without_a_search_path_looks_where_the_readme_says(
    env: Path,
    data_dir: Path,
    tmp_path: Path,
    expected: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    folder: str,
    layout: str,
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("fmnist.resolve.sources.folders.DEBIAN", work / "debian")
    where = work / folder
    where.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, where / f)
    arrays, result = found(FASHION_MNIST, cache=False)
    assert all(np.array_equal(a, expected[f]) for f, a in zip(FILES, arrays))
    assert {(r.source, r.path.parent.resolve()) for r in result.files.values()} == {(layout, where)}


def test_torchvision_root_given_as_root(env: Path, data_dir: Path, tmp_path: Path) -> None:
    tv_root = tmp_path / "data"
    raw = tv_root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, raw / f)
    (x, y), (xt, yt) = fmnist.load_data(root=tv_root, download=False, cache=False)
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,)


def test_keras_files_are_found_by_kerass_own_rules(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.chdir(tmp_path)  # nothing under ./data or . to find
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    where = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    where.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, where / f)
    _, result = found(FASHION_MNIST, cache=False)
    assert {(r.source, r.path.parent) for r in result.files.values()} == {("keras", where)}


def test_kerass_npz_form_is_verified_by_its_published_sha256(
    env: Path, tmp_path: Path, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_content: Dataset
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    npz = tmp_path / "keras-home" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    x_test, y_test = expected["t10k-images-idx3-ubyte.gz"], expected["t10k-labels-idx1-ubyte.gz"]
    np.savez_compressed(npz, x_train=x_test[:0], y_train=y_test[:0], x_test=x_test, y_test=y_test)
    # The real MNIST's mnist.npz is not here: keras's form of Fashion-MNIST's test split, with its
    # own SHA-256 in the registry entry, stands in for it. MNIST's entry names keras's digest.
    assert DATASETS["mnist"].keras_npz_sha256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    ds = replace(no_content, keras_npz="mnist.npz", keras_npz_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    (x, y), result = found(ds, [ds.file("test", "images"), ds.file("test", "labels")])
    assert np.array_equal(x, x_test) and np.array_equal(y, y_test)
    p = result.files["t10k-images-idx3-ubyte.gz"]
    assert p.source == "keras .npz" and p.path == npz and p.proof == "keras_npz_sha256" and p.member == "x_test"
    # Cached like any verified file: the next load is warm, its stamp counting while keras's
    # digest that proved the content is the registry's.
    (y2,), again = found(ds, [ds.file("test", "labels")])
    warm = again.files["t10k-labels-idx1-ubyte.gz"]
    assert warm.source == "fmnist warm cache" and warm.proof == "stamp" and not y2.flags.owndata
    with pytest.raises(
        fmnist.DatasetNotFoundError, match=r"mnist.npz \(keras .npz\): SHA-256 mismatch over the file's bytes"
    ):
        fmnist.load("mnist", split="test", download=False)


def test_looked_in_lists_only_layouts_that_apply(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(fmnist.DatasetNotFoundError) as e:
        fmnist.load(split="test", download=False)
    looked = [p.rsplit(" (", 1)[0] for p in str(e.value).split("looked in: ")[1].split(", ")]
    assert str(tmp_path / "kh" / "datasets" / "fashion-mnist") in looked  # keras's, by KERAS_HOME
    assert os.path.join("data", "FashionMNIST", "raw") in looked and os.path.join("data", "fashion") in looked
    for impossible in (os.path.join("data", "data", "fashion"), os.path.join(".keras", "datasets", "data")):
        assert not any(impossible in p for p in looked), looked
    from fmnist.resolve.sources.folders import folders as layouts

    folders = {layout for _, layout in layouts(DATASETS["mnist"], env)}
    assert folders == {"fmnist", "torchvision"}  # keras's MNIST is one file, mnist.npz; no Debian package


def test_an_archive_downloads_once_resumes_and_serves_every_dataset_in_it(
    env: Path, tmp_path: Path, registered: None
) -> None:
    blob, arrays, entries = _archive(tmp_path)
    with Server({"tiny.zip": blob}) as server:
        archive = replace(_archive_of(entries[0]), mirrors=(server.mirror("drop"),))
        for ds in entries:
            fmnist.register(replace(ds, archive=archive))
        x, y = fmnist.load("tiny-a", "train")  # the connection drops mid-body: resumed
        assert np.array_equal(x, arrays["tiny-a-train-images-idx3-ubyte.gz"])
        assert np.array_equal(y, arrays["tiny-a-train-labels-idx1-ubyte.gz"])
        (xb, _), (xt, yt) = fmnist.load_data("tiny-b")  # the same archive: no second download
        assert server.hits[("drop", "tiny.zip")] == 2 and len(server.ranges) == 1
    assert np.array_equal(yt, arrays["tiny-b-test-labels-idx1-ubyte.gz"])
    assert (env / "tiny-emnist" / "tiny.zip").read_bytes() == blob
    assert not list((env / "tiny-emnist").glob("*.partial"))
    # Stored transposed (as EMNIST is, and as torchvision returns it); upright on request.
    up, _ = fmnist.load("tiny-a", "train", upright=True)
    assert np.array_equal(up, x.transpose(0, 2, 1)) and up.flags.c_contiguous
    # Warm: the members were cached (mapped), the archive is not read again.
    (env / "tiny-emnist" / "tiny.zip").unlink()
    assert not fmnist.load("tiny-a", "train")[0].flags.owndata


def test_a_wrong_archive_is_rejected_and_torchvisions_copy_is_found(
    env: Path, tmp_path: Path, registered: None
) -> None:
    blob, arrays, entries = _archive(tmp_path)
    for ds in entries:
        fmnist.register(ds)
    tv = tmp_path / "search" / "TinyEMNIST" / "raw"
    tv.mkdir(parents=True)
    (tv / "tiny.zip").write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    with pytest.raises(
        fmnist.DatasetNotFoundError,
        match=r"MD5 mismatch over the file's bytes \(uncompressed: stored = content\): "
        r"expected [0-9a-f]+ \(the published archive MD5\)",
    ):
        fmnist.load("tiny-b", "test", download=False)
    (tv / "tiny.zip").write_bytes(blob)
    (x, _), result = found(entries[1], [entries[1].file("test", "images"), entries[1].file("test", "labels")])
    assert np.array_equal(x, arrays["tiny-b-test-images-idx3-ubyte.gz"])
    p = result.files["tiny-b-test-images-idx3-ubyte.gz"]
    assert p.source == "torchvision archive" and p.proof == "archive"
    assert p.path == tv / "tiny.zip" and p.member == "gzip/tiny-b-test-images-idx3-ubyte.gz"


def test_an_archive_dataset_in_download_info_and_verify(env: Path, tmp_path: Path, registered: None) -> None:
    blob, arrays, entries = _archive(tmp_path)
    with Server({"tiny.zip": blob}) as server:
        archive = replace(_archive_of(entries[0]), mirrors=(server.mirror("ok"),))
        for ds in entries:
            fmnist.register(replace(ds, archive=archive))
        assert fmnist.download("tiny-b") == env / "tiny-emnist"  # the archive, not its members
        assert fmnist.download("tiny-a") == env / "tiny-emnist" and server.hits[("ok", "tiny.zip")] == 1
    ds = DATASETS["tiny-a"]
    (_, _, _, y), _ = found(ds, cache=False)  # discovery reads the archive
    assert np.array_equal(y, arrays["tiny-a-test-labels-idx1-ubyte.gz"])
    _, result = found(ds, [ds.file("train", "images")], audit=Audit(every_copy=True), cache=False)  # as verify
    assert [(j.path, j.source, j.member, j.ok) for j in result.judgments] == [
        (env / "tiny-emnist" / "tiny.zip", "fmnist archive", "gzip/tiny-a-train-images-idx3-ubyte.gz", True)
    ]


def test_an_archive_without_a_member_says_which(env: Path, tmp_path: Path, registered: None) -> None:
    blob, _, entries = _archive(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("tiny-a-test-labels-idx1-ubyte.gz"):
                dst.writestr(item, src.read(item))
    short = buf.getvalue()
    archive = entries[0].archive
    assert archive is not None
    ds = replace(entries[0], archive=replace(archive, name="tiny-short", stored_md5=hashlib.md5(short).hexdigest()))
    fmnist.register(ds)
    (env / "tiny-short").mkdir(parents=True)
    (env / "tiny-short" / "tiny.zip").write_bytes(short)
    with pytest.raises(
        fmnist.DatasetNotFoundError, match="no member gzip/tiny-a-test-labels-idx1-ubyte.gz in the archive"
    ):
        fmnist.load("tiny-a", "test", download=False)
