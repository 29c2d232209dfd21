"""The seed's benchmark (``fmnist.benchmark``, ``fmnist benchmark run|report``) on the real
Fashion-MNIST and a second dataset the tests register: its grid for today's scikit-learn, the
protocol (deterministic by its seeds), resuming, a kill mid-run, the failure records, a real Dask
cluster on 127.0.0.1, and the report read back from headless Chromium's DOM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.benchmark import Job, configurations, plan, published_for, read_results, report, run, select
from fmnist.benchmark import runner as benchmark_run
from fmnist.benchmark.runner import prepare, recorded

from .conftest import FLIPPED, free_port
from .test_cli import run as cli


def by_config(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {json.dumps([r["dataset"], r["name"], r["parameter"]], sort_keys=True): r for r in records}


def outcome(r: dict[str, Any]) -> tuple[Any, ...]:
    """What must agree between two runs of the same job with the same seeds."""
    return (r["status"], r.get("score"), r.get("shuffle_seeds"), r.get("num_repeat"))


# --- the grid -----------------------------------------------------------------------------------


def test_the_seeds_143_combinations_in_its_order_mapped_for_todays_scikit_learn() -> None:
    every = configurations()
    assert len(every) == 143
    counts: dict[str, int] = {}
    for c in every:
        counts[c.classifier] = counts.get(c.classifier, 0) + 1
    assert counts == {
        "PassiveAggressiveClassifier": 3, "SGDClassifier": 15, "Perceptron": 3, "DecisionTreeClassifier": 12,
        "RandomForestClassifier": 18, "LogisticRegression": 12, "MLPClassifier": 8, "KNeighborsClassifier": 12,
        "SVC": 12, "GaussianNB": 1, "ExtraTreeClassifier": 12, "GaussianProcessClassifier": 2,
        "GradientBoostingClassifier": 9, "LinearSVC": 24,
    }  # fmt: skip
    sgd = [c for c in every if c.classifier == "SGDClassifier"]
    assert sgd[9].parameter == {"loss": "log", "penalty": "l1"} and sgd[9].kwargs["loss"] == "log_loss"
    lr = next(c for c in every if c.parameter == {"penalty": "l1", "C": 1.0, "multi_class": "ovr"})
    assert lr.wrap.endswith("OneVsRestClassifier") and lr.kwargs == {"l1_ratio": 1.0, "C": 1.0, "solver": "liblinear"}
    mlp = next(c for c in every if c.classifier == "MLPClassifier" and c.parameter["hidden_layer_sizes"] == "(100,10,)")
    assert mlp.kwargs["hidden_layer_sizes"] == (100, 10)
    pa = configurations(["PassiveAggressiveClassifier"])[1]
    assert pa.estimator == "sklearn.linear_model.SGDClassifier" and pa.kwargs["eta0"] == 10.0
    assert pa.kwargs["learning_rate"] == "pa1" and pa.kwargs["penalty"] is None
    unsupported = [c for c in every if c.unsupported]
    assert [(c.classifier, c.parameter["C"]) for c in unsupported] == [
        ("LinearSVC", 1.0),
        ("LinearSVC", 10.0),
        ("LinearSVC", 100.0),
    ]
    assert all("hinge loss with an l1 penalty" in c.unsupported for c in unsupported)
    with pytest.raises(ValueError, match="unknown classifier"):
        configurations(["XGBoost"])
    # The published figures (the paper's Table 3) for the configurations it lists.
    assert published_for("SVC", {"C": 10.0, "kernel": "rbf"}) == {"fashion-mnist": 0.897, "mnist": 0.973}
    assert published_for("MLPClassifier", {"activation": "relu", "hidden_layer_sizes": "(100,10,)"})["mnist"] == 0.972
    assert sum(bool(published_for(c.classifier, c.parameter)) for c in every) == 126
    assert [c.parameter for c in select(configurations(["KNeighborsClassifier"]), ["p=2", "n_neighbors=5"])] == [
        {"n_neighbors": 5, "weights": "uniform", "p": 2},
        {"n_neighbors": 5, "weights": "distance", "p": 2},
    ]


def test_every_supported_combination_builds_and_fits_on_a_real_subset(data_dir: Path) -> None:
    from sklearn.exceptions import ConvergenceWarning

    x = fmnist.read_idx(data_dir / "t10k-images-idx3-ubyte.gz")[:200].reshape(200, -1).astype(np.float64) / 255
    y = fmnist.read_idx(data_dir / "t10k-labels-idx1-ubyte.gz")[:200]
    for c in configurations():
        if c.unsupported:
            with pytest.raises(ValueError, match=re.escape(c.unsupported)):
                c.build()
            continue
        if c.classifier == "GradientBoostingClassifier":  # 2 trees, not 100: the test is the mapping
            c = replace(c, kwargs={**c.kwargs, "n_estimators": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no deprecated name or value is left in the mapping
            warnings.simplefilter("ignore", ConvergenceWarning)  # 5-epoch linear models on 100 examples
            model = c.build().fit(x[:100], y[:100])
        assert 0.0 <= model.score(x[100:], y[100:]) <= 1.0, c


# --- the protocol and the results file ---------------------------------------------------------


def test_the_protocol_on_a_subset_is_deterministic_by_its_seeds_in_parallel_or_not(
    tmp_path: Path, data: dict[str, str]
) -> None:
    d = prepare("fashion-mnist", subset=300, seed=1)
    assert len(d.y) == len(d.yt) == 300 and np.bincount(d.y).tolist() == [30] * 10
    configs = configurations(["KNeighborsClassifier"])[:2] + configurations(["DecisionTreeClassifier"])[:2]
    configs += [c for c in configurations(["LinearSVC"]) if c.unsupported][:1]
    jobs = plan(["fashion-mnist"], configs, tmp_path / "a.jsonl", subset=300, seed=7)
    first = run(jobs, tmp_path / "a.jsonl", data={"fashion-mnist": d}, workers=2, progress=False)
    again = run(jobs, tmp_path / "b.jsonl", data={"fashion-mnist": d}, workers=1, progress=False)
    a, b = by_config(first), by_config(again)
    assert a.keys() == b.keys() and len(a) == 5
    assert {k: outcome(a[k]) for k in a} == {k: outcome(b[k]) for k in b}  # same seeds, same scores
    assert sorted(r["status"] for r in first) == ["ok", "ok", "ok", "ok", "unsupported"]
    knn = next(r for r in first if r["name"] == "KNeighborsClassifier")
    # k-NN does not depend on the order of its training set: the seed's early stop after two.
    assert knn["num_repeat"] == 2 and knn["shuffle_seeds"] == [7, 8] and knn["score"][0] == knn["score"][1]
    tree = next(r for r in first if r["name"] == "DecisionTreeClassifier")
    assert tree["mean_accuracy"] == pytest.approx(np.mean(tree["score"])) and 0.4 < tree["mean_accuracy"] < 0.9
    assert tree["std_accuracy"] == pytest.approx(2 * np.std(tree["score"]))
    for r in first:  # the seed's fields, and what makes a result trustworthy
        assert {"name", "parameter", "start_time", "done_time", "status", "reason"} <= r.keys()
        assert {"dataset", "scikit_learn", "numpy", "fmnist", "host"} <= r.keys() and r["subset"] == 300
        if r["status"] == "ok":
            assert {"score", "mean_accuracy", "std_accuracy", "num_repeat", "time_per_repeat"} <= r.keys()
    # Other seeds shuffle otherwise: the tree's scores move.
    other = run(plan(["fashion-mnist"], configs[2:3], tmp_path / "c.jsonl", subset=300, seed=100), tmp_path / "c.jsonl",
                data={"fashion-mnist": d}, progress=False)  # fmt: skip
    assert other[0]["shuffle_seeds"][0] == 100


def test_a_run_resumes_and_a_line_cut_short_is_never_a_result(tmp_path: Path, data: dict[str, str]) -> None:
    d = prepare("fashion-mnist", subset=200)
    results = tmp_path / "r.jsonl"
    configs = configurations(["GaussianNB"]) + configurations(["KNeighborsClassifier"])[:1]
    jobs = plan(["fashion-mnist"], configs, results, subset=200)
    written = run(jobs, results, data={"fashion-mnist": d}, progress=False)
    assert len(written) == 2 and plan(["fashion-mnist"], configs, results, subset=200) == []  # nothing to run again
    with open(results, "ab") as f:
        f.write(b'{"dataset": "fashion-mnist", "name": "SVC", "parameter"')  # a kill mid-write
    assert len(list(read_results(results))) == 2
    svc = configurations(["SVC"])[:1]
    (new,) = run(plan(["fashion-mnist"], svc, results, subset=200), results, data={"fashion-mnist": d}, progress=False)
    assert new["status"] == "ok" and len(list(read_results(results))) == 3
    assert results.read_bytes().count(b"\n") == 4  # the cut line stays, closed, and is skipped
    # Another subset is another result: planned again.
    assert len(plan(["fashion-mnist"], configs, results, subset=100)) == 2
    with pytest.raises(ValueError, match="the data given is a subset of 200, the job's 100"):
        run(plan(["fashion-mnist"], configs, results, subset=100), results, data={"fashion-mnist": d})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the jobs' processes")
def test_a_run_killed_at_any_moment_leaves_each_job_recorded_once(tmp_path: Path, data: dict[str, str]) -> None:
    results = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "fmnist", "benchmark", "run", "--datasets", "fashion-mnist", "--subset", "300",
               "--classifiers", "KNeighborsClassifier,ExtraTreeClassifier", "--where", "n_neighbors=1",
               "--where", "max_depth=10", "--jobs", "2", "--results", str(results), "--quiet"]  # fmt: skip
    planned = 8  # 4 k-NN (n_neighbors=1) and 4 extra trees (max_depth=10)
    tmp = tmp_path / "tmp"  # where the runs keep their standardised copies
    tmp.mkdir()
    data = {**data, "TMPDIR": str(tmp)}
    kills = 0
    for wait in (0.5, 3.0, 5.0, 7.0):  # before any result, then as results arrive
        child = subprocess.Popen(command, env=data, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE)
        time.sleep(wait)
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)  # the run, its supervisors and its jobs, at once
            kills += 1
        child.wait()
    assert kills >= 2
    assert _gone(tmp_path)  # the jobs died with their run (Linux: PR_SET_PDEATHSIG)
    # Ctrl-C and SIGTERM end a run as well (each a fresh run of the same 8 jobs, signalled as its
    # first job starts): its jobs ended and not recorded, the finished ones kept, its copy removed.
    for how in (signal.SIGINT, signal.SIGTERM):
        stopped = tmp_path / f"stopped-{how.name}.jsonl"
        own = [*command[: command.index("--results") + 1], str(stopped), "--quiet"]
        child = subprocess.Popen(own, env=data, cwd=tmp_path, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not _jobs_running_in(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(how)
        assert child.wait(30) == {signal.SIGINT: 130, signal.SIGTERM: 143}[how] and _gone(tmp_path)
        assert [p for p in tmp.iterdir() if p.name.startswith(f"fmnist-benchmark-{child.pid}-")] == []
        kept = list(read_results(stopped))
        assert len(kept) < planned and {r["status"] for r in kept} <= {"ok"}  # none recorded as failed
    assert {r["status"] for r in read_results(results)} <= {"ok"}
    finished = subprocess.run(command, env=data, cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    records = list(read_results(results))
    keys = [json.dumps([r["name"], r["parameter"]], sort_keys=True) for r in records]
    assert len(keys) == len(set(keys)) == planned  # each job once, none lost
    assert all(r["status"] == "ok" for r in records)
    again = subprocess.run(command, env=data, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and "0 jobs to run, 8 already in" in again.stderr
    assert list(tmp.iterdir()) == []  # the killed runs' copies were removed by the next run


def _jobs_running_in(folder: Path) -> list[int]:
    """The benchmark jobs' processes whose working folder is ``folder`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"fmnist.benchmark.job" in (entry / "cmdline").read_bytes():
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _gone(folder: Path, within: float = 120.0) -> bool:
    """Whether every job process working in ``folder`` is gone, soon: a parent's death reaches its
    children as a signal, delivered and acted on a moment later."""
    deadline = time.monotonic() + within
    while _jobs_running_in(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_failures_are_recorded_with_their_reason_and_the_run_goes_on(tmp_path: Path, data: dict[str, str]) -> None:
    d = prepare("fashion-mnist", subset=1500)
    results = tmp_path / "r.jsonl"
    gpc = configurations(["GaussianProcessClassifier"])[:1]  # an n x n kernel: slow on purpose
    nb = configurations(["GaussianNB"])
    bad = replace(nb[0], kwargs={"priors": [0.5, 0.5]})  # priors for 2 classes, 10 in the data
    unsupported = [c for c in configurations(["LinearSVC"]) if c.unsupported][:1]
    jobs = plan(["fashion-mnist"], gpc + nb, results, subset=1500, timeout=6)
    jobs += [Job("fashion-mnist", 1500, bad), Job("fashion-mnist", 1500, unsupported[0])]
    jobs += [Job("fashion-mnist", 1500, configurations(["KNeighborsClassifier"])[0], memory_limit=64 << 20)]
    records = run(jobs, results, data={"fashion-mnist": d}, workers=2, progress=False)
    status = {r["name"]: (r["status"], r["reason"]) for r in records if r.get("kwargs") != bad.kwargs}
    assert len(records) == 5 and len(status) == 4
    gp = "the fit and scoring went over the time limit of 6 s: its process was killed"
    assert status["GaussianProcessClassifier"] == ("timed out", gp)
    assert status["GaussianNB"] == ("ok", "")  # the run went on
    failed = next(r for r in records if r.get("kwargs") == bad.kwargs)
    assert failed["status"] == "failed" and "ValueError" in failed["reason"] and "priors" in failed["reason"]
    assert status["LinearSVC"] == ("unsupported", unsupported[0].unsupported)
    assert status["KNeighborsClassifier"][0] == "out of memory"
    assert "MemoryError" in status["KNeighborsClassifier"][1]
    assert len(recorded(results)) == 4  # GaussianNB's two records share a key: the failed one counts


def test_the_time_limit_is_the_fits_not_the_start_ups(
    tmp_path: Path, data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every job's interpreter spends 3 s starting (a sitecustomize that sleeps: a loaded machine,
    # made certain), two jobs start side by side, and the limit is 2 s: the fits of 1,500 images
    # (GaussianNB; a decision tree of depth 10) take a fraction of that, and both are recorded ok.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import time\ntime.sleep(3)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    d = prepare("fashion-mnist", subset=1500)
    tree = next(c for c in configurations(["DecisionTreeClassifier"]) if c.parameter.get("max_depth") == 10)
    jobs = [Job("fashion-mnist", 1500, c, timeout=2) for c in configurations(["GaussianNB"]) + [tree]]
    records = run(jobs, tmp_path / "r.jsonl", data={"fashion-mnist": d}, workers=2, progress=False)
    assert sorted((r["name"], r["status"], r["reason"]) for r in records) == [
        ("DecisionTreeClassifier", "ok", ""),
        ("GaussianNB", "ok", ""),
    ], records


def test_the_command_line_checks_its_arguments_and_says_what_it_needs(
    tmp_path: Path, data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = cli("benchmark", "run", "--datasets", "fashion-mnist,nope", env=data, cwd=tmp_path)
    assert out.returncode == 2 and "unknown dataset 'nope'" in out.stderr
    out = cli("benchmark", "run", "--classifiers", "XGBoost", env=data, cwd=tmp_path)
    assert out.returncode == 2 and "unknown classifier 'XGBoost'" in out.stderr
    for flag, value, says in (
        ("--memory-limit", "lots", "must be a size"),
        ("--timeout", "-1", "positive number of seconds"),
        ("--subset", "0", "at least 1"),
        ("--jobs", "two", "at least 1"),
    ):
        out = cli("benchmark", "run", flag, value, env=data, cwd=tmp_path)
        assert out.returncode == 2 and says in out.stderr, (flag, out.stderr)
    out = cli("benchmark", "run", "--where", "p", env=data, cwd=tmp_path)
    assert out.returncode == 1 and "expected KEY=VALUE" in out.stderr
    out = cli("benchmark", "run", "--classifiers", "svc", "--where", "kernel=none", env=data, cwd=tmp_path)
    assert out.returncode == 2 and "no configuration matches" in out.stderr
    out = cli("benchmark", "run", "--datasets", "fashion-mnist", "--subset", "70000", "--classifiers", "GaussianNB",
              "--results", str(tmp_path / "r.jsonl"), "--quiet", env=data, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1 and "--subset 70000: fashion-mnist has 60000 training and 10000 test" in out.stderr
    out = cli("benchmark", "run", "--classifiers", "SVC", "--dry-run", "--datasets", f"fashion-mnist,{FLIPPED}",
              env=data, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0 and "24 jobs to run, 0 already in fmnist-benchmark.jsonl" in out.stderr
    assert out.stdout.count(f"{FLIPPED}\tSVC\t") == 12 and not (tmp_path / "fmnist-benchmark.jsonl").exists()
    out = cli("benchmark", "report", str(tmp_path / "none.jsonl"), env=data, cwd=tmp_path)
    assert out.returncode == 1 and "no results in it" in out.stderr
    monkeypatch.setattr(benchmark_run, "CONNECT_TIMEOUT", "2s")
    nobody = f"tcp://127.0.0.1:{free_port()}"
    args = ["--datasets", "fashion-mnist", "--subset", "100", "--classifiers", "GaussianNB", "--quiet"]
    out = cli(
        "benchmark", "run", *args, "--scheduler", nobody, "--results", str(tmp_path / "r.jsonl"), env=data, cwd=tmp_path
    )
    assert out.returncode == 1 and f"no Dask scheduler answered at {nobody}" in out.stderr
    assert not (tmp_path / "r.jsonl").exists()


# --- the cluster --------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path, data: dict[str, str]) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real Dask cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes of
    one thread each, started from this Python's environment."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask"
    logs.mkdir()
    scheduler = [*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    procs = [subprocess.Popen(scheduler, stdout=subprocess.DEVNULL, stderr=open(logs / "s.log", "wb"), cwd=tmp_path)]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--host", "127.0.0.1",
              "--no-dashboard", "--local-directory", str(tmp_path / "dask")]  # fmt: skip
    for i in range(2):  # each keeps its standardised copies in its scratch space, under tmp_path / "dask"
        procs.append(subprocess.Popen([*worker, "--name", f"w{i}"], stdout=subprocess.DEVNULL,
                                      stderr=open(logs / f"worker{i}.log", "wb"), cwd=tmp_path, env=data))  # fmt: skip
    from distributed import Client

    try:
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def _descendants(pid: int) -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process under ``pid``."""
    table = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            table.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), cmd))
    out, frontier = [], {pid}
    while frontier:
        children = [t for t in table if t[1] in frontier]
        out += children
        frontier = {t[0] for t in children}
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker to kill")
def test_on_a_dask_cluster_the_same_results_and_a_killed_worker_costs_one_rerun(
    tmp_path: Path, data: dict[str, str], cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, procs = cluster
    configs = configurations(["DecisionTreeClassifier"])[:3] + configurations(["GaussianNB"])
    datasets = ["fashion-mnist", FLIPPED]
    prepared = {n: prepare(n, subset=400, seed=3) for n in datasets}
    local = run(plan(datasets, configs, tmp_path / "local.jsonl", subset=400, seed=3), tmp_path / "local.jsonl",
                data=prepared, workers=2, progress=False)  # fmt: skip
    remote = run(plan(datasets, configs, tmp_path / "dask.jsonl", subset=400, seed=3), tmp_path / "dask.jsonl",
                 data=prepared, scheduler=address, progress=False)  # fmt: skip
    a, b = by_config(local), by_config(remote)
    assert len(a) == 8 and {k: outcome(a[k]) for k in a} == {k: outcome(b[k]) for k in b}
    assert all(r["status"] == "ok" for r in remote)
    # The data went to each worker once: one standardised copy per worker and dataset, not per job.
    made = sorted(p.name.split("-")[2] for p in (tmp_path / "dask").glob("**/fmnist-benchmark-*"))
    assert 2 <= len(made) <= 4 and all(made.count(pid) <= 2 for pid in made), made

    # A worker killed mid-job: the job runs again elsewhere, the run completes, each job once.
    results = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "fmnist", "benchmark", "run", "--datasets", "fashion-mnist", "--subset", "2500",
               "--classifiers", "SVC", "--where", "C=1.0", "--scheduler", address, "--results", str(results),
               "--quiet"]  # fmt: skip
    child = subprocess.Popen(command, env=data, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and child.poll() is None:
        for worker in procs[1:]:
            jobs = [t for t in _descendants(worker.pid) if "fmnist.benchmark.job" in t[2]]
            if jobs:
                os.kill(jobs[0][1], signal.SIGKILL)  # the job's parent: the Dask worker process itself
                killed = jobs[0]
                break
        time.sleep(0.2)
    out, err = child.communicate(timeout=600)
    assert killed is not None, "no job was seen running on a worker"
    assert child.returncode == 0, err
    records = list(read_results(results))
    assert len(records) == 4 and len({json.dumps([r["name"], r["parameter"]]) for r in records}) == 4
    assert all(r["status"] == "ok" for r in records), records
    time.sleep(1)
    assert not Path(f"/proc/{killed[0]}").exists() or "zombie" in Path(f"/proc/{killed[0]}/status").read_text()


# --- the report ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results file with two datasets side by side and every kind of record."""
    path = tmp_path_factory.mktemp("report") / "results.jsonl"
    base = {"subset": None, "scikit_learn": "1.9.1", "numpy": "2.3", "fmnist": "0.1.0", "host": "here",
            "start_time": 1, "done_time": 2, "reason": ""}  # fmt: skip
    ok = {"status": "ok", "num_repeat": 2, "std_accuracy": 0.002}
    lines = [
        {**base, **ok, "dataset": "fashion-mnist", "name": "SVC", "parameter": {"C": 10.0, "kernel": "rbf"},
         "mean_accuracy": 0.881, "time_per_repeat": 300.5, "score": [0.88, 0.882]},
        {**base, **ok, "dataset": "mnist", "name": "SVC", "parameter": {"C": 10.0, "kernel": "rbf"},
         "mean_accuracy": 0.97, "time_per_repeat": 200.0, "score": [0.97, 0.97]},
        {**base, **ok, "dataset": "fashion-mnist", "name": "SVC", "parameter": {"C": 1.0, "kernel": "linear"},
         "mean_accuracy": 0.84, "time_per_repeat": 100.0, "score": [0.84, 0.84]},
        {**base, **ok, "dataset": "fashion-mnist", "name": "GaussianNB", "parameter": {"priors": [0.1] * 10},
         "mean_accuracy": 0.57, "time_per_repeat": 0.7, "score": [0.57, 0.57]},
        {**base, **ok, "dataset": "mnist", "name": "GaussianNB", "parameter": {"priors": [0.1] * 10},
         "mean_accuracy": 0.55, "time_per_repeat": 0.6, "score": [0.55, 0.55]},
        {**base, "dataset": "fashion-mnist", "name": "GaussianProcessClassifier",
         "parameter": {"multi_class": "one_vs_one"}, "status": "timed out",
         "reason": "over the time limit of 600 s: its process was killed"},
        {**base, "dataset": "mnist", "name": "LinearSVC",
         "parameter": {"loss": "hinge", "penalty": "l1", "C": 1.0, "multi_class": "ovr"},
         "status": "unsupported", "reason": "liblinear has no hinge loss with an l1 penalty"},
        {**base, **ok, "dataset": "mnist", "name": "SVC", "parameter": {"C": 10.0, "kernel": "rbf"},
         "mean_accuracy": 0.973, "time_per_repeat": 210.0, "score": [0.973, 0.973]},  # a rerun: supersedes
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"dataset": "mni')
    return path


def test_the_markdown_table_and_the_chart(tmp_path: Path, results: Path) -> None:
    out = cli(
        "benchmark", "report", str(results), "--markdown", "--chart", str(tmp_path / "c.svg"), env={}, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("7 results: ") and "1 timed out" in lines[0] and "1 unsupported" in lines[0]
    head = next(i for i, x in enumerate(lines) if x.startswith("| Classifier"))
    assert lines[head].split(" | ")[3:6] == ["fashion-mnist accuracy", "fashion-mnist s/fit", "fashion-mnist published"]
    rows = [x.split(" | ") for x in lines[head + 2 :]]
    assert [r[0].strip("| ") for r in rows] == ["SVC", "SVC", "GaussianNB", "GaussianProcessClassifier", "LinearSVC"]
    assert rows[0][1:] == ["C=10.0 kernel=rbf", "all", "0.881 ± 0.002", "300.5", "0.897", "0.973 ± 0.002",
                           "210.0", "0.973 |"]  # fmt: skip
    assert rows[3][3] == "timed out" and rows[4][6] == "unsupported"
    svg = ET.parse(tmp_path / "c.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in svg.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert [b.find(f"{ns}title").text for b in bars] == [  # type: ignore[union-attr]
        "fashion-mnist: C=10.0 kernel=rbf: 0.881",
        "mnist: C=10.0 kernel=rbf: 0.973",
        "fashion-mnist: priors=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]: 0.570",
        "mnist: priors=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]: 0.550",
    ]
    assert {b.get("fill") for b in bars[::2]} == {report.PALETTE[0]} and {b.get("fill") for b in bars[1::2]} == {
        report.PALETTE[1]
    }
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert texts[:2] == ["fashion-mnist", "mnist"] and "SVC" in texts and "GaussianNB" in texts
    out = cli("benchmark", "report", str(results), "--chart", str(tmp_path / "c.png"), env={}, cwd=tmp_path)
    assert out.returncode == 1 and "the chart is SVG" in out.stderr


def test_the_charts_ticks_never_cover_a_label(tmp_path: Path, results: Path) -> None:
    # Each bar, its tick (the published figure) if any, then its label: the label starts past
    # the bar's end and past the tick. SVC on fashion-mnist (0.881, published 0.897) has its tick
    # just past the bar's end, where a --subset run puts most of them.
    assert (
        cli("benchmark", "report", str(results), "--chart", str(tmp_path / "c.svg"), env={}, cwd=tmp_path).returncode
        == 0
    )
    ns = "{http://www.w3.org/2000/svg}"
    marks = list(ET.parse(tmp_path / "c.svg").getroot())
    checked = 0
    for k, e in enumerate(marks):
        if e.tag != f"{ns}rect" or e.find(f"{ns}title") is None:
            continue
        end = float(e.get("x", 0)) + float(e.get("width", 0))
        tick = marks[k + 1] if marks[k + 1].tag == f"{ns}line" else None
        label = marks[k + 2] if tick is not None else marks[k + 1]
        assert label.tag == f"{ns}text" and float(label.get("x", 0)) > end
        if tick is not None:
            assert float(label.get("x", 0)) > float(tick.get("x1", 0)) + 1, (label.text, tick.attrib)
            checked += 1
    assert checked == 4  # every bar but the timed out and unsupported ones has a published figure


def test_a_report_skips_and_names_every_line_it_cannot_read(tmp_path: Path, results: Path) -> None:
    # Hostile but valid JSON lines, a line nested past the recursion limit, and markup: each bad
    # line is named with its line number, the rest reported, the markup escaped.
    good = results.read_text().splitlines(keepends=True)[:-1]  # the fixture's records (not its cut line)
    ok = json.loads(good[0])
    hostile = [
        {**ok, "parameter": 5}, {**ok, "parameter": None}, {k: v for k, v in ok.items() if k != "mean_accuracy"},
        {**ok, "name": None}, {**ok, "status": ["ok"]}, {**ok, "dataset": ["x"]}, {**ok, "mean_accuracy": "0.9"},
        {**ok, "std_accuracy": None}, {**ok, "time_per_repeat": True}, {**ok, "num_repeat": 1.5},
        {**ok, "status": "done"}, {**ok, "subset": "all"}, {**ok, "reason": {"x": 1}}, {**ok, "host": 3}, [ok],
    ]  # fmt: skip
    marked = {**ok, "name": "<script>alert(1)</script>", "dataset": "<b>x</b>"}
    lines = good + [json.dumps(h) + "\n" for h in hostile] + ["[" * 100_000 + "]" * 100_000 + "\n", "not json\n"]
    lines.append(json.dumps(marked) + "\n")
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(lines))
    page = tmp_path / "r.html"
    out = cli("benchmark", "report", str(path), "--html", str(page), "--markdown", env={}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    named = re.findall(r"line (\d+) skipped: (.*)", out.stderr)
    assert [int(n) for n, _ in named] == list(range(len(good) + 1, len(good) + len(hostile) + 3)), out.stderr
    assert "nested deeper than Python's recursion limit" in named[-2][1] and "not JSON" in named[-1][1]
    assert out.stdout.splitlines()[0].startswith("8 results: ")  # the fixture's 7, and the marked one
    text = page.read_text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_one_run_writes_a_results_file_at_a_time_and_a_fifo_is_refused_at_once(
    tmp_path: Path, data: dict[str, str]
) -> None:
    results = tmp_path / "r.jsonl"
    code = (
        "import time\nfrom pathlib import Path\nfrom fmnist.benchmark.runner import sole_writer\n"
        f"with sole_writer(Path({str(results)!r})):\n    print('held', flush=True)\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        args = ("benchmark", "run", "--classifiers", "GaussianNB", "--subset", "1000", "--results", str(results))
        out = cli(*args, "--quiet", env=data, cwd=tmp_path)
        assert out.returncode == 1 and f"another run is writing it (process {holder.pid} on " in out.stderr, out.stderr
        assert not results.exists()  # nothing run, nothing written
    finally:
        holder.kill()
        holder.wait()
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    for argv in (("benchmark", "report", str(fifo)), ("benchmark", "run", "--results", str(fifo), "--dry-run")):
        done = subprocess.run(
            [sys.executable, "-m", "fmnist", *argv], capture_output=True, text=True, env=data, timeout=120
        )
        assert done.returncode == 1 and f"{fifo}: not a regular file" in done.stderr, done.stderr


def test_only_temporary_folders_fmnist_made_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A run's folder left by a process that is gone (this user's, its marker holding its name) is
    # removed; a user's folder of a like name, one without the marker, or with a marker of
    # another name, is left with its contents.
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    stale = tmp_path / f"fmnist-benchmark-{pid}-abc123"
    users = [tmp_path / "fmnist-benchmark-2024-results", tmp_path / f"fmnist-benchmark-{pid}-nomark",
             tmp_path / f"fmnist-benchmark-{pid}-other"]  # fmt: skip
    for folder in [stale, *users]:
        folder.mkdir()
        (folder / "x.npy").write_bytes(b"precious")
    (stale / benchmark_run.MARKER).write_text(stale.name)
    (users[2] / benchmark_run.MARKER).write_text(stale.name)  # a marker, but not of this folder
    benchmark_run._clean_stale()
    assert not stale.exists() and all((f / "x.npy").read_bytes() == b"precious" for f in users)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail("headless Chromium is not installed (apt-get install chromium): the report's test needs it")
    return found


def _dom(page: Path, fragment: str, tmp_path: Path) -> ET.Element:
    """The page's DOM after its script ran, as Chromium serialises it, parsed."""
    profile = tmp_path / f"chromium-{abs(hash(fragment))}"
    out = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--virtual-time-budget=3000", "--dump-dom", f"{page.as_uri()}#{fragment}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and "<html" in out.stdout, out.stderr
    from html.parser import HTMLParser

    root = ET.Element("document")
    stack = [root]
    void = {"meta", "br", "img", "input", "link", "hr"}

    class Tree(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            e = ET.SubElement(stack[-1], tag, {k: v or "" for k, v in attrs})
            if tag not in void:
                stack.append(e)

        def handle_endtag(self, tag: str) -> None:
            while len(stack) > 1 and stack.pop().tag != tag:
                pass

        def handle_data(self, text: str) -> None:
            e = stack[-1]
            e.text = (e.text or "") + text

    Tree().feed(out.stdout)
    return root


def test_the_page_in_a_real_browser_shows_each_view_and_sorts(tmp_path: Path, results: Path) -> None:
    page = tmp_path / "report.html"
    out = cli("benchmark", "report", str(results), "--html", str(page), env={}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing from the network
    assert "@import" not in text and "url(" not in text
    dom = _dom(page, "", tmp_path)
    assert dom.find(".//body[@data-ready='true']") is not None  # the page's script ran
    views = dom.findall(".//section")
    assert [v.get("data-view") for v in views] == ["fashion-mnist", "mnist", "side by side"]
    assert ["hidden" in v.attrib for v in views] == [False, True, True]
    assert [b.get("aria-pressed") for b in dom.findall(".//nav/button")] == ["true", "false", "false"]

    def column(view: ET.Element, key: str) -> list[str]:
        heads = [th.get("data-key") for th in view.findall(".//thead/tr/th")]
        i = heads.index(key)
        return [(tr.findall("td")[i].text or "") for tr in view.findall(".//tbody/tr")]

    # The side-by-side view, sorted by the time per fit on fashion-mnist, longest first.
    dom = _dom(page, "view=side%20by%20side&sort=fashion-mnist%3Atime&order=desc", tmp_path)
    views = dom.findall(".//section")
    assert ["hidden" in v.attrib for v in views] == [True, True, False]
    side = views[2]
    assert column(side, "classifier") == ["SVC", "SVC", "GaussianNB", "GaussianProcessClassifier", "LinearSVC"]
    assert column(side, "fashion-mnist:time") == ["300.5", "100.0", "0.7", "", ""]
    assert column(side, "fashion-mnist:accuracy") == ["0.881", "0.840", "0.570", "timed out", "not run"]
    assert column(side, "mnist:accuracy") == ["0.973", "not run", "0.550", "not run", "unsupported"]
    assert column(side, "mnist:published") == ["0.973", "0.929", "0.524", "", ""]
    th = side.find(".//th[@data-key='fashion-mnist:time']")
    assert th is not None and th.get("aria-sort") == "descending"
    # One dataset's view, sorted by accuracy, lowest first; blanks last either way.
    dom = _dom(page, "view=fashion-mnist&sort=accuracy&order=asc", tmp_path)
    fashion = dom.findall(".//section")[0]
    assert column(fashion, "accuracy") == ["0.570", "0.840", "0.881", ""]
    assert column(fashion, "published") == ["0.511", "0.839", "0.897", ""]
    status = fashion.findall(".//tbody/tr")[-1].findall("td")[-1]
    assert status.text == "timed out" and "600 s" in status.get("title", "")
    assert len(dom.findall(".//svg//rect/title")) == 4  # the chart, inline


def test_the_api_refuses_a_subset_of_nothing_and_no_repeats(tmp_path: Path) -> None:
    from fmnist.benchmark.runner import stratified

    with pytest.raises(ValueError, match="a subset needs at least one example, not 0"):
        stratified(np.arange(10) % 2, 0, seed=0)
    with pytest.raises(ValueError, match="repeats must be at least 1, not 0"):
        plan(["fashion-mnist"], configurations(["GaussianNB"]), tmp_path / "r.jsonl", repeats=0)
    with pytest.raises(ValueError, match=r"--where 'p': expected KEY=VALUE"):
        select(configurations(["KNeighborsClassifier"]), ["p"])
