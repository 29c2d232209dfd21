"""Many threads reading at once get correct results, and the GIL is released while the engine
inflates, so other Python threads keep running."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import fmnist
from fmnist import reference

from .conftest import FILES


def test_many_threads_read_correctly(data_dir: Path) -> None:
    expected = {f: reference.read_idx(data_dir / f) for f in FILES[1:]}
    jobs = [FILES[1 + i % 3] for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda f: (f, fmnist.read_idx(data_dir / f)), jobs))
    for name, array in results:
        assert np.array_equal(array, expected[name])


class Counter:
    """A pure-Python busy loop on its own thread: it can only count while it holds the GIL."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.count += 1

    def progress_during(self, seconds: float) -> int:
        start = self.count
        time.sleep(seconds)  # sleeping releases the GIL: the counter runs freely
        return self.count - start


def test_gil_is_released_while_inflating(data_dir: Path) -> None:
    data = (data_dir / "train-images-idx3-ubyte.gz").read_bytes()
    counter = Counter()
    counter.thread.start()
    try:
        rounds = 3
        t0 = time.perf_counter()
        start = counter.count
        for _ in range(rounds):
            fmnist.read_idx(data)
        during = counter.count - start
        elapsed = time.perf_counter() - t0
        free = counter.progress_during(elapsed)
    finally:
        counter.stop.set()
        counter.thread.join()
    # Holding the GIL would leave the counter a few switch intervals (5 ms each) at most out of
    # hundreds of milliseconds; released, it runs most of the time. A ratio, not a timing.
    assert during > 0.3 * free, (during, free)
