"""Bench harness: every contender is timed by pytest-benchmark in the same run; at the end a
table gives each median, its throughput and its ratio to the baselines, and the figures are
written to benches/results.json for `python benches/report.py`."""

from __future__ import annotations

import os
import sys

# No contender uses BLAS, but OpenBLAS starts a thread per core when numpy is imported and those
# threads spin for a while: on a 2-core machine that steals the second core from whichever
# contender uses it. One BLAS thread removes that noise for everyone (it must be set before
# numpy is first imported, which is why it is here).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gzip
import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from benches.report import table
from tests.conftest import find_real_data

RESULTS: dict[str, dict[str, Any]] = {}
OUT = Path(__file__).with_name("results.json")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_real_data()
    if found is None:
        pytest.fail("the real Fashion-MNIST files were not found (see tests/conftest.py)")
    return found


@pytest.fixture(scope="module")
def root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """torchvision's layout after its download: the .gz and decompressed files in raw/ (and
    fmnist's own data root, for its warm cache, beside it)."""
    base = tmp_path_factory.mktemp("tv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_HOME", str(tmp_path_factory.mktemp("fmnist-home")))
        mp.setenv("FMNIST_SEARCH_PATH", str(base / "nothing-else"))
        yield _torchvision_layout(data_dir, base)


def _torchvision_layout(data_dir: Path, base: Path) -> Path:
    raw = base / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in data_dir.glob("*-ubyte.gz"):
        (raw / f.name).write_bytes(f.read_bytes())
        (raw / f.name[: -len(".gz")]).write_bytes(gzip.decompress(f.read_bytes()))
    return base


@pytest.fixture
def measure(benchmark: Any) -> Callable[..., Any]:
    """measure(group, name, fn, nbytes, baseline=...) times fn and records its median."""

    def run(
        group: str,
        name: str,
        fn: Callable[..., Any],
        nbytes: int,
        rounds: int = 15,
        setup: Callable[[], Any] | None = None,
    ) -> Any:
        """``setup`` (untimed, before each round) returns ``(args, kwargs)`` for ``fn``."""
        benchmark.group = group
        benchmark.name = name
        result = benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0 if setup else 2)
        RESULTS.setdefault(group, {})[name] = {
            "median_s": benchmark.stats.stats.median,
            "nbytes": nbytes,
        }
        return result

    return run


def record(group: str, name: str, **values: Any) -> None:
    """Records a non-timing figure (memory) for the summary."""
    RESULTS.setdefault(group, {})[name] = values


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("fmnist comparison (medians; a ratio is the baseline's time over the contender's)")
    terminalreporter.write_line(table(RESULTS))
    versions = ", ".join(f"{m} {_version(m)}" for m in ("numpy", "torch", "torchvision") if _version(m))
    cores = os.cpu_count()
    machine = f"{platform.platform()}, {cores} cores, {_cpu()}"
    OUT.write_text(
        json.dumps({"machine": machine, "python": platform.python_version(), "versions": versions, "results": RESULTS})
        + "\n"
    )
    terminalreporter.write_line(f"written to {OUT}; `python benches/report.py --update` puts it in README.md and docs/")


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
