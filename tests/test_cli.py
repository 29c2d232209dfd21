"""The `fmnist` command line: every command's exit code and output on good and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import cli, datasets

from .conftest import FILES, accepted_by, link
from .httpserver import Server

COMMANDS = ["info", "download", "verify", "sprite", "convert", "bench", "demo"]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    """While it lasts, ``env`` is the whole environment and ``cwd`` the working folder; after
    it, both are put back, and so is the registry (``--registry`` and ``$FMNIST_REGISTRY`` add
    to it)."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_registry, saved_loaded = dict(datasets.DATASETS), dict(datasets._loaded_from_env)
    saved_archives = dict(datasets.ARCHIVES)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        datasets.DATASETS.clear()
        datasets.DATASETS.update(saved_registry)
        datasets.ARCHIVES.clear()
        datasets.ARCHIVES.update(saved_archives)
        datasets._loaded_from_env.clear()
        datasets._loaded_from_env.update(saved_loaded)


def run(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """`fmnist ARGS` as ``cli.main`` runs it, in this process (a subprocess costs ~0.3 s of
    imports), in ``environment(env, cwd)``. test_version covers ``python -m fmnist`` itself."""
    out, err = io.StringIO(), io.StringIO()
    with environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as e:  # argparse: --help, --version and usage errors
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def empty(tmp_path: Path) -> dict[str, str]:
    """No data anywhere: an empty root and an empty search path."""
    return {**os.environ, "FMNIST_HOME": str(tmp_path / "empty-root"), "FMNIST_SEARCH_PATH": str(tmp_path / "none")}


def png_size(path: Path, colour: int = 0) -> tuple[int, int]:
    """A PNG's width and height, its signature, header CRC, depth (8) and colour type checked."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (
        kind == b"IHDR"
        and zlib.crc32(data[12 : 16 + length]) == struct.unpack(">I", data[16 + length : 20 + length])[0]
    )
    width, height, depth, kind = struct.unpack(">IIBB", data[16:26])
    assert (depth, kind) == (8, colour)
    return width, height


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command: str | None, empty: dict[str, str], tmp_path: Path) -> None:
    out = run(*([command] if command else []), "--help", env=empty, cwd=tmp_path)
    assert out.returncode == 0 and "usage: fmnist" in out.stdout


def test_usage_errors_exit_2(empty: dict[str, str], tmp_path: Path) -> None:
    assert run(env=empty, cwd=tmp_path).returncode == 2
    assert run("frobnicate", env=empty, cwd=tmp_path).returncode == 2
    bad = run("info", "cifar", env=empty, cwd=tmp_path)
    assert bad.returncode == 2 and "unknown dataset 'cifar'" in bad.stderr


def test_info(present: dict[str, str], empty: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    out = run("info", env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "train-images-idx3-ubyte.gz: " in out.stdout
        and f"[fmnist; verified by {accepted_by(data_dir / FILES[0])}: " in out.stdout
    )
    assert "(60000, 28, 28) uint8" in out.stdout and "T-shirt/top=6000" in out.stdout
    missing = run("info", env=empty, cwd=tmp_path)
    assert missing.returncode == 1 and "NOT FOUND" in missing.stdout and "fmnist download" in missing.stderr


def test_download(empty: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    with Server({f: (data_dir / f).read_bytes() for f in FILES}) as server:
        good = run("download", "--mirror", server.mirror("ok"), env=empty, cwd=tmp_path)
        assert good.returncode == 0, good.stderr
        assert good.stdout.split() == [str(tmp_path / "empty-root" / "fashion-mnist" / f) for f in FILES]
        other = {**empty, "FMNIST_HOME": str(tmp_path / "root2")}
        bad = run("download", "--mirror", server.mirror("404"), env=other, cwd=tmp_path)
        assert bad.returncode == 1 and "every mirror failed" in bad.stderr and "HTTP 404" in bad.stderr


def test_verify(present: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    out = run("verify", env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    for f in FILES:
        assert f"{f} [fmnist]: OK ({accepted_by(data_dir / f)}: " in out.stdout
    broken = tmp_path / "search" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    broken.unlink()
    broken.write_bytes((data_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()[:-10])
    bad = run("verify", env=present, cwd=tmp_path)
    assert bad.returncode == 1 and "t10k-labels-idx1-ubyte.gz" in bad.stdout and "FAILED: unreadable" in bad.stdout


def test_sprite(present: dict[str, str], empty: dict[str, str], tmp_path: Path) -> None:
    out = run("sprite", "-o", str(tmp_path / "s.png"), env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert png_size(tmp_path / "s.png") == (30 * 28, 30 * 28) and "test split" in out.stdout
    small = run("sprite", "--columns", "10", "-o", str(tmp_path / "t.png"), env=empty, cwd=tmp_path)
    assert small.returncode == 0 and png_size(tmp_path / "t.png") == (280, 840) and "bundled sample" in small.stdout
    too_many = run("sprite", "--columns", "40", "-o", str(tmp_path / "u.png"), env=empty, cwd=tmp_path)
    assert too_many.returncode == 1 and "has 100 images; the sprite needs 120" in too_many.stderr
    assert not (tmp_path / "u.png").exists()


def test_convert(empty: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    src = data_dir / "t10k-labels-idx1-ubyte.gz"
    out = run("convert", str(src), str(tmp_path / "labels.npy"), env=empty, cwd=tmp_path)
    assert out.returncode == 0 and "(10000,) uint8" in out.stdout
    assert np.array_equal(np.load(tmp_path / "labels.npy"), fmnist.read_idx(src))
    back = run("convert", str(tmp_path / "labels.npy"), str(tmp_path / "labels.idx.gz"), env=empty, cwd=tmp_path)
    assert back.returncode == 0 and np.array_equal(fmnist.read_idx(tmp_path / "labels.idx.gz"), fmnist.read_idx(src))
    xz = run("convert", str(tmp_path / "labels.npy"), str(tmp_path / "labels.idx.xz"), env=empty, cwd=tmp_path)
    assert xz.returncode == 0 and (tmp_path / "labels.idx.xz").read_bytes()[:6] == b"\xfd7zXZ\x00"
    assert np.array_equal(fmnist.read_idx(tmp_path / "labels.idx.xz"), fmnist.read_idx(src))
    np.save(tmp_path / "wide.npy", np.zeros(3, np.int64))
    wide = run("convert", str(tmp_path / "wide.npy"), str(tmp_path / "wide.idx"), env=empty, cwd=tmp_path)
    assert wide.returncode == 1 and "IDX cannot hold an array of dtype int64" in wide.stderr
    same = run("convert", str(src), str(tmp_path / "x.idx"), env=empty, cwd=tmp_path)
    assert same.returncode == 1 and "exactly one of SOURCE and DEST must end in .npy" in same.stderr
    gone = run("convert", str(tmp_path / "missing.gz"), str(tmp_path / "y.npy"), env=empty, cwd=tmp_path)
    assert gone.returncode == 1 and "No such file" in gone.stderr


def test_bench(present: dict[str, str], empty: dict[str, str], tmp_path: Path) -> None:
    out = run("bench", "--rounds", "1", env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "fmnist.read_idx_many" in out.stdout and "x the reference" in out.stdout
    assert "loading 4 files (55.0 MB decompressed)" in out.stdout
    sample = run("bench", "--rounds", "1", env=empty, cwd=tmp_path)
    assert sample.returncode == 0 and "timing the bundled sample files" in sample.stderr
    bad = run("bench", "--rounds", "0", env=present, cwd=tmp_path)
    assert bad.returncode == 2 and "must be at least 1, not 0" in bad.stderr


def test_demo_with_the_dataset_then_with_nothing(
    present: dict[str, str], empty: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    out = run("demo", "--no-download", env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert all(f"{f} [fmnist; {accepted_by(data_dir / f)}: " in out.stdout for f in FILES), out.stdout
    assert "(warm cache)" in out.stdout and "per class: T-shirt/top=6000" in out.stdout
    assert png_size(tmp_path / "fmnist-sprite.png") == (840, 840)
    bare = run("demo", "--no-download", "-o", "bare.png", env=empty, cwd=tmp_path)
    assert bare.returncode == 0, bare.stderr
    assert "FALLING BACK TO THE BUNDLED SAMPLE" in bare.stdout and "T-shirt/top=100" in bare.stdout
    assert png_size(tmp_path / "bare.png") == (840, 840)
    other = run("demo", "mnist", "--no-download", "-o", "mnist.png", env=empty, cwd=tmp_path)
    assert other.returncode == 1 and "mnist: no verified copy of 4 file(s)" in other.stderr  # no MNIST sample
    assert not (tmp_path / "mnist.png").exists()


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "fmnist", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"fmnist {fmnist.__version__}"


def test_default_root_follows_the_platform(tmp_path: Path) -> None:
    # In a child process: HOME, XDG_CACHE_HOME and FMNIST_HOME are read when the root is needed.
    code = "import fmnist.loaders as l; print(l.data_root())"
    env = {k: v for k, v in os.environ.items() if k != "FMNIST_HOME"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"))

    def root(**extra: str) -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**env, **extra})
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    if sys.platform == "linux":
        assert root() == str(tmp_path / "xdg" / "fmnist")
        (tmp_path / "home" / ".cache" / "fmnist").mkdir(parents=True)  # no earlier release to follow
        assert root() == str(tmp_path / "xdg" / "fmnist")
    assert root(FMNIST_HOME=str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_every_cli_error_is_one_line_and_exit_1(empty: dict[str, str], tmp_path: Path) -> None:
    np.save(tmp_path / "i64.npy", np.arange(6))  # numpy's default int64: IDX cannot hold it
    out = run("convert", "i64.npy", "out.idx", env=empty, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "IDX cannot hold an array of dtype int64" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "out.idx").exists()


def test_aliases_the_api_accepts_work_on_the_command_line(present: dict[str, str], tmp_path: Path) -> None:
    for alias in ("fashion_mnist", "FashionMNIST", "fashion-mnist"):
        out = run("info", alias, env=present, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "(fashion-mnist): https://github.com/zalandoresearch/fashion-mnist" in out.stdout
    assert fmnist.datasets.get("FashionMNIST").name == "fashion-mnist"


def test_sprite_uses_the_split_asked_for(data_dir: Path, tmp_path: Path) -> None:
    # Only the test split on the machine: `--split test` draws it, not the bundled sample.
    folder = tmp_path / "search" / "fashion-mnist"
    folder.mkdir(parents=True)
    for f in FILES[2:]:
        link(data_dir / f, folder / f)
    env = {**os.environ, "FMNIST_HOME": str(tmp_path / "root"), "FMNIST_SEARCH_PATH": str(tmp_path / "search")}
    out = run("sprite", "--split", "test", "-o", "s.png", env=env, cwd=tmp_path)
    assert out.returncode == 0 and "fashion-mnist test split" in out.stdout, out.stdout + out.stderr
    missing = run("sprite", "--split", "train", "-o", "t.png", env=env, cwd=tmp_path)
    assert "bundled sample" in missing.stdout  # Fashion-MNIST's train split is absent: the sample, said so


def test_help_names_the_environment(empty: dict[str, str], tmp_path: Path) -> None:
    out = run("--help", env=empty, cwd=tmp_path)
    assert all(v in out.stdout for v in ("FMNIST_HOME", "FMNIST_SEARCH_PATH", "FMNIST_CACHE"))


def test_demo_fallback_gives_every_reason(empty: dict[str, str], tmp_path: Path) -> None:
    out = run("demo", "--no-download", env=empty, cwd=tmp_path)
    assert out.returncode == 0 and "FALLING BACK TO THE BUNDLED SAMPLE" in out.stdout
    for f in FILES:  # each missing file is named, not only the first line of the error
        assert f in out.stdout


def test_verify_and_info_fail_on_a_corrupt_cache_and_the_next_load_replaces_it(
    present: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    assert run("info", env=present, cwd=tmp_path).returncode == 0

    def load() -> Any:
        with environment(present, tmp_path):
            return fmnist.load_data()

    load()
    cache = Path(present["FMNIST_HOME"]) / "fashion-mnist" / "t10k-labels-idx1-ubyte"
    good = cache.read_bytes()

    def corrupt() -> None:  # rewritten in place, size and mtime put back (its ctime moves)
        st = cache.stat()
        cache.chmod(0o644)
        data = bytearray(cache.read_bytes())
        data[-1] ^= 1
        cache.write_bytes(bytes(data))
        os.utime(cache, ns=(st.st_atime_ns, st.st_mtime_ns))

    corrupt()
    out = run("verify", env=present, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.count(f"{cache} [") == 1 and "[fmnist warm cache]: FAILED" in out.stdout
    assert cache.exists()  # fmnist's own file: verify reports it, the next load replaces it
    (_, (_, y_test)) = load()
    assert y_test.tobytes() == good[8:] and cache.read_bytes() == good  # replaced, by rename
    assert run("verify", env=present, cwd=tmp_path).returncode == 0
    corrupt()
    info = run("info", env=present, cwd=tmp_path)
    assert info.returncode == 1 and "FAILED" in info.stdout and "the next load replaces it" in info.stdout


def test_a_dataset_from_a_registry_file_in_every_command(tmp_path: Path) -> None:
    from .resolving import _my_digits

    path, blobs, arrays = _my_digits(tmp_path)
    raw = tmp_path / "search" / "MyDigits" / "raw"  # its torchvision-style folder
    raw.mkdir(parents=True)
    for name, blob in blobs.items():
        (raw / name).write_bytes(blob)
    env = {**os.environ, "FMNIST_HOME": str(tmp_path / "root"), "FMNIST_SEARCH_PATH": str(tmp_path / "search")}
    out = run("info", "my-digits", "--registry", str(path), env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "My digits (my-digits)" in out.stdout and "per class: zero=100, one=100, two=100" in out.stdout
    env["FMNIST_REGISTRY"] = str(path)
    out = run("verify", "my-digits", env=env, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.count("OK (stored_md5: ") == 4, out.stdout + out.stderr
    out = run("sprite", "my-digits", "--columns", "10", "-o", str(tmp_path / "s.png"), env=env, cwd=tmp_path)
    assert out.returncode == 0 and png_size(tmp_path / "s.png") == (10 * 12, 3 * 3 * 12), out.stderr
    (raw / "digits-test-labels.gz").write_bytes(blobs["digits-train-labels.gz"])  # the wrong file
    out = run("verify", "my-digits", env=env, cwd=tmp_path)
    line = next(x for x in out.stdout.splitlines() if "raw/digits-test-labels.gz [" in x.replace(os.sep, "/"))
    assert out.returncode == 1 and "FAILED: " in line  # 300 labels, not 90
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace('kind = "images"', 'kind = "pictures"', 1))
    out = run("info", "--registry", str(bad), env=env, cwd=tmp_path)
    assert (
        out.returncode == 1
        and out.stderr.startswith("fmnist: ")
        and ".kind: must be 'images' or 'labels'" in out.stderr
    )
    assert len(out.stderr.strip().splitlines()) == 1


def test_demo_says_which_mirror_and_attempt_it_waits_on(empty: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    # A mirror that stalls (answers after 2 s) on the test labels and has none of the other files,
    # and --timeout 0.5: each attempt on the stalled file is named as it starts, then the next
    # mirror serves.
    labels = FILES[3]
    with (
        Server({labels: (data_dir / labels).read_bytes()}, delay=2.0) as stalled,
        Server({f: (data_dir / f).read_bytes() for f in FILES}) as good,
    ):
        out = run(
            "demo", "--timeout", "0.5", "--mirror", stalled.mirror("slow"), "--mirror", good.mirror("ok"),
            "-o", "d.png", env=empty, cwd=tmp_path,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for attempt in (1, 2, 3):
        waiting = (
            f"fmnist: {labels}: waiting on {stalled.mirror('slow')}{labels} (attempt {attempt} of 3, 0.5 s timeout)"
        )
        assert waiting in out.stderr
    assert f"{labels}: waiting on {good.mirror('ok')}{labels} (attempt 1 of 3" in out.stderr
    assert f"{FILES[0]}: waiting on {stalled.mirror('slow')}{FILES[0]} (attempt 1 of 3" in out.stderr  # then a 404
    assert "[download; " in out.stdout and ": downloaded, " in out.stdout and "FALLING BACK" not in out.stdout


@pytest.mark.parametrize("timeout", ["0", "-1", "inf", "nan", "soon"])
def test_timeouts_must_be_finite_and_positive(timeout: str, empty: dict[str, str], tmp_path: Path) -> None:
    for command in ("demo", "download"):
        out = run(command, "--timeout", timeout, env=empty, cwd=tmp_path)
        assert out.returncode == 2 and "--timeout" in out.stderr and "seconds" in out.stderr


def test_bench_names_where_it_found_the_data(present: dict[str, str], tmp_path: Path) -> None:
    out = run("bench", "--rounds", "1", env=present, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"fashion-mnist from {tmp_path / 'search' / 'fashion-mnist'} (fmnist)" in out.stdout
    # Loaded once, the data is in the warm cache; with the copy gone, the cache is what is timed.
    assert run("demo", "--no-download", "-o", "d.png", env=present, cwd=tmp_path).returncode == 0
    for f in FILES:
        (tmp_path / "search" / "fashion-mnist" / f).unlink()
    cached = run("bench", "--rounds", "1", env=present, cwd=tmp_path)
    assert cached.returncode == 0 and "not on this machine" not in cached.stderr, cached.stderr
    assert f"fashion-mnist from {Path(present['FMNIST_HOME']) / 'fashion-mnist'} (fmnist warm cache)" in cached.stdout
    assert "loading 4 files (55.0 MB decompressed)" in cached.stdout


def test_download_of_some_splits(empty: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    with Server({f: (data_dir / f).read_bytes() for f in FILES}) as server:
        out = run("download", "--split", "test", "--mirror", server.mirror("ok"), env=empty, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        folder = tmp_path / "empty-root" / "fashion-mnist"
        assert out.stdout.split() == [str(folder / f) for f in FILES[2:]]
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(FILES[2:])
        assert server.hits[("ok", FILES[0])] == 0
        bad = run("download", "--split", "validation", "--mirror", server.mirror("ok"), env=empty, cwd=tmp_path)
        assert bad.returncode == 1 and "split 'validation': fashion-mnist has the splits 'train' or" in bad.stderr


def test_the_extras_commands_say_what_to_install_and_the_report_needs_none(tmp_path: Path) -> None:
    # A Python where scikit-learn, openTSNE, umap-learn, joblib and distributed cannot be imported
    # (as without the extras), running the real command line.
    code = (
        "import sys; sys.modules.update(dict.fromkeys(['sklearn', 'openTSNE', 'umap', 'joblib', 'distributed']));"
        "from fmnist.cli import main; sys.exit(main(sys.argv[1:]))"
    )

    def fmnist_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )

    out = fmnist_without_extras("embed", "--datasets", "fashion-mnist", "--method", "pca")
    assert out.returncode == 1 and "pip install 'fmnist[viz]'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "fmnist-embedding.png").exists()
    out = fmnist_without_extras("benchmark", "run", "--datasets", "fashion-mnist", "--dry-run")
    assert out.returncode == 1 and "pip install 'fmnist[benchmark]'" in out.stderr, out.stderr
    record: dict[str, Any] = {"dataset": "fashion-mnist", "name": "GaussianNB", "parameter": {"priors": [0.1] * 10}}
    record.update(status="ok", reason="", mean_accuracy=0.57, std_accuracy=0.0, time_per_repeat=0.7, num_repeat=2)
    (tmp_path / "r.jsonl").write_text(json.dumps(record) + "\n")
    out = fmnist_without_extras("benchmark", "report", "r.jsonl", "--markdown")
    assert out.returncode == 0, out.stderr
    assert (
        "| GaussianNB | priors=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] | all | 0.570 ± 0.000 | 0.7 | 0.511 |"
        in out.stdout
    )


def test_a_reader_that_goes_away_ends_the_command_quietly(data_dir: Path, tmp_path: Path) -> None:
    # `fmnist demo | head -3`, with head already gone: the pipe's reading end is closed before
    # the command writes a byte. It ends as a Unix tool ends on a broken pipe: no message, 141.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "FMNIST_HOME": str(tmp_path / "root"), "FMNIST_SEARCH_PATH": str(data_dir.parent)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fmnist", "demo", "--no-download", "-o", str(tmp_path / "s.png")],
            stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=300,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == b"", done.stderr.decode()


def test_messages_name_the_argument_or_path_they_are_about(empty: dict[str, str], tmp_path: Path) -> None:
    out = run("--registry", str(tmp_path), "info", env=empty, cwd=tmp_path)  # a folder, not a file
    assert out.returncode == 1 and str(tmp_path) in out.stderr and "not a regular file" in out.stderr, out.stderr
    assert "Errno 21" not in out.stderr
    out = run("verify", "qmnist", env=empty, cwd=tmp_path)  # nothing there: it says what to run
    assert out.returncode == 1 and "MISSING" in out.stdout and "fmnist download qmnist" in out.stdout, out.stdout
    out = run("benchmark", "run", "--seed", "-1", "--dry-run", env=empty, cwd=tmp_path)
    assert out.returncode == 2 and "argument --seed: must be a whole number from 0" in out.stderr, out.stderr


def test_convert_writes_through_devices_and_fifos_and_refuses_a_folder(tmp_path: Path) -> None:
    # DEST by write_idx's rule: /dev/null stays the device (as root, a rename would have
    # replaced it with a regular file), a FIFO is written through, a symlink is followed and
    # stays, a folder is refused; no temporary file is left anywhere.
    import stat
    import threading

    src = tmp_path / "a.npy"
    np.save(src, np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert run("convert", str(src), "/dev/null", env=dict(os.environ), cwd=tmp_path).returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe.idx"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run("convert", str(src), str(fifo), env=dict(os.environ), cwd=tmp_path).returncode == 0
    reader.join(60)
    assert got and np.array_equal(fmnist.read_idx(got[0]), np.load(src)) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target, link_ = tmp_path / "real.idx.gz", tmp_path / "link.idx.gz"
    target.write_bytes(b"old")
    link_.symlink_to(target)
    assert run("convert", str(src), str(link_), env=dict(os.environ), cwd=tmp_path).returncode == 0
    assert link_.is_symlink() and np.array_equal(fmnist.read_idx(target), np.load(src))
    folder = tmp_path / "out.idx"
    folder.mkdir()
    out = run("convert", str(src), str(folder), env=dict(os.environ), cwd=tmp_path)
    assert out.returncode == 1 and str(folder) in out.stderr and "a folder is there" in out.stderr, out.stderr
    back = tmp_path / "back.npy"
    assert run("convert", str(target), str(back), env=dict(os.environ), cwd=tmp_path).returncode == 0
    assert np.array_equal(np.load(back), np.load(src))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_the_split_options_take_sliced_splits(present: dict[str, str], tmp_path: Path) -> None:
    out = run("sprite", "--split", "test[:20%]", "-o", str(tmp_path / "s.png"), env=present, cwd=tmp_path)
    assert out.returncode == 0 and "fashion-mnist test[:20%] split" in out.stdout, out.stderr
    out = run("sprite", "--split", "test[:1%", env=present, cwd=tmp_path)
    assert out.returncode == 2 and "argument --split: split 'test[:1%': not a split spec" in out.stderr
    out = run("download", "--split", "train[90%:]", "--mirror", "http://127.0.0.1:1/", env=present, cwd=tmp_path)
    assert out.returncode == 1 and "train-images-idx3-ubyte.gz" in out.stderr  # the train files, whole
    assert "t10k" not in out.stderr
