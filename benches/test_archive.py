"""Reading one split out of an archive (as EMNIST is published: IDX .gz files inside one zip):
fmnist reading the split's two members straight out of the zip into arrays, vs extracting the
archive with zipfile first (as torchvision does) and then reading the two files. The archive
here holds the real Fashion-MNIST files plus as much again of other members, under gzip/."""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import fmnist
from fmnist.datasets import FASHION_MNIST, Archive
from fmnist.resolve.judge import read_archive
from fmnist.resolve.results import Copy, Source
from tests.conftest import FILES
from tests.test_real_data import REAL

GROUP = "one split out of a zip archive (train: 2 members, 47 MB of content)"
SPLIT = [FASHION_MNIST.file("train", "images"), FASHION_MNIST.file("train", "labels")]
NBYTES = sum(REAL[i.name][1] for i in SPLIT)


@pytest.fixture(scope="module")
def archive(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zip") / "gzip.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for f in FILES:
            z.write(data_dir / f, "gzip/" + f)
            z.write(data_dir / f, "gzip/other-" + f)  # the other datasets' members
    return path


def extract_then_read(path: Path) -> list[Any]:
    with tempfile.TemporaryDirectory() as d:
        with zipfile.ZipFile(path) as z:
            z.extractall(d)
        return fmnist.read_idx_many([Path(d) / "gzip" / i.name for i in SPLIT])


def test_extract_with_zipfile(measure: Callable[..., Any], archive: Path) -> None:
    got = measure(
        GROUP, "zipfile.extractall, then read (torchvision's way)", lambda: extract_then_read(archive), NBYTES
    )
    assert got[0].shape == (60000, 28, 28)


def test_fmnist_read_members(measure: Callable[..., Any], archive: Path) -> None:
    # read_archive proves the archive by its MD5 over the very bytes it then opens, once.
    a = Archive("x", "gzip.zip", 1 << 30, stored_md5=hashlib.md5(archive.read_bytes()).hexdigest(), members="gzip/")
    name = "fmnist: the members out of the zip (its MD5 checked)"
    got = measure(GROUP, name, lambda: read_archive(Copy(archive, Source.FMNIST_ARCHIVE), a, SPLIT, {})[1:], NBYTES)
    assert all(j.ok for j in got) and np.array_equal(got[0].array, extract_then_read(archive)[0])
