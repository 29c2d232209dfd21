"""Many threads reading at once get correct results, and the GIL is released while the engine
inflates, so other Python threads keep running."""

from __future__ import annotations

import sys
import threading
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


def test_gil_is_released_while_inflating(data_dir: Path) -> None:
    # With a switch interval of 5 s, a Python thread holding the GIL is never made to give it up
    # while the engine runs (each call takes a fraction of that): the counter thread can advance
    # during a call only if the engine released the GIL. An event, observed, not a timing.
    data = (data_dir / "train-images-idx3-ubyte.gz").read_bytes()
    count, stop = [0], threading.Event()

    def counter() -> None:
        while not stop.is_set():
            count[0] += 1

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=counter, daemon=True)
    sys.setswitchinterval(5.0)
    try:
        thread.start()
        advanced = []
        for _ in range(10):  # a loaded machine may not run the counter during one call: try a few
            before = count[0]
            fmnist.read_idx(data)
            advanced.append(count[0] - before)
            if advanced[-1]:
                break
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        thread.join()
    assert any(advanced), advanced
