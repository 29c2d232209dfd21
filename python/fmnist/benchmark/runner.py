"""The seed's benchmark run (``benchmark/runner.py``), resumable, on this machine or a Dask cluster.

Per dataset the splits come from fmnist (verified), a stratified subset of each when asked,
flattened and standardised with a ``StandardScaler`` fitted on the training set, and written once
as ``.npy`` files that every job maps read-only. Each configuration runs in a process of its own
(``job.py``: killed at the time limit, its memory capped), supervised from a thread: locally joblib
runs ``jobs`` of them at once; with a scheduler the raw splits are scattered to every Dask worker
once, each worker standardises them once, and the jobs run there the same way.

Results are JSON lines, one per (dataset, subset, classifier, parameters), each appended with one
write and flushed to disk as its job ends. A run resumes: what is recorded for the same dataset,
subset, configuration and scikit-learn version is not run again; a line cut short by a kill is
never read as a result.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .grid import Configuration
from .job import STARTED, versions

#: The thread pools of numpy's BLAS and of scikit-learn's OpenMP code in each job: one each,
#: since the jobs are what runs in parallel (and one thread makes the scores exactly reproducible).
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}


@dataclass(frozen=True)
class Data:
    """One dataset's splits as a run uses them (a subset when asked), before standardising: what
    is sent to each Dask worker, once."""

    name: str
    subset: int | None
    x: npt.NDArray[Any]
    y: npt.NDArray[Any]
    xt: npt.NDArray[Any]
    yt: npt.NDArray[Any]
    token: str  #: names this run's copy on the workers


@dataclass(frozen=True)
class Job:
    """One configuration on one dataset, and how to run it."""

    dataset: str
    subset: int | None
    config: Configuration
    repeats: int = 2
    seed: int = 0
    timeout: float | None = None  #: seconds; the job's process is killed past them
    memory_limit: int | None = None  #: bytes of the job's own data (heap and private mappings)

    def key(self, sklearn_version: str) -> str:
        return _key(self.dataset, self.subset, self.config.classifier, self.config.parameter, sklearn_version)


def _key(dataset: Any, subset: Any, name: Any, parameter: Any, sklearn_version: Any) -> str:
    return json.dumps([dataset, subset, name, parameter, sklearn_version], sort_keys=True)


def stratified(labels: npt.NDArray[Any], n: int, seed: int) -> npt.NDArray[np.intp]:
    """Indices of a stratified subset of ``n`` examples (as even over the classes as ``n``
    allows), drawn with ``seed``, in their original order."""
    if n < 1:
        raise ValueError(f"a subset needs at least one example, not {n}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    picked = []
    for k, c in enumerate(classes):
        members = np.flatnonzero(labels == c)
        take = n // len(classes) + (k < n % len(classes))
        picked.append(rng.permutation(members)[:take])
    return np.sort(np.concatenate(picked))


def prepare(name: str, *, subset: int | None = None, seed: int = 0, root: Any = None) -> Data:
    """The dataset's splits from fmnist (verified), a stratified subset of each when asked."""
    from ..loaders import load_data

    (x, y), (xt, yt) = load_data(name, root=root)
    if subset is not None:
        if subset > len(y) or subset > len(yt):
            raise ValueError(f"--subset {subset}: {name} has {len(y)} training and {len(yt)} test examples")
        keep, keep_t = stratified(y, subset, seed), stratified(yt, subset, seed + 1)
        x, y, xt, yt = x[keep], y[keep], xt[keep_t], yt[keep_t]
    return Data(name, subset, x, y, xt, yt, uuid.uuid4().hex)


def standardise(data: Data, folder: Path) -> Path:
    """Writes ``data`` flattened to float64 and standardised (a scaler fitted on the training set,
    as the seed's workers do) as ``x.npy``, ``y.npy``, ``xt.npy``, ``yt.npy`` in ``folder``."""
    from sklearn.preprocessing import StandardScaler

    x = data.x.reshape(len(data.x), -1).astype(np.float64)
    xt = data.xt.reshape(len(data.xt), -1).astype(np.float64)
    scaler = StandardScaler().fit(x)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("x", scaler.transform(x)), ("y", data.y), ("xt", scaler.transform(xt)), ("yt", data.yt)):
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    return folder


#: The most a job's start-up may take (Python and scikit-learn imported, the data mapped): not
#: part of ``--timeout``, which is the fit's and the scoring's.
STARTUP_LIMIT = 600.0
#: The jobs' processes now running here, and whether the run is stopping (interrupted, killed).
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()


def supervise(folder: Path, job: Job) -> dict[str, Any] | None:
    """Runs ``job`` on the standardised splits in ``folder`` in a process of its own and returns
    its record: the seed's fields, the dataset, versions, host and a status with its reason;
    None when the run was stopped while the job ran."""
    config = job.config
    record: dict[str, Any] = {
        "dataset": job.dataset,
        "subset": job.subset,
        "name": config.classifier,
        "parameter": config.parameter,
        "estimator": config.estimator,
        "wrap": config.wrap,
        "kwargs": config.kwargs,
        "seed": job.seed,
        "repeats": job.repeats,
        "timeout": job.timeout,
        "memory_limit": job.memory_limit,
        "start_time": int(time.time()),
    }
    if config.unsupported:
        return {**record, **versions(), "status": "unsupported", "reason": config.unsupported, **_done()}
    spec = {"folder": str(folder), "config": asdict(config), "repeats": job.repeats, "seed": job.seed}
    spec["memory_limit"] = job.memory_limit
    # A session of its own: the terminal's Ctrl-C reaches the run, which ends its jobs itself
    # (and records none of them), rather than each job dying on its own and being recorded failed.
    child = subprocess.Popen(
        [sys.executable, "-m", "fmnist.benchmark.job"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **ONE_THREAD, "FMNIST_BENCHMARK_PARENT": str(os.getpid())},
        start_new_session=True,
    )
    with _live_lock:
        _live.add(child)
    try:
        out, err = _communicate(child, json.dumps(spec).encode(), job.timeout)
    except subprocess.TimeoutExpired as e:
        reason = (
            f"its start-up (imports, the data mapped) took over {STARTUP_LIMIT:g} s: its process was killed"
            if e.cmd == "start-up"
            else f"the fit and scoring went over the time limit of {job.timeout:g} s: its process was killed"
        )
        return {**record, **versions(), "status": "timed out", "reason": reason, **_done()}
    finally:
        if child.poll() is None:  # interrupted, or timed out: the job does not outlive its supervisor
            child.kill()
            child.wait()
        with _live_lock:
            _live.discard(child)
    if _stopping.is_set():
        return None  # the run was stopped: this job ended with it, and is run again on resume
    try:
        result = json.loads(out)
    except ValueError:  # no result: a crash, or out of memory before one could be written
        reason = _died(child.returncode, err)
        result = {"status": "out of memory" if "MemoryError" in reason else "failed", "reason": reason}
    if "status" in result:
        return {**record, **versions(), **result, **_done()}
    scores = result["score"]
    return {
        **record,
        **result,
        "status": "ok",
        "reason": "",
        "num_repeat": len(scores),
        "mean_accuracy": float(np.mean(scores)),
        "std_accuracy": float(np.std(scores) * 2),  # the seed's: twice the standard deviation
        "time_per_repeat": float(np.mean(result["time_per_fit"])),
        **_done(),
    }


def _communicate(child: subprocess.Popen[bytes], spec: bytes, timeout: float | None) -> tuple[bytes, bytes]:
    """Gives ``child`` its job and collects its output; ``timeout`` counts from the job's STARTED
    line (its imports and data are not the job's time): ``TimeoutExpired`` past it."""
    out, err, begun = bytearray(), bytearray(), threading.Event()
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stdout, stderr = child.stdout, child.stderr

    def pump_out() -> None:
        first = stdout.readline()  # STARTED, or the whole output of a job that died first
        begun.set()
        out.extend(b"" if first == STARTED else first)
        out.extend(stdout.read())

    pumps = [threading.Thread(target=pump_out, daemon=True)]
    pumps.append(threading.Thread(target=lambda: err.extend(stderr.read()), daemon=True))
    for t in pumps:
        t.start()
    try:
        child.stdin.write(spec)
        child.stdin.close()
    except BrokenPipeError:  # it died before reading its job: its stderr says why
        pass
    if not begun.wait(STARTUP_LIMIT):
        raise subprocess.TimeoutExpired("start-up", STARTUP_LIMIT)
    child.wait(timeout=timeout)
    for t in pumps:
        t.join()
    return bytes(out), bytes(err)


def _done() -> dict[str, int]:
    return {"done_time": int(time.time())}


def _died(code: int, err: bytes) -> str:
    """Why a job's process gave no result: its signal or exit code, and its last words."""
    import signal

    how = f"died of {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return f"the job's process {how}" + (f": {tail[0]}" if tail[0] else "")


# --- results ------------------------------------------------------------------------------------


STATUSES = ("ok", "failed", "timed out", "out of memory", "unsupported")


def _wrong(r: Any) -> str:
    """What is wrong with a line's record, as a report reads it ("" when nothing)."""
    if not isinstance(r, dict):
        return f"a JSON {type(r).__name__}, not an object"
    fields: list[tuple[str, type | tuple[type, ...]]] = [("dataset", str), ("name", str), ("parameter", dict)]
    fields.append(("status", str))
    if r.get("status") == "ok":
        fields += [(k, (int, float)) for k in ("mean_accuracy", "std_accuracy", "time_per_repeat")]
        fields += [("num_repeat", int)]
    for key, kind in fields:
        if key not in r:
            return f"no {key!r}"
        if not isinstance(r[key], kind) or isinstance(r[key], bool):
            return f"{key!r} is a JSON {type(r[key]).__name__}"
    if r["status"] not in STATUSES:
        return f"status {r['status']!r} is none of {', '.join(STATUSES)}"
    for key, kinds in (("subset", (int, type(None))), ("reason", (str,)), ("host", (str,)), ("scikit_learn", (str,))):
        if key in r and (not isinstance(r[key], kinds) or isinstance(r[key], bool)):
            return f"{key!r} is a JSON {type(r[key]).__name__}"
    return ""


def regular_or_missing(path: Path) -> Path:
    """``path`` when it is a regular file or nothing is there; else an ``OSError`` naming it, at
    once (a FIFO would hang a reader, a device never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(mode):
        raise OSError(f"{path}: not a regular file; a results file is a regular file of JSON lines")
    return path


def read_results(path: Path, skipped: list[tuple[int, str]] | None = None) -> Iterator[dict[str, Any]]:
    """The records of a results file. A line a kill cut short (no newline) is not a result, and
    is passed over; a line that is not a record a report can read (malformed, nested too deeply
    to parse, fields of the wrong types) is skipped, and named with its line number in
    ``skipped``."""
    try:
        text = regular_or_missing(Path(path)).read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if not line.endswith("\n"):
            continue
        try:
            record = json.loads(line)
            why = _wrong(record)
        except RecursionError:
            why = "nested deeper than Python's recursion limit"
        except ValueError as e:
            why = "not JSON" if line.strip() else ""
            why = why and f"{why} ({e})"
        if not why:
            yield record
        elif skipped is not None and line.strip():
            skipped.append((number, why))


@contextmanager
def sole_writer(results: Path) -> Iterator[None]:
    """Holds ``<results>.lock`` for the run: one run writes a results file at a time. The holder's
    process id is in the lock file, so a second run is told which process holds it."""
    lock = results.with_name(results.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            raise OSError(
                f"{results}: another run is writing it ({holder}, holding {lock}); wait for it, or use --results"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {platform.node()}\n".encode())
        yield
    finally:
        os.close(fd)


def append(path: Path, record: dict[str, Any]) -> None:
    """Appends one record as one line with one write, flushed to disk: a kill leaves either the
    whole line or a cut one, which ``read_results`` skips."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # after a cut line: start a fresh one
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def recorded(path: Path) -> set[str]:
    """The keys of what ``path`` records."""
    return {
        _key(r["dataset"], r.get("subset"), r["name"], r["parameter"], r.get("scikit_learn"))
        for r in read_results(path)
    }


def plan(
    datasets: list[str],
    configs: list[Configuration],
    results: Path | str,
    *,
    subset: int | None = None,
    repeats: int = 2,
    seed: int = 0,
    timeout: float | None = None,
    memory_limit: int | None = None,
) -> list[Job]:
    """The jobs of ``configs`` on ``datasets`` that ``results`` does not record yet for this
    scikit-learn, each configuration's datasets side by side."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    done = recorded(Path(results))
    version = versions()["scikit_learn"]
    jobs = [Job(d, subset, c, repeats, seed, timeout, memory_limit) for c in configs for d in datasets]
    return [j for j in jobs if j.key(version) not in done]


# --- running ------------------------------------------------------------------------------------


def run(
    jobs: list[Job],
    results: Path | str,
    *,
    data: dict[str, Data] | None = None,
    root: Any = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Runs ``jobs`` (from ``plan``), appending each record to ``results`` as its job ends:
    locally over ``workers`` processes at once, or on the Dask cluster at ``scheduler``. ``data``:
    the datasets' splits when already prepared (else ``prepare`` with the jobs' subset). Returns
    the records written now."""
    from tqdm import tqdm

    if not jobs:
        return []
    results = regular_or_missing(Path(results))
    with ExitStack() as held:
        held.enter_context(sole_writer(results))  # before any work: a second run is told at once
        data = dict(data or {})
        for j in jobs:
            if j.dataset not in data:
                data[j.dataset] = prepare(j.dataset, subset=j.subset, seed=j.seed, root=root)
            elif data[j.dataset].subset != j.subset:
                raise ValueError(
                    f"{j.dataset}: the data given is a subset of {data[j.dataset].subset}, the job's {j.subset}"
                )
        runner = _on_cluster(scheduler, jobs, data) if scheduler else _locally(jobs, data, workers)
        written = []
        _stopping.clear()
        bar = held.enter_context(
            tqdm(total=len(jobs), unit="job", desc="benchmark", file=sys.stderr, disable=not progress)
        )
        try:
            for record in runner:
                if record is None:
                    continue
                append(results, record)
                written.append(record)
                bar.update()
                if record["status"] != "ok" and progress:
                    bar.write(f"{record['dataset']} {record['name']} {record['parameter']}: {record['status']}")
        except BaseException:  # interrupted: end the jobs now running here, record none of them
            _stopping.set()
            with _live_lock:
                for child in _live:
                    child.kill()
            raise
    return written


def _locally(jobs: list[Job], data: dict[str, Data], workers: int) -> Iterator[dict[str, Any] | None]:
    from joblib import Parallel, delayed

    _clean_stale()
    with _scratch() as tmp:
        folders = {name: standardise(d, tmp / name) for name, d in data.items()}
        # Threads supervise, processes compute: each job is a process of its own (job.py).
        tasks = (delayed(supervise)(folders[j.dataset], j) for j in jobs)
        yield from Parallel(n_jobs=workers, backend="threading", return_as="generator_unordered")(tasks)


#: The marker in each temporary folder a run makes, holding the folder's own name (its random
#: part is the token): a folder without it, or not this user's, is not fmnist's to remove.
MARKER = ".fmnist-benchmark"


def _clean_stale() -> None:
    """Removes the standardised copies that runs killed before they could clean up left in the
    temporary folder: ``fmnist-benchmark-<pid>-<token>`` of a process that is gone, this user's,
    holding the marker with its own name. Anything else of that name (a user's
    ``fmnist-benchmark-2024-results``) is left alone."""
    import shutil

    for folder in Path(tempfile.gettempdir()).glob("fmnist-benchmark-*-*"):
        pid = folder.name.split("-")[2]
        try:
            st, marker = folder.lstat(), folder / MARKER
            mark = marker.lstat()
            ours = not hasattr(os, "geteuid") or st.st_uid == mark.st_uid == os.geteuid()
            if not (pid.isdigit() and stat.S_ISDIR(st.st_mode) and stat.S_ISREG(mark.st_mode) and ours):
                continue
            if marker.read_bytes() != folder.name.encode():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # no marker, unreadable, or alive (another user's): not ours to touch
            pass


@contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder of this run's, marked as fmnist's; removed when the run ends."""
    with tempfile.TemporaryDirectory(prefix=f"fmnist-benchmark-{os.getpid()}-") as tmp:
        (Path(tmp) / MARKER).write_bytes(Path(tmp).name.encode())
        yield Path(tmp)


#: How long ``--scheduler``'s address is tried before the run gives up.
CONNECT_TIMEOUT = "20s"

# A Dask worker's standardised copies of the datasets it was sent, by token (the few newest).
_copies: dict[str, Path] = {}
_copies_lock = threading.Lock()
_KEEP = 4


def _on_worker(data: Data, job: Job) -> dict[str, Any] | None:
    """A job on a Dask worker: the worker's standardised copy of ``data`` is made once, in its
    scratch space."""
    import shutil

    with _copies_lock:
        folder = _copies.get(data.token)
        if folder is None:
            # In the worker's own scratch space: Dask removes it when the worker closes, and a
            # killed worker's is purged by the next worker started there.
            from distributed import get_worker

            scratch = Path(get_worker().local_directory)
            folder = standardise(data, Path(tempfile.mkdtemp(prefix=f"fmnist-benchmark-{os.getpid()}-", dir=scratch)))
            _copies[data.token] = folder
            while len(_copies) > _KEEP:
                shutil.rmtree(_copies.pop(next(iter(_copies))), ignore_errors=True)
    return supervise(folder, job)


def _on_cluster(address: str, jobs: list[Job], data: dict[str, Data]) -> Iterator[dict[str, Any] | None]:
    from distributed import Client, as_completed

    with ExitStack() as stack:
        try:
            client = stack.enter_context(Client(address, timeout=CONNECT_TIMEOUT))
        except OSError as e:
            raise OSError(f"no Dask scheduler answered at {address}: {e}") from e
        # Each dataset goes to every worker once; the jobs carry only their configuration.
        sent = {name: client.scatter(d, broadcast=True, hash=False) for name, d in data.items()}
        futures = {
            client.submit(_on_worker, sent[j.dataset], j, pure=False, key=f"fmnist-benchmark-{uuid.uuid4().hex}"): j
            for j in jobs
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except Exception as e:  # the job's worker died too often (KilledWorker), or the cluster failed it
                yield _failed(job, f"on the cluster: {type(e).__name__}: {e}")
            future.release()


def _failed(job: Job, reason: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "dataset": job.dataset,
        "subset": job.subset,
        "name": job.config.classifier,
        "parameter": job.config.parameter,
        "seed": job.seed,
        **versions(),
        "status": "failed",
        "reason": reason,
        "start_time": now,
        "done_time": now,
    }


def select(configs: Iterable[Configuration], where: Iterable[str]) -> list[Configuration]:
    """The configurations whose seed parameters match every ``KEY=VALUE`` of ``where`` that names
    one of their parameters (``p=2`` keeps the k-NN with p=2 and leaves other classifiers be)."""
    wanted = []
    for w in where:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise ValueError(f"--where {w!r}: expected KEY=VALUE, e.g. n_estimators=10")
        wanted.append((k, v))
    return [c for c in configs if all(str(c.parameter[k]) == v for k, v in wanted if k in c.parameter)]
