"""Nothing a caller does can crash or hang the process: each case that used to abort, segfault or
hang runs here, in a subprocess where a crash would otherwise take pytest down with it."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import fmnist

from .conftest import PEAK, linux_only


def run(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


# --- 1. a sparse 64 GiB "gzip" file, and max_bytes bounding the work on compressed sources ----


@linux_only  # a sparse file and peak RSS from /proc
def test_a_huge_sparse_gzip_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.gz"
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00")
        f.truncate(64 << 30)
    code = (
        "import sys, gzip, fmnist\n" + PEAK + "before = peak()\n"
        "for max_bytes in (None, 1 << 20):\n"
        "    try:\n"
        "        fmnist.read_idx(sys.argv[1], max_bytes=max_bytes)\n"
        "    except (gzip.BadGzipFile, fmnist.IdxFormatError, MemoryError) as e:\n"
        "        print(type(e).__name__, e)\n"
        "print(peak() - before)\n"
    )
    out = run(code, str(path))
    assert out.returncode == 0, out.stderr
    *errors, grown_kib = out.stdout.strip().splitlines()
    assert len(errors) == 2 and all(str(path) in e for e in errors), errors
    assert int(grown_kib) < 64 * 1024  # read no more than the first block, never the 64 GiB


# What a child read (rchar: bytes through read(), from /proc/self/io) and its peak RSS grew by,
# around each call of fmnist.read_idx on sys.argv[1] with the max_bytes given after it.
COUNTING = """
import sys, fmnist
def proc(name, key):
    with open(name) as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key))
for arg in sys.argv[2:]:
    before = (proc("/proc/self/io", "rchar:"), proc("/proc/self/status", "VmHWM:"))
    try:
        fmnist.read_idx(sys.argv[1], max_bytes=None if arg == "None" else int(arg))
        print("read", end=" ")
    except Exception as e:
        print(type(e).__name__, str(e).replace(" ", "_"), end=" ")
    print(proc("/proc/self/io", "rchar:") - before[0], proc("/proc/self/status", "VmHWM:") - before[1])
"""


def _reads(path: Path, *max_bytes: int | None) -> list[tuple[str, str, int, int]]:
    out = run(COUNTING, str(path), *(str(m) for m in max_bytes))
    assert out.returncode == 0, out.stderr
    rows = [line.split(" ") for line in out.stdout.strip().splitlines()]
    return [(r[0], r[1] if len(r) == 4 else "", int(r[-2]), int(r[-1])) for r in rows]


@linux_only
def test_a_sparse_gzip_with_a_valid_header_is_refused_after_its_first_block(tmp_path: Path) -> None:
    # A real gzip of a 28x28 IDX file, then 10 GiB of zeros: the header says 800 bytes of
    # content, which no gzip needs 10 GiB for; refused before the rest is read.
    import gzip

    path = tmp_path / "padded.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(struct.pack(">BBBBII", 0, 0, 8, 2, 28, 28) + bytes(784)))
        f.truncate(10 << 30)
    (bad, limited) = _reads(path, None, 100)
    assert bad[0] == "BadGzipFile" and "more_than_any_gzip_of_the_796_bytes_of_content" in bad[1]
    assert limited[0] == "IdxFormatError" and "over_max_bytes=100" in limited[1]
    for _, _, read, grown_kib in (bad, limited):
        assert read < 8 << 20 and grown_kib < 64 << 10  # a few MiB read of 10 GiB, no more


@linux_only
def test_a_10_gib_sparse_gzip_with_a_corrupt_stream_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    # The gzip magic and a member header, then a deflate stream that is wrong from its first
    # byte (a stored block whose length and its complement disagree), then 10 GiB of zeros.
    path = tmp_path / "corrupt.gz"
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00" + bytes(6) + b"\x00\x05\x00\x05\x00")
        f.truncate(10 << 30)
    for error, message, read, grown_kib in _reads(path, None, 1000):
        assert error == "BadGzipFile" and message.startswith(str(path)), message
        assert read < 8 << 20 and grown_kib < 64 << 10


# --- 2. fmnist calls in daemon threads when the interpreter exits ------------------------------

DAEMON = """
import sys, threading, time
import numpy as np
import fmnist
big, small, delay = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3])
images = np.zeros((2000, 28, 28), np.uint8)
labels = np.zeros(2000, np.uint8)
# Each call releases the GIL and takes it back: long calls (the training images, ~0.1 s) are
# mid-inflate when exit begins, short ones (the test labels, in memory) are asking for the GIL
# back at any moment. Both kinds, on every entry point, in one process.
calls = {
    "read_idx": [lambda: fmnist.read_idx(big), lambda: fmnist.read_idx(small)],
    "read_idx_many": [lambda: fmnist.read_idx_many([big, small]), lambda: fmnist.read_idx_many([small, small])],
    "batches": [lambda: [b for b in fmnist.batches(images, labels, 256, dtype="float32")]],
}
def work(call):
    while True:
        call()
for call in [c for cs in calls.values() for c in cs for _ in range(2)]:
    threading.Thread(target=work, args=(call,), daemon=True).start()
time.sleep(delay)
"""


def test_daemon_threads_at_interpreter_exit_never_abort(data_dir: Path) -> None:
    # CPython before 3.14 ends a daemon thread that asks for the GIL during finalisation with
    # pthread_exit, which aborts through Rust frames unless the engine parks it (src/python/exit.rs,
    # detach). Five processes of ten threads each, exiting at staggered moments: with the parking
    # taken out, every one of them aborted in every run here.
    big = str(data_dir / "train-images-idx3-ubyte.gz")
    small = str(data_dir / "t10k-labels-idx1-ubyte.gz")
    delays = [f"{0.05 + 0.1 * i:.2f}" for i in range(5)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda d: run(DAEMON, big, small, d, timeout=60), delays))
    assert [o.returncode for o in outs] == [0] * len(outs), [
        (d, o.returncode, o.stderr[-300:]) for d, o in zip(delays, outs) if o.returncode
    ]


# --- 3. zero-width rows, and a failure in the batch maker ---------------------------------------


def test_zero_width_rows_make_batches() -> None:
    images = np.zeros((1000, 0), np.uint8)
    labels = np.arange(1000)
    got = list(fmnist.batches(images, labels, 100, dtype="float32", shuffle=False))
    assert [x.shape for x, _ in got] == [(100, 0)] * 10 and all(x.dtype == np.float32 for x, _ in got)
    assert np.array_equal(np.concatenate([y for _, y in got]), labels)
    assert [x.shape for x, _ in fmnist.batches(images, labels, 300)] == [(300, 0)] * 3 + [(100, 0)]


# --- 4. resizing the source arrays during iteration -----------------------------------------------


def test_resizing_the_images_during_iteration_is_refused(data_dir: Path) -> None:
    code = (
        "import numpy as np, fmnist\n"
        "x = np.arange(5000 * 784, dtype=np.uint8).reshape(5000, 784) + 0\n"
        "y = np.arange(5000) + 0\n"
        "it = fmnist.batches(x, y, 100, shuffle=False)\n"
        "first = next(it)\n"
        "for a in (x, y):\n"
        "    try:\n"
        "        a.resize((10,) + a.shape[1:], refcheck=False)\n"
        "        print('resized')\n"
        "    except ValueError as e:\n"
        "        print('refused')\n"
        "rest = list(it)\n"
        "assert np.array_equal(np.concatenate([first[1]] + [b for _, b in rest]), np.arange(5000))\n"
        "print(len(rest))\n"
        "del it, rest\n"
        "x.resize((10, 784), refcheck=False)  # once the iterator is gone, the array is the user's again\n"
        "print(x.shape)\n"
    )
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "refused", "49", "(10,", "784)"]


def test_a_view_keeps_its_base_from_being_resized() -> None:
    base = np.zeros((2000, 10), np.uint8)
    it = fmnist.batches(base[:1000], np.zeros(1000), 10)
    next(it)
    with pytest.raises(ValueError, match="resize"):
        base.resize((10, 10), refcheck=False)
    it.close()


# --- 5. sizes numpy cannot hold ---------------------------------------------------------------


@pytest.mark.parametrize("dims", [(0xFFFFFFFF, 0xFFFFFFFF, 0), (0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)])
def test_sizes_numpy_cannot_hold_are_an_idx_format_error(tmp_path: Path, dims: tuple[int, ...]) -> None:
    path = tmp_path / "zero.idx"
    path.write_bytes(struct.pack(f">BBBB{len(dims)}I", 0, 0, 8, len(dims), *dims))
    where = re.escape(str(path))  # the path is the regex's text: tmp_path may hold "+" or "("
    with pytest.raises(fmnist.IdxFormatError, match=f"{where}: sizes .* overflow this machine's address space"):
        fmnist.read_idx(path)
    # A zero size with sizes numpy can hold is a valid, empty array.
    path.write_bytes(struct.pack(">BBBB3I", 0, 0, 8, 3, 0xFFFF, 0xFFFF, 0))
    assert fmnist.read_idx(path).shape == (0xFFFF, 0xFFFF, 0)


# --- 6. one iterator, several threads ------------------------------------------------------------


def test_threads_sharing_an_iterator_get_each_batch_once() -> None:
    n = 20000
    images = np.zeros((n, 28, 28), np.uint8)
    labels = np.arange(n)
    it = fmnist.batches(images, labels, 64, dtype="float32")
    seen: list[npt.NDArray[Any]] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for _, y in it:
                seen.append(y)
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(seen) == -(-n // 64)
    assert np.array_equal(np.sort(np.concatenate(seen)), labels)


def test_batches_is_a_context_manager() -> None:
    images = np.zeros((1000, 4), np.uint8)
    with fmnist.batches(images, np.zeros(1000), 10) as it:
        next(it)
        assert len(it) == 99
    assert len(it) == 0
    with pytest.raises(StopIteration):
        next(it)


# --- 4. a refused allocation is a MemoryError naming what it was for, never an abort ----------

UNDER_A_LIMIT = """
import resource, sys
import numpy as np
import fmnist

def vm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmSize:")) * 1024

images = np.zeros((200, 1000, 1000), np.uint8)  # 200 MB, before the limit
labels = np.zeros(200, np.uint8)
big = np.zeros((400, 1000, 1000), np.uint8)
path = sys.argv[1]
with open(path, "wb") as f:  # a valid raw IDX file of 700 MB, sparse
    f.write(bytes([0, 0, 8, 3]) + (700).to_bytes(4, "big") + (1000).to_bytes(4, "big") * 2)
    f.truncate(16 + 700 * 1000 * 1000)
indices = np.broadcast_to(np.int64(3), (1 << 27,))  # 134M examples, in 8 bytes
limit = vm() + (600 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
cases = {
    "batches": lambda: next(fmnist.batches(images, labels, 200, dtype="float32")),
    "Augment.draws": lambda: fmnist.Augment(pad=2, erase=0.5).draws(indices),
    "read_idx": lambda: fmnist.read_idx(path),
    "write_idx": lambda: fmnist.write_idx(path + ".gz", big, compress=True),
}
for name, call in cases.items():
    try:
        call()
        print(name, "no error")
    except MemoryError as e:
        print(name, "MemoryError:", e)
"""


@linux_only
def test_a_refused_allocation_is_a_memory_error_naming_what_it_was_for(tmp_path: Path) -> None:
    out = run(UNDER_A_LIMIT, str(tmp_path / "big.idx"), timeout=300)
    assert out.returncode == 0, out.stderr  # no abort (SIGABRT: -6)
    got = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert got["batches"] == "MemoryError: cannot allocate 800000000 bytes for batch 0's 200 images (float32)"
    assert got["Augment.draws"].startswith("MemoryError: cannot allocate 2147483648 bytes for the draws of 134217728")
    assert (
        got["read_idx"]
        == f"MemoryError: {tmp_path / 'big.idx'}: cannot allocate 700000000 bytes for 700 x 1000 x 1000 uint8"
    )
    assert got["write_idx"].startswith("MemoryError: cannot allocate") and "400000016 bytes" in got["write_idx"]
