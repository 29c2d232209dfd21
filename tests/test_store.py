"""fmnist's own folder (``fmnist.resolve.store``): the warm cache (mapped, read-only, replaced only
by rename), stamps, the records, and the cache healing itself."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.datasets import FASHION_MNIST

from .conftest import FILES, link
from .httpserver import Server
from .resolving import _my_digits, _searchable, final_files, found
from .test_real_data import REAL


def test_warm_path_equals_cold_and_repairs_its_cache(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)
    cold = fmnist.load_data()
    cache = env / "fashion-mnist" / "t10k-images-idx3-ubyte"
    assert cache.stat().st_size == 7840016
    warm = fmnist.load_data()
    for c, w in zip(cold[0] + cold[1], warm[0] + warm[1]):
        assert np.array_equal(c, w) and w.flags.writeable and w.dtype.isnative
    # Copy-on-write: writing to a warm array changes neither the cache nor the next load.
    warm[1][0][:] = 0
    assert np.array_equal(fmnist.load(split="test")[0], expected["t10k-images-idx3-ubyte.gz"])

    data = bytearray(cache.read_bytes())
    data[5000] ^= 0xFF
    cache.chmod(0o644)  # cache files are read-only: a user who means to change one must say so
    cache.write_bytes(bytes(data))  # corrupt (its mtime changes)
    assert np.array_equal(fmnist.load(split="test")[0], expected["t10k-images-idx3-ubyte.gz"])
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == REAL["t10k-images-idx3-ubyte.gz"][3]  # rebuilt
    cache.chmod(0o644)
    with open(cache, "r+b") as handle:
        handle.truncate(1000)  # truncated
    assert np.array_equal(fmnist.load(split="test")[0], expected["t10k-images-idx3-ubyte.gz"])
    assert cache.stat().st_size == 7840016


def test_stamps_another_process_rewrites_are_seen(env: Path, data_dir: Path, tmp_path: Path) -> None:
    # A process reads the record file once per version of it (inode, size, mtime): a stamp that
    # another process rewrites (replaced by rename, to the same size) is read again.
    from fmnist.resolve.store import RECORDS, Store

    def fresh() -> bool:
        return Store(folder).stamped(info, {info.content_sha256 or ""}) is not None

    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES[2:]:
        link(data_dir / f, search / f)
    fmnist.load(split="test")
    folder = env / "fashion-mnist"
    info = FASHION_MNIST.files[2]
    assert info.name == FILES[2] and fresh()
    script = """
import json, sys
from pathlib import Path
from fmnist import idx as files
path, stem = sys.argv[1], sys.argv[2]
records = json.load(open(path))
mtime = str(records["files"][stem]["mtime_ns"])
records["files"][stem]["mtime_ns"] = int(mtime[:-1] + str((int(mtime[-1]) + 1) % 10))  # same length
files.write(Path(path), [(json.dumps(records, indent=1, sort_keys=True) + "\\n").encode()])
"""
    before = (folder / RECORDS).stat().st_size
    subprocess.run([sys.executable, "-c", script, str(folder / RECORDS), info.stem], check=True)
    assert (folder / RECORDS).stat().st_size == before
    assert not fresh()
    assert np.array_equal(fmnist.load(split="test")[0], fmnist.read_idx(data_dir / FILES[2]))  # verified again
    assert fresh()


def test_cache_can_be_turned_off(env: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)
    monkeypatch.setenv("FMNIST_CACHE", "0")
    fmnist.load(split="test")
    assert final_files(env / "fashion-mnist") == []


def test_cache_files_are_read_only_and_only_ever_replaced(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    _searchable(data_dir, tmp_path)
    fmnist.load(split="test")
    cache = env / "fashion-mnist" / "t10k-labels-idx1-ubyte"
    assert cache.stat().st_mode & 0o777 == 0o444
    old = open(cache, "rb")  # held open across the rebuild, closed below
    os.utime(cache, ns=(0, 0))  # the stamp no longer matches: hashed again, and rewritten
    cache.chmod(0o644)
    with open(cache, "r+b") as f:  # and corrupt it the way a new file would: a rebuild replaces it
        f.seek(100)
        f.write(b"\xff")
    os.utime(cache, ns=(0, 0))
    fresh = fmnist.load(split="test")[1]
    assert np.array_equal(fresh, expected["t10k-labels-idx1-ubyte.gz"])
    # The rebuild put a new file in place (the one held open is no longer linked anywhere),
    # read-only again: the old file was never rewritten.
    assert os.fstat(old.fileno()).st_nlink == 0 and cache.stat().st_mode & 0o777 == 0o444
    old.close()


def test_temporaries_of_dead_cache_writers_are_removed(env: Path, data_dir: Path, tmp_path: Path) -> None:
    _searchable(data_dir, tmp_path)
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    dead = [folder / "t10k-images-idx3-ubyte.0123456789ab.partial", folder / ".fmnist-cache.json.ffeeddccbbaa.partial"]
    for p in dead:
        p.write_bytes(b"x" * 1000)
    resumable = folder / "train-images-idx3-ubyte.gz.partial"  # a download's, to be resumed
    resumable.write_bytes(b"\x1f\x8b")
    fmnist.load(split="test")
    assert not any(p.exists() for p in dead) and resumable.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_anything_but_a_regular_file_at_a_cache_path_is_left_alone(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    _searchable(data_dir, tmp_path)
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "t10k-labels-idx1-ubyte")  # would block any reader forever
    (folder / "t10k-images-idx3-ubyte").mkdir()
    code = "import fmnist; x, y = fmnist.load(split='test'); print(x.shape, y.shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "(10000, 28, 28) (10000,)", out.stderr
    # Not fmnist's: neither opened nor replaced; the load says it could not cache them.
    assert stat.S_ISFIFO((folder / "t10k-labels-idx1-ubyte").lstat().st_mode)
    assert (folder / "t10k-images-idx3-ubyte").is_dir()
    assert (
        out.stderr.count("not cached: ") == 2 and "is not a regular file fmnist can replace; left alone" in out.stderr
    )
    x, y = fmnist.load(split="test")
    assert np.array_equal(y, expected["t10k-labels-idx1-ubyte.gz"]) and y.flags.owndata


@pytest.mark.skipif(os.name == "nt", reason="Windows reads the warm cache instead of mapping it")
def test_warm_arrays_hold_no_file_descriptor(env: Path, data_dir: Path, tmp_path: Path) -> None:
    _searchable(data_dir, tmp_path)
    fmnist.load_data()  # writes the cache
    # 300 held warm load_data() calls (1,200 mapped arrays) under a 64-descriptor limit: each
    # mapping closed its descriptor, so none is left open to run out of.
    code = (
        "import resource, fmnist\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "held = [fmnist.load_data() for _ in range(300)]\n"
        "x = held[-1][0][0]\n"
        "print(len(held), x.shape, x.flags.writeable, x.flags.owndata)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["300", "(60000,", "28,", "28)", "True", "False"]  # mapped, not read


def test_cache_off_reads_no_cache_and_writes_none(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    _searchable(data_dir, tmp_path)
    fmnist.load(split="test")
    cache = env / "fashion-mnist" / "t10k-labels-idx1-ubyte"
    records = env / "fashion-mnist" / ".fmnist-cache.json"
    good = cache.read_bytes()
    # Forge the cache file, keeping its size and mtime (its ctime moves, as any write's does).
    st = cache.stat()
    cache.chmod(0o644)
    forged = good[:8] + bytes(len(good) - 8)
    cache.write_bytes(forged)
    os.utime(cache, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = records.read_bytes()
    y = fmnist.load(split="test", cache=False)[1]
    assert np.array_equal(y, expected["t10k-labels-idx1-ubyte.gz"])
    assert records.read_bytes() == before and cache.read_bytes() == forged  # nothing read or written
    # The cache on: the stamp no longer matches, the file fails its hash and is replaced.
    y = fmnist.load(split="test")[1]
    assert np.array_equal(y, expected["t10k-labels-idx1-ubyte.gz"]) and cache.read_bytes() == good


def test_cache_files_whose_records_are_lost_are_adopted_by_their_content(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The cache written, then the record file lost (deleted, or never saved: a kill, a full disk):
    # fmnist's own 55 MB of cache files are hashed once, adopted (stamped again), then mapped; a
    # corrupt record file (or one nested too deeply to parse) is as good as lost.
    _searchable(data_dir, tmp_path)
    fmnist.load_data()
    folder = env / "fashion-mnist"
    records = folder / ".fmnist-cache.json"
    for lost in ("deleted", "corrupt", "deep"):
        if lost == "deleted":
            records.unlink()
        else:
            records.chmod(0o644)
            records.write_text("{" if lost == "corrupt" else "[" * 100_000 + "]" * 100_000)
        with caplog.at_level(logging.WARNING, logger="fmnist"):
            (x, y), result = found(FASHION_MNIST, FASHION_MNIST.files[:2])
        assert np.array_equal(y, expected[FILES[1]]) and not caplog.records  # nothing "not fmnist's"
        p = result.files[FILES[0]]
        assert p.source == "fmnist warm cache" and p.proof == "content_sha256", lost  # read, hashed
        assert x.flags.owndata and not p.mapped  # the very bytes hashed: mapped from the next load
        stamps = json.loads(records.read_text())["files"]
        assert stamps["train-images-idx3-ubyte"]["ino"] == (folder / "train-images-idx3-ubyte").stat().st_ino
        _, again = found(FASHION_MNIST, FASHION_MNIST.files[:2])
        assert again.files[FILES[0]].proof == "stamp" and again.files[FILES[0]].mapped  # trusted from then on


def test_a_stamp_counts_only_while_the_registry_accepts_its_digest(
    env: Path, tmp_path: Path, registered: None, caplog: pytest.LogCaptureFixture
) -> None:
    # A user's registry moves to a new version of their data (new digests, the same names and
    # shapes): the cache of the old version is not the new version, whatever its stamp says.
    with Server({}) as server:
        path, blobs, arrays = _my_digits(tmp_path, server)
        server.files.update(blobs)
        fmnist.load_registry(path)
        x, _ = fmnist.load("my-digits", "train")
        assert np.array_equal(x, arrays["digits-train-images.gz"])
        new = arrays["digits-train-images.gz"][::-1].copy()  # version 2: the images reversed
        buf = io.BytesIO()
        fmnist.write_idx(buf, new, compress=True)
        server.files["digits-train-images.gz"] = buf.getvalue()
        text = path.read_text().replace(
            hashlib.md5(blobs["digits-train-images.gz"]).hexdigest(), hashlib.md5(buf.getvalue()).hexdigest()
        )
        text = text.replace(
            f"stored_size = {len(blobs['digits-train-images.gz'])}", f"stored_size = {len(buf.getvalue())}"
        )
        path.write_text(text)
        fmnist.load_registry(path, replace=True)
        x2, _ = fmnist.load("my-digits", "train")  # the old download fails, is fmnist's: replaced
    assert np.array_equal(x2, new) and not np.array_equal(x2, x)
    x3, _ = fmnist.load("my-digits", "train")  # and the cache follows
    assert np.array_equal(x3, new) and not x3.flags.owndata
