"""What proves a copy (``fmnist.resolve.judge``): published stored digests, content digests (a
recompressed copy), digests proven on this machine, the registry's shapes; what is turned down,
and why."""

from __future__ import annotations

import gzip
import lzma
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import reference
from fmnist.datasets import DATASETS, FASHION_MNIST, Dataset
from fmnist.resolve import Audit
from fmnist.resolve.store import identity

from .conftest import FILES, link
from .resolving import _decompressed, final_files, found
from .test_real_data import REAL


def test_recompressed_copy_is_accepted_by_its_content_digest(env: Path, data_dir: Path, tmp_path: Path) -> None:
    debian = tmp_path / "search" / "fashion-mnist"  # Debian's layout: /usr/share/datasets/fashion-mnist/
    debian.mkdir(parents=True)
    for f in FILES:  # recompressed here, as Debian did (whatever form the test data has)
        (debian / f).write_bytes(gzip.compress(gzip.decompress((data_dir / f).read_bytes()), 6, mtime=0))
    _, result = found(FASHION_MNIST, cache=False)
    for f in FILES:
        p = result.files[f]
        # The published .gz MD5 does not match these bytes; the content SHA-256 does, and says so.
        assert p.proof == "content_sha256"
        assert p.path == debian / f and p.source == "fmnist" and not p.mapped


def test_another_datasets_bytes_are_rejected(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "search" / "fashion-mnist"
    folder.mkdir(parents=True)
    other = np.random.default_rng(1).integers(0, 10, 10000, dtype=np.uint8)  # MNIST-like labels
    fmnist.write_idx(folder / "t10k-labels-idx1-ubyte.gz", other, compress=True)
    with pytest.raises(fmnist.DatasetNotFoundError) as e:
        fmnist.load(split="test", download=False)
    message = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    content_sha = REAL["t10k-labels-idx1-ubyte.gz"][3]
    assert f"SHA-256 mismatch over the decompressed IDX content: expected {content_sha} (the known content" in message
    assert "MD5 mismatch over the stored (gzip-compressed) bytes: expected bb300cfdad3c16e7a12a480ee83cd310" in message


def test_nothing_found_and_download_off(env: Path) -> None:
    with pytest.raises(fmnist.DatasetNotFoundError, match="no verified copy of 2 file.*download=False"):
        fmnist.load(split="test", download=False)


def test_a_decompressed_copy_is_proven_by_a_verified_gz(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], no_content: Dataset
) -> None:
    raw = tmp_path / "search" / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    # Alone, a decompressed copy cannot be judged: no published digest covers it.
    with pytest.raises(fmnist.DatasetNotFoundError, match="no verified published form of it proves its content"):
        found(no_content, [no_content.file("test", "labels")], cache=False)
    # Beside the .gz it came from (published MD5), it is proven equal.
    for f in FILES:
        link(data_dir / f, raw / f)
    policy = {"audit": Audit(every_copy=True), "cache": False}  # (as `fmnist verify` judges them)
    arrays, result = found(no_content, **policy)
    for f, a in zip(FILES, arrays):
        assert np.array_equal(a, expected[f])
        judged = {j.path.name: j for j in result.judgments if j.info.name == f}
        assert judged[f].ok and judged[f[:-3]].ok
        # Proven by the verified .gz beside it: the judgment names it.
        assert judged[f[:-3]].proof == "proven" and str(raw / f) in judged[f[:-3]].message
    # With the cache on, the proof is recorded (under fmnist's root): the decompressed copy alone
    # is then accepted, by the content the verified .gz had.
    found(no_content)
    for f in FILES:
        (raw / f).unlink()
    _, result = found(no_content, cache=True, audit=Audit(every_copy=True))
    judged = {j.path.name: j for j in result.judgments if j.ok and j.source == "torchvision"}
    records = str(env / "no-content" / ".fmnist-cache.json")
    assert all(judged[f[:-3]].proof == "proven" and records in judged[f[:-3]].message for f in FILES), judged


def test_decompressed_copies_of_the_wrong_size_or_form_are_turned_down(
    env: Path, data_dir: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "search" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    content = gzip.decompress((data_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(content[:-1])
    # Turned down from stat, before a byte is read: the decompressed file has one length only.
    with pytest.raises(
        fmnist.DatasetNotFoundError, match="t10k-labels-idx1-ubyte .torchvision.: 10,007 bytes, not the 10,008"
    ):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], cache=False)
    # gzip data (its header comment padding it to the decompressed size) under the decompressed
    # file's name: its content is right, its form is not.
    bare = len(reference.gzip_member(content, comment=b""))
    packed = reference.gzip_member(content, comment=b"x" * (len(content) - bare))
    assert len(packed) == len(content)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(packed)
    with pytest.raises(fmnist.DatasetNotFoundError, match="gzip data under a decompressed file's name"):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], cache=False)


def test_qmnist_in_the_registry_verifies_the_real_label_files(env: Path, tmp_path: Path, qmnist_dir: Path) -> None:
    qm = DATASETS["qmnist"]
    assert qm.splits == ("train", "test", "nist") and set(qm.slices) == {"test10k", "test50k"}
    assert qm.label_columns[0] == "class" and len(qm.label_columns) == 8
    raw = tmp_path / "search" / "QMNIST" / "raw"  # torchvision's layout
    raw.mkdir(parents=True)
    labels = [qm.file("train", "labels"), qm.file("test", "labels")]
    for info in labels:
        link(qmnist_dir / info.name, raw / info.name)
    (train, test), result = found(qm, labels)
    assert train.shape == test.shape == (60000, 8) and train.dtype == np.int32
    assert train[0].tolist() == [5, 4, 2154, 59, 35, 229421, 0, 0]
    assert result.files[labels[0].name].proof == "stored_md5"
    assert not (env / "qmnist").exists() or final_files(env / "qmnist") == []  # int32: not cached
    # The same content as .xz (how the nist split is published): verified by its content digest.
    (raw / labels[0].name).unlink()
    (raw / "qmnist-train-labels-idx2-int.xz").write_bytes(
        lzma.compress(gzip.decompress((qmnist_dir / labels[0].name).read_bytes()))
    )
    xz_info = replace(labels[0], name="qmnist-train-labels-idx2-int.xz", stored_md5=None, stored_size=None)
    ((again,), _) = found(qm, [xz_info])
    assert np.array_equal(again, train)
    # A correct decompressed int32 copy (torchvision's) is verified, read (byteswapped), and left alone.
    (raw / labels[0].stem).write_bytes(gzip.decompress((qmnist_dir / labels[0].name).read_bytes()))
    before = (raw / labels[0].stem).stat()
    ((again,), result) = found(qm, [labels[0]])  # its .gz is gone: the decompressed copy is what is left
    assert np.array_equal(again, train) and result.files[labels[0].name].path == raw / labels[0].stem
    assert identity((raw / labels[0].stem).stat()) == identity(before)


def test_a_decompressed_copy_elsewhere_is_read_not_mapped_and_checked_on_every_load(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    tv_root = tmp_path / "tv"
    raw = tv_root / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    before = {p.name: p.stat().st_mode for p in raw.iterdir()}
    for _ in ("first", "again"):
        arrays, result = found(FASHION_MNIST, root=tv_root, cache=False)
        for f, a in zip(FILES, arrays):
            p = result.files[f]
            assert np.array_equal(a, expected[f]) and a.flags.writeable and a.flags.owndata
            assert p.path == raw / f[:-3] and p.source == "torchvision" and not p.mapped
    # Nothing written beside another loader's files, nothing of its changed.
    assert {p.name: p.stat().st_mode for p in raw.iterdir()} == before
    assert sorted(p.name for p in tv_root.iterdir()) == ["FashionMNIST"]
    # Rewritten in place with its mtime put back: the next load hashes it again and turns it down.
    target = raw / "t10k-labels-idx1-ubyte"
    st = target.stat()
    target.write_bytes(target.read_bytes()[:-1] + b"\x07")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(fmnist.DatasetNotFoundError, match="t10k-labels-idx1-ubyte.*SHA-256 mismatch over"):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], root=tv_root)
    assert target.exists()  # not deleted: it is not fmnist's
