"""``fmnist benchmark run`` and ``fmnist benchmark report``: the command line's half of
``fmnist.benchmark``. Its arguments parse without scikit-learn; running needs the extra."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable

EXTRA = "fmnist benchmark needs scikit-learn, joblib and dask's distributed: pip install 'fmnist[benchmark]'"
RESULTS = "fmnist-benchmark.jsonl"
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$")


def _size(text: str) -> int:
    """Bytes from "2G", "1.5GiB", "800M", "1000000"."""
    m = _SIZE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"must be a size such as 2G, 800M or a number of bytes, not {text!r}")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index((m.group(2) or "_").lower()))


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1, not {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32 - 1000:  # the repeats' seeds are seed + j, numpy's range
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {2**32 - 1001}, not {text!r}")
    return value


def names(kind: Callable[[str], str]) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each checked by ``kind``."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise argparse.ArgumentTypeError("expected one or more names, separated by commas")
        return [kind(n) for n in names]

    return parse


def _classifier(name: str) -> str:
    from .grid import classifiers

    known = classifiers()
    by_lower = {k.lower(): k for k in known}
    if name.lower() not in by_lower:
        raise argparse.ArgumentTypeError(f"unknown classifier {name!r}: the seed's grid has {', '.join(known)}")
    return by_lower[name.lower()]


def add_commands(sub: Any, dataset: Callable[[str], str]) -> None:
    """Adds ``benchmark run|report`` to the ``fmnist`` parser's subcommands."""
    bench = sub.add_parser(
        "benchmark",
        help="the dataset's own scikit-learn benchmark: run its grid, report the results",
        description="The seed's benchmark (zalandoresearch/fashion-mnist benchmark/): 14 scikit-learn "
        "classifiers over 143 configurations, side by side on several datasets. Needs fmnist[benchmark].",
    )
    bench_sub = bench.add_subparsers(dest="benchmark_command", required=True, metavar="COMMAND")
    p = bench_sub.add_parser(
        "run",
        help="run what the results file does not hold yet (resumes)",
        description="Runs each pending (dataset, configuration) by the seed's protocol and appends its "
        "record to the results file as it ends; a second run resumes where the first stopped.",
    )
    p.add_argument(
        "--datasets",
        type=names(dataset),
        default=["fashion-mnist", "mnist"],
        help="registered datasets, comma-separated (default: fashion-mnist,mnist)",
    )
    p.add_argument("--classifiers", type=names(_classifier), help="classifier names, comma-separated (default: all)")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep only configurations with this parameter value, where they have the parameter "
        "(repeatable; e.g. --where n_estimators=10)",
    )
    p.add_argument("--subset", type=_count, help="a stratified subset of N examples of each split (default: all)")
    p.add_argument("--repeats", type=_count, default=2, help="repeats on reshuffled data (default 2, as the seed)")
    p.add_argument("--seed", type=_seed, default=0, help="the first repeat's shuffle seed (default 0)")
    p.add_argument("--jobs", type=_count, default=os.cpu_count() or 1, help="jobs at once here (default: cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask cluster (tcp://host:port) instead")
    p.add_argument("--results", type=Path, default=Path(RESULTS), help=f"JSON lines file (default: {RESULTS})")
    p.add_argument("--timeout", type=_timeout, help="seconds a job may take; past them it is killed and recorded")
    p.add_argument(
        "--memory-limit", type=_size, metavar="SIZE", help="memory a job may allocate (e.g. 4G); past it, recorded"
    )
    p.add_argument("--dry-run", action="store_true", help="list the pending jobs, run nothing")
    p.add_argument("--root", help="data root (default: $FMNIST_HOME, else the platform's cache folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_run)
    p = bench_sub.add_parser(
        "report",
        help="the results as a page, a markdown table and a chart",
        description="Reads a results file; with no option prints the side-by-side markdown table.",
    )
    p.add_argument("results", type=Path, help="the JSON lines file of 'fmnist benchmark run'")
    p.add_argument("--html", type=Path, metavar="OUT", help="write a self-contained, sortable HTML page")
    p.add_argument("--markdown", action="store_true", help="print the side-by-side table as markdown")
    p.add_argument("--chart", type=Path, metavar="OUT", help="write an SVG chart of each classifier's best")
    p.set_defaults(run=cmd_report)


def _extra() -> None:
    try:
        import distributed  # noqa: F401
        import joblib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{EXTRA} ({e})") from None


def cmd_run(args: argparse.Namespace) -> int:
    _extra()
    from .grid import configurations
    from .runner import plan, run, select

    configs = select(configurations(args.classifiers), args.where)
    if not configs:
        print("fmnist benchmark run: no configuration matches --classifiers and --where", file=sys.stderr)
        return 2
    jobs = plan(
        args.datasets,
        configs,
        args.results,
        subset=args.subset,
        repeats=args.repeats,
        seed=args.seed,
        timeout=args.timeout,
        memory_limit=args.memory_limit,
    )
    done = len(configs) * len(args.datasets) - len(jobs)
    print(f"{len(jobs)} jobs to run, {done} already in {args.results}", file=sys.stderr)
    if args.dry_run:
        for j in jobs:
            print(f"{j.dataset}\t{j.config.classifier}\t{j.config.parameter}")
        return 0
    # SIGTERM ends the run as Ctrl-C does: its jobs are ended, the finished ones stay recorded, the
    # standardised copies are removed.
    before = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    where = f"on the Dask cluster at {args.scheduler}" if args.scheduler else f"{args.jobs} at a time"
    print(f"running {where}; results: {args.results}", file=sys.stderr)
    try:
        records = run(
            jobs, args.results, root=args.root, workers=args.jobs, scheduler=args.scheduler, progress=not args.quiet
        )
    finally:
        signal.signal(signal.SIGTERM, before)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing run", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    skipped: list[tuple[int, str]] = []
    records = report.latest(args.results, skipped)
    for number, why in skipped:
        print(f"fmnist benchmark report: {args.results}: line {number} skipped: {why}", file=sys.stderr)
    if not records:
        raise ValueError(f"{args.results}: no results in it")
    if args.html:
        args.html.write_text(report.html(records), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.chart:
        if args.chart.suffix.lower() != ".svg":
            raise ValueError(f"--chart {args.chart}: the chart is SVG; name it .svg")
        args.chart.write_text(report.svg(records), encoding="utf-8")
        print(f"wrote {args.chart}", file=sys.stderr)
    if args.markdown or not (args.html or args.chart):
        sys.stdout.write(report.markdown(records))
    return 0
