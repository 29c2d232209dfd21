"""The dataset's own benchmark (zalandoresearch/fashion-mnist ``benchmark/``): its 14 scikit-learn
classifiers over 143 configurations, by its protocol, side by side on Fashion-MNIST and any
registered dataset, resumable, here or on a Dask cluster (``pip install 'fmnist[benchmark]'``).

    from fmnist import benchmark
    jobs = benchmark.plan(["fashion-mnist"], benchmark.configurations(["GaussianNB"]), "results.jsonl")
    benchmark.run(jobs, "results.jsonl", workers=2)           # or scheduler="tcp://127.0.0.1:8786"
    page = benchmark.report.html(benchmark.report.latest("results.jsonl"))

The command line: ``fmnist benchmark run`` and ``fmnist benchmark report`` (docs/benchmark.md).
"""

from __future__ import annotations

from . import report
from .grid import Configuration, classifiers, configurations, published_for
from .runner import Data, Job, plan, prepare, read_results, run, select

__all__ = [
    "Configuration",
    "Data",
    "Job",
    "classifiers",
    "configurations",
    "plan",
    "prepare",
    "published_for",
    "read_results",
    "report",
    "run",
    "select",
]
