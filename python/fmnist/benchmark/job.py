"""One configuration by the seed's protocol, in a process of its own (``python -m
fmnist.benchmark.job``): the parent kills it at its time limit, and its memory limit is its own.

It reads its job as JSON on standard input (the folder of the standardised splits, the
configuration, repeats, seed, memory limit), writes ``STARTED`` on a line of its own to standard
output once its imports are done and its data mapped (the parent's time limit counts from
there: the fit and the scoring, not the interpreter's start-up), then one JSON object: the
scores with their seeds and times, or what stopped it. Its threads are the parent's to set
(``OMP_NUM_THREADS`` and the like are 1: the jobs are what runs in parallel).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

#: The seed's early stop: two repeats whose scores agree this closely end the repeats.
INVARIANT = 1e-3
STARTED = b"fmnist-job-started\n"  #: the line that starts the parent's clock


def _limit_memory(limit: int | None) -> None:
    """Caps the process's data (heap and private mappings: what allocations take, not the
    read-only mapped splits) at ``limit`` bytes: an allocation past it raises MemoryError."""
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _die_with_parent() -> None:
    """Linux: killed when the thread that started it ends (a run or a Dask worker killed mid-job
    takes its job with it, rather than leaving it running as an orphan). The supervisor names
    itself in ``FMNIST_BENCHMARK_PARENT``: a parent that went before the call is seen here."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != int(os.environ.get("FMNIST_BENCHMARK_PARENT", os.getppid())):
            os._exit(1)


def started() -> None:
    """Tells the parent the work begins (its time limit starts now)."""
    sys.stdout.buffer.write(STARTED)
    sys.stdout.buffer.flush()


def protocol(folder: str, config: Any, repeats: int, seed: int, memory_limit: int | None = None) -> dict[str, Any]:
    """The seed's repeats: per repeat ``j`` the training set shuffled with ``seed + j``, the
    model (its own randomness seeded alike) fitted, then scored on the test set; the repeats
    stop early when the first two scores agree within ``INVARIANT``. The memory limit starts
    once scikit-learn and the estimator's module are imported (libraries loaded under it would
    fail to map rather than raise MemoryError); it caps the process's data, imports included."""
    import numpy as np
    from sklearn.utils import shuffle

    config.build()  # imports the estimator's module
    _limit_memory(memory_limit)
    x, y, xt, yt = (np.load(os.path.join(folder, f"{n}.npy"), mmap_mode="r") for n in ("x", "y", "xt", "yt"))
    started()
    scores: list[float] = []
    seeds: list[int] = []
    spent: list[float] = []
    for j in range(repeats):
        xs, ys = shuffle(x, y, random_state=seed + j)
        t = time.perf_counter()
        model = _seeded(config.build(), seed + j).fit(xs, ys)
        scores.append(float(model.score(xt, yt)))
        spent.append(time.perf_counter() - t)
        seeds.append(seed + j)
        del xs, ys, model
        if len(scores) == 2 and abs(scores[0] - scores[1]) < INVARIANT:
            break
    return {"score": scores, "shuffle_seeds": seeds, "time_per_fit": spent}


def _seeded(model: Any, seed: int) -> Any:
    """``model`` with every ``random_state`` it has (its own, a wrapped estimator's) set to
    ``seed``: the seed's runner left them unset, so its repeats also differed by the models' own
    randomness; here a result is reproduced exactly from its recorded seeds."""
    names = [k for k in model.get_params() if k == "random_state" or k.endswith("__random_state")]
    return model.set_params(**{k: seed for k in names}) if names else model


def versions() -> dict[str, str]:
    """What ran the job: scikit-learn, numpy, fmnist and the host."""
    import numpy as np
    import sklearn

    from .. import __version__

    return {
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "fmnist": __version__,
        "host": platform.node(),
    }


def main() -> None:
    _die_with_parent()
    spec = json.loads(sys.stdin.read())
    out: dict[str, Any]
    try:
        from .grid import Configuration

        config = Configuration(**spec["config"])
        found = versions()
        out = {**found, **protocol(spec["folder"], config, spec["repeats"], spec["seed"], spec.get("memory_limit"))}
    except MemoryError as e:
        out = {"status": "out of memory", "reason": f"MemoryError: {e}".rstrip(": ")}
    except Exception as e:  # a configuration scikit-learn refuses at fit time: recorded, the run goes on
        out = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    sys.stdout.buffer.write(json.dumps(out).encode())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
