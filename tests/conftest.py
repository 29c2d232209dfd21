"""Shared fixtures: where the real Fashion-MNIST files are, and their published facts."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fmnist
from fmnist import datasets, reference
from fmnist.datasets import FASHION_MNIST, Dataset

from .httpserver import Server

# Every property runs at least 200 examples (the floor), with no per-example deadline:
# CI machines are noisy and a deadline would make timing, not behaviour, fail a test.
settings.register_profile("fmnist", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fmnist")

REPO = Path(__file__).resolve().parents[1]

# tests/test_torch.py and tests/test_augment_torch.py need torch and torchvision (the `torch`
# extra, several GB): without them they are not collected, and the header says so;
# FMNIST_REQUIRE_TORCH=1 (scripts/test's torch suite) makes their absence an error instead.
TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("torchvision") is not None
if not TORCH and os.environ.get("FMNIST_REQUIRE_TORCH") == "1":
    raise pytest.UsageError("FMNIST_REQUIRE_TORCH=1 but torch or torchvision is not installed")
# tests/test_benchmark.py needs the `benchmark` extra (scikit-learn, joblib, distributed) and
# headless Chromium for the report's page: without the extra it is not collected, and the header
# says so; FMNIST_REQUIRE_BENCHMARK=1 (scripts/test's py3.13 suite) makes its absence an error.
BENCHMARK = all(importlib.util.find_spec(m) is not None for m in ("sklearn", "joblib", "distributed"))
if not BENCHMARK and os.environ.get("FMNIST_REQUIRE_BENCHMARK") == "1":
    raise pytest.UsageError("FMNIST_REQUIRE_BENCHMARK=1 but scikit-learn, joblib or distributed is not installed")
# tests/test_embed.py likewise needs the `viz` extra and TensorBoard (FMNIST_REQUIRE_VIZ=1).
VIZ = all(importlib.util.find_spec(m) is not None for m in ("sklearn", "openTSNE", "umap", "matplotlib", "tensorboard"))
if not VIZ and os.environ.get("FMNIST_REQUIRE_VIZ") == "1":
    raise pytest.UsageError("FMNIST_REQUIRE_VIZ=1 but the viz extra or tensorboard is not installed")
# tests/test_keras.py needs the `keras` extra and torch, its backend there (FMNIST_REQUIRE_KERAS=1
# in scripts/test's torch suite).
KERAS = TORCH and importlib.util.find_spec("keras") is not None
if not KERAS and os.environ.get("FMNIST_REQUIRE_KERAS") == "1":
    raise pytest.UsageError("FMNIST_REQUIRE_KERAS=1 but keras (or torch, its backend here) is not installed")
collect_ignore = (
    ([] if TORCH else ["test_torch.py", "test_augment_torch.py"])
    + ([] if KERAS else ["test_keras.py"])
    + ([] if BENCHMARK else ["test_benchmark.py"])
    + ([] if VIZ else ["test_embed.py"])
)


def pytest_report_header() -> list[str]:
    lines = []
    if not TORCH:
        lines.append(
            "tests/test_torch.py, tests/test_augment_torch.py NOT COLLECTED: torch/torchvision are not installed "
            "(pip install -e '.[test,torch]')"
        )
    if not KERAS:
        lines.append(
            "tests/test_keras.py NOT COLLECTED: keras or torch is not installed (pip install -e '.[test,torch,keras]')"
        )
    if not BENCHMARK:
        lines.append(
            "tests/test_benchmark.py NOT COLLECTED: the benchmark extra is not installed "
            "(pip install -e '.[test,benchmark]')"
        )
    if not VIZ:
        lines.append(
            "tests/test_embed.py NOT COLLECTED: the viz extra or tensorboard is not installed "
            "(pip install -e '.[test,viz]' tensorboard)"
        )
    return lines


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root, and discovery limited to folders the test makes."""
    root = tmp_path / "root"
    monkeypatch.setenv("FMNIST_HOME", str(root))
    monkeypatch.setenv("FMNIST_SEARCH_PATH", str(tmp_path / "search"))
    monkeypatch.delenv("FMNIST_CACHE", raising=False)
    return root


@pytest.fixture
def registered() -> Iterator[None]:
    dataset_entries, archive_entries = dict(datasets.DATASETS), dict(datasets.ARCHIVES)
    yield
    datasets.DATASETS.clear()
    datasets.DATASETS.update(dataset_entries)
    datasets.ARCHIVES.clear()
    datasets.ARCHIVES.update(archive_entries)


#: For a child process's code: ``peak()``, its peak RSS in KiB (VmHWM: of its own address space;
#: ru_maxrss would carry the parent's peak across fork + exec).
PEAK = (
    "def peak():\n"
    "    with open('/proc/self/status') as f:\n"
    "        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
)

#: Tests that read Linux's /proc (thread counts, peak RSS, the overcommit policy).
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc, which only Linux has")


@pytest.fixture
def present(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """An environment for a subprocess: the real files findable through the search path (Debian's
    layout), an empty data root."""
    folder = tmp_path / "search" / "fashion-mnist"
    folder.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, folder / f)
    return {**os.environ, "FMNIST_HOME": str(tmp_path / "root"), "FMNIST_SEARCH_PATH": str(tmp_path / "search")}


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


def data_roots() -> list[Path]:
    """Where the tests' real data may be, first match wins: $FMNIST_TEST_DATA (a folder holding
    ``fashion-mnist/`` and ``qmnist/``, as ``fmnist download --root`` lays them out), the shared/
    data folder beside the repository, then Debian's packages (dataset-fashion-mnist)."""
    roots = [os.environ.get("FMNIST_TEST_DATA"), REPO.parent / "shared" / "data", "/usr/share/datasets"]
    return [Path(r) for r in roots if r]


def find_data(name: str, files: list[str]) -> Path | None:
    """The first ``<root>/<name>/`` of data_roots() holding every one of ``files``."""
    for root in data_roots():
        if all((root / name / f).is_file() for f in files):
            return root / name
    return None


def find_real_data() -> Path | None:
    """The folder holding the four real Fashion-MNIST files."""
    return find_data("fashion-mnist", FILES)


def _missing(what: str) -> str:
    looked = ", ".join(str(r) for r in data_roots())
    return (
        f"the real {what} files were not found (looked in: {looked}): set FMNIST_TEST_DATA to a folder "
        "holding fashion-mnist/ and qmnist/ (`fmnist download fashion-mnist --root DIR` and "
        "`fmnist download qmnist --root DIR` make one), put shared/ beside the repository, or "
        "apt-get install dataset-fashion-mnist"
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_real_data()
    if found is None:
        # Not a skip: the real-data tests are the ones that matter most.
        pytest.fail(_missing("Fashion-MNIST"))
    return found


QMNIST_LABELS = ["qmnist-train-labels-idx2-int.gz", "qmnist-test-labels-idx2-int.gz"]


@pytest.fixture(scope="session")
def qmnist_dir() -> Path:
    found = find_data("qmnist", QMNIST_LABELS)
    if found is None:
        pytest.fail(_missing("QMNIST label"))
    return found


#: The .gz MD5s the dataset's authors publish (the registry's; their README's).
PUBLISHED_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def stored_md5(path: Path) -> str:
    """MD5 of a file's bytes as stored."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def is_upstream(path: Path) -> bool:
    """Whether a real Fashion-MNIST .gz is in its upstream form (its bytes match the published
    MD5) rather than a recompressed copy such as Debian's (only its content matches)."""
    return stored_md5(path) == PUBLISHED_GZ_MD5[path.name]


def accepted_by(path: Path) -> str:
    """What proves a real Fashion-MNIST .gz, by its form: its stored MD5 (upstream's bytes) or its
    content SHA-256 (a recompressed copy), as provenance and judgments name it."""
    return "stored_md5" if is_upstream(path) else "content_sha256"


FLIPPED = "fashion-flipped"  # a second dataset for side-by-side tests: Fashion-MNIST's first examples, mirrored


@pytest.fixture
def data(tmp_path: Path, data_dir: Path, registered: None) -> Iterator[dict[str, str]]:
    """A data root, Fashion-MNIST found where a search path points, and the second dataset in a
    registry file: the environment for this process (set) and for subprocesses (returned)."""
    search = tmp_path / "search"
    search.mkdir()
    (search / "fashion-mnist").symlink_to(data_dir)
    home = tmp_path / "home"
    flipped = home / FLIPPED
    flipped.mkdir(parents=True)
    files = []
    for split, n in (("train", 2000), ("test", 1000)):
        stem = "train" if split == "train" else "t10k"
        images = fmnist.read_idx(data_dir / f"{stem}-images-idx3-ubyte.gz")[:n, :, ::-1]
        labels = fmnist.read_idx(data_dir / f"{stem}-labels-idx1-ubyte.gz")[:n]
        for kind, array in (("images", images), ("labels", labels)):
            name = f"{split}-{kind}.gz"
            fmnist.write_idx(flipped / name, np.ascontiguousarray(array), compress=True)
            blob = (flipped / name).read_bytes()
            files.append(
                f'[[dataset.files]]\nname = "{name}"\nsplit = "{split}"\nkind = "{kind}"\n'
                f"shape = {list(array.shape)}\nstored_size = {len(blob)}\n"
                f'stored_md5 = "{hashlib.md5(blob).hexdigest()}"\n'
            )
    registry = tmp_path / "flipped.toml"
    registry.write_text(
        f'[[dataset]]\nname = "{FLIPPED}"\ntitle = "Fashion-MNIST, mirrored"\nlicense = "MIT"\n'
        f"classes = {json.dumps(fmnist.DATASETS['fashion-mnist'].classes)}\n"
        'mirrors = ["http://127.0.0.1:9/"]\n\n' + "\n".join(files)
    )
    env = {"FMNIST_HOME": str(home), "FMNIST_SEARCH_PATH": str(search), "FMNIST_REGISTRY": str(registry)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fmnist.load_registry(registry)
    yield {**os.environ, **env}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for the servers tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the dataset layer's tests: the real files, another dataset's, a loopback server ----------


@pytest.fixture(scope="module")
def real(data_dir: Path) -> dict[str, bytes]:
    return {f: (data_dir / f).read_bytes() for f in FILES}


@pytest.fixture(scope="module")
def expected(data_dir: Path) -> dict[str, Any]:
    return {f: fmnist.read_idx(data_dir / f) for f in FILES}


@pytest.fixture(scope="module")
def wrong() -> dict[str, bytes]:
    # "Another dataset" under the right names: same shapes, other content (compressible enough
    # to pass the size cap, so verification is what rejects it).
    rng = np.random.default_rng(0)
    return {
        i.name: reference.write_idx(rng.integers(0, 4, i.shape, dtype=np.uint8), members=1, level=1)
        for i in FASHION_MNIST.files
    }


@pytest.fixture
def server(real: dict[str, bytes], wrong: dict[str, bytes]) -> Iterator[Server]:
    with Server(real, wrong=wrong, delay=2.0) as s:
        yield s


@pytest.fixture
def no_content(data_dir: Path) -> Dataset:
    """Fashion-MNIST as the registry would describe it with no content digest (as KMNIST is),
    with the .gz MD5s of the test data's copies (upstream's or a recompressed one) standing for
    the published ones."""
    return replace(
        FASHION_MNIST,
        name="no-content",
        files=tuple(
            replace(
                f, stored_md5=stored_md5(data_dir / f.name), stored_sha256=None, content_md5=None, content_sha256=None
            )
            for f in FASHION_MNIST.files
        ),
    )
