"""Bench harness: every contender is timed by pytest-benchmark in the same run; at the end a
table gives each median, its throughput and its ratio to the baselines, and the figures are
written to benches/results.json for `python benches/report.py`."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import find_real_data

RESULTS: dict[str, dict[str, Any]] = {}
OUT = Path(__file__).with_name("results.json")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_real_data()
    if found is None:
        pytest.fail("the real Fashion-MNIST files were not found (see tests/conftest.py)")
    return found


@pytest.fixture
def measure(benchmark: Any) -> Callable[..., Any]:
    """measure(group, name, fn, nbytes, baseline=...) times fn and records its median."""

    def run(group: str, name: str, fn: Callable[[], Any], nbytes: int, rounds: int = 15) -> Any:
        benchmark.group = group
        benchmark.name = name
        result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=2)
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
    tr = terminalreporter
    tr.section("fmnist comparison (medians; ratios are baseline time / contender time)")
    for group, rows in RESULTS.items():
        timed = {k: v for k, v in rows.items() if "median_s" in v}
        if not timed:
            for name, values in rows.items():
                tr.write_line(f"{group}: {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
            continue
        baselines = [b for b in ("reference", "mnist_reader idiom", "numpy idiom") if b in timed]
        tr.write_line("")
        tr.write_line(f"## {group}")
        head = f"{'contender':44} {'median ms':>10} {'MB/s':>8}" + "".join(f" {'vs ' + b:>22}" for b in baselines)
        tr.write_line(head)
        for name, v in sorted(timed.items(), key=lambda kv: kv[1]["median_s"]):
            mbs = v["nbytes"] / v["median_s"] / 1e6
            ratios = "".join(f" {timed[b]['median_s'] / v['median_s']:>21.2f}x" for b in baselines)
            tr.write_line(f"{name:44} {v['median_s'] * 1e3:>10.1f} {mbs:>8.0f}{ratios}")
    OUT.write_text(json.dumps({"machine": platform.platform(), "results": RESULTS}, indent=2) + "\n")
    tr.write_line(f"\nwritten to {OUT}")
