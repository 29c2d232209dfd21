"""Shared fixtures: where the real Fashion-MNIST files are, and their published facts."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Every property runs at least 200 examples (the floor), with no per-example deadline:
# CI machines are noisy and a deadline would make timing, not behaviour, fail a test.
settings.register_profile("fmnist", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fmnist")

REPO = Path(__file__).resolve().parents[1]

#: Tests that read Linux's /proc (thread counts, peak RSS, the overcommit policy).
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc, which only Linux has")


def link(target: Path, at: Path) -> None:
    """``at`` becomes a symlink to ``target``, or a copy where the OS will not make one (Windows
    without the symlink privilege)."""
    try:
        at.symlink_to(target)
    except OSError:
        shutil.copyfile(target, at)


FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def find_real_data() -> Path | None:
    """The folder holding the four real files: $FMNIST_TEST_DATA, the shared/ folder beside the
    repository (as CI lays it out), or Debian's dataset-fashion-mnist package."""
    candidates = [
        os.environ.get("FMNIST_TEST_DATA"),
        REPO.parent / "shared" / "data" / "fashion-mnist",
        "/usr/share/datasets/fashion-mnist",
    ]
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in FILES):
            return Path(c)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_real_data()
    if found is None:
        # Not a skip: the real-data tests are the ones that matter most.
        pytest.fail(
            "the real Fashion-MNIST files were not found: set FMNIST_TEST_DATA, put shared/ beside "
            "the repository, or apt-get install dataset-fashion-mnist"
        )
    return found
