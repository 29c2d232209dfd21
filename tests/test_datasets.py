"""Datasets by name: the registry, verification policy, discovery of copies on disk, the warm
cache, and downloads from a real HTTP server on 127.0.0.1 (with real subprocesses for the
concurrency and kill tests)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import reference
from fmnist.cache import identity
from fmnist.datasets import DATASETS, FASHION_MNIST, Dataset, FileInfo
from fmnist.resolve import Policy, Resolution, resolve

from .conftest import FILES, link, stored_md5
from .httpserver import Server
from .test_real_data import REAL


@pytest.fixture(scope="module")
def real(data_dir: Path) -> dict[str, bytes]:
    return {f: (data_dir / f).read_bytes() for f in FILES}


@pytest.fixture(scope="module")
def expected(data_dir: Path) -> dict[str, Any]:
    return {f: fmnist.read_idx(data_dir / f) for f in FILES}


@pytest.fixture(scope="module")
def wrong() -> dict[str, bytes]:
    # "Another dataset" under the right names: same shapes, other content (compressible enough
    # to pass the size cap, so verification is what rejects it).
    rng = np.random.default_rng(0)
    return {
        i.name: reference.write_idx(rng.integers(0, 4, i.shape, dtype=np.uint8), members=1, level=1)
        for i in FASHION_MNIST.files
    }


@pytest.fixture
def server(real: dict[str, bytes], wrong: dict[str, bytes]) -> Iterator[Server]:
    with Server(real, wrong=wrong, delay=2.0) as s:
        yield s


def found(ds: Dataset, files: Any = None, **policy: Any) -> tuple[list[Any], Resolution]:
    """``resolve`` as ``load`` calls it, with downloads off unless asked: the arrays, and the
    resolution (provenance of each file, every candidate judged)."""
    result = resolve(ds, list(ds.files if files is None else files), Policy(**policy))
    return result.arrays(), result


def final_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*ubyte*")) if folder.exists() else []


# --- registry and policy ------------------------------------------------------------------


def test_registry_knows_the_built_in_datasets_with_labelled_digests() -> None:
    emnist = [f"emnist-{s}" for s in ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")]
    assert list(DATASETS) == ["fashion-mnist", "mnist", "kmnist", "qmnist", *emnist]
    assert fmnist.DATASETS is DATASETS
    fm = DATASETS["fashion-mnist"]
    assert fm.classes == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    for ds in DATASETS.values():
        assert len(ds.files) == 2 * len(ds.splits) and (ds.archive or ds).mirrors and len(ds.classes) >= 10
        if ds.archive:  # EMNIST: one verified archive holds the files
            assert ds.archive.stored_md5 == "58c8d27c78d21e728a6bc7b3cc06412e" and ds.transposed
            continue
        for f in ds.files:  # QMNIST's are published with MD5s only (torchvision's)
            assert f.stored_md5 and len(f.stored_md5) == 32
            assert ds.name == "qmnist" or len(f.stored_sha256 or "") == 64
    assert DATASETS["emnist-letters"].classes[:3] == ("N/A", "a", "b")  # labels start at 1
    assert len(DATASETS["emnist-byclass"].classes) == 62 and len(DATASETS["emnist-balanced"].classes) == 47
    for f in fm.files:  # content digests as SOURCE.md gives them; .gz MD5 as the dataset README does
        assert (f.content_size, f.content_md5, f.content_sha256) == REAL[f.name][1:]
    assert fm.file("train", "images").stored_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    with pytest.raises(
        ValueError, match="unknown dataset 'cifar'.*fashion-mnist, mnist, kmnist, qmnist, emnist-byclass"
    ):
        fmnist.load("cifar")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        fmnist.load(split="validation")


def test_recompressed_copy_is_accepted_by_its_content_digest(env: Path, data_dir: Path, tmp_path: Path) -> None:
    debian = tmp_path / "search" / "fashion-mnist"  # Debian's layout: /usr/share/datasets/fashion-mnist/
    debian.mkdir(parents=True)
    for f in FILES:  # recompressed here, as Debian did (whatever form the test data has)
        (debian / f).write_bytes(gzip.compress(gzip.decompress((data_dir / f).read_bytes()), 6, mtime=0))
    _, result = found(FASHION_MNIST, cache=False)
    for f in FILES:
        p = result.files[f].provenance
        # The published .gz MD5 does not match these bytes; the content SHA-256 does, and says so.
        assert p.proof == "content_sha256"
        assert p.path == debian / f and p.source == "fmnist" and not p.mapped


def test_another_datasets_bytes_are_rejected(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "search" / "fashion-mnist"
    folder.mkdir(parents=True)
    other = np.random.default_rng(1).integers(0, 10, 10000, dtype=np.uint8)  # MNIST-like labels
    fmnist.write_idx(folder / "t10k-labels-idx1-ubyte.gz", other, compress=True)
    with pytest.raises(fmnist.DatasetNotFoundError) as e:
        fmnist.load(split="test", download=False)
    message = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    content_sha = REAL["t10k-labels-idx1-ubyte.gz"][3]
    assert f"SHA-256 mismatch over the decompressed IDX content: expected {content_sha} (the known content" in message
    assert "MD5 mismatch over the stored (gzip-compressed) bytes: expected bb300cfdad3c16e7a12a480ee83cd310" in message


# --- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, folder, decompressed",
    [
        ("torchvision", "FashionMNIST/raw", False),
        ("torchvision", "FashionMNIST/raw", True),
        ("dataset repository", "data/fashion", False),
        ("fmnist", "fashion-mnist", True),
    ],
)
def test_discovery_of_each_layout(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], layout: str, folder: str, decompressed: bool
) -> None:
    where = tmp_path / "search" / folder
    where.mkdir(parents=True)
    for f in FILES:
        if decompressed:
            (where / f[:-3]).write_bytes(gzip.decompress((data_dir / f).read_bytes()))
        else:
            link(data_dir / f, where / f)
    arrays, result = found(FASHION_MNIST, cache=False)
    for f, a in zip(FILES, arrays):
        assert np.array_equal(a, expected[f])
        p = result.files[f].provenance
        assert p.source == layout and p.path.parent == where
        assert p.path.name == (f[:-3] if decompressed else f)
        assert not p.mapped and a.flags.owndata  # another loader's copy: read into memory, never mapped
    assert not (env / "fashion-mnist").exists() or final_files(env / "fashion-mnist") == []


@pytest.mark.parametrize(
    "folder, layout",
    [
        ("data/fashion-mnist", "fmnist"),
        ("fashion-mnist", "fmnist"),
        ("data/FashionMNIST/raw", "torchvision"),
        ("FashionMNIST/raw", "torchvision"),
        ("data/fashion", "dataset repository"),  # the working folder is a clone of the dataset's repository
        ("debian/fashion-mnist", "Debian"),  # /usr/share/datasets/ stands at debian/
    ],
)
def test_discovery_without_a_search_path_looks_where_the_readme_says(
    env: Path,
    data_dir: Path,
    tmp_path: Path,
    expected: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    folder: str,
    layout: str,
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("fmnist.sources.DEBIAN", work / "debian")
    where = work / folder
    where.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, where / f)
    arrays, result = found(FASHION_MNIST, cache=False)
    assert all(np.array_equal(a, expected[f]) for f, a in zip(FILES, arrays))
    assert {(r.provenance.source, r.provenance.path.parent.resolve()) for r in result.files.values()} == {
        (layout, where)
    }


def test_torchvision_root_given_as_root(env: Path, data_dir: Path, tmp_path: Path) -> None:
    tv_root = tmp_path / "data"
    raw = tv_root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, raw / f)
    (x, y), (xt, yt) = fmnist.load_data(root=tv_root, download=False, cache=False)
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,)


def test_nothing_found_and_download_off(env: Path) -> None:
    with pytest.raises(fmnist.DatasetNotFoundError, match="no verified copy of 2 file.*download=False"):
        fmnist.load(split="test", download=False)


# --- warm cache -------------------------------------------------------------------------------


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
    from fmnist.cache import RECORDS, Home

    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES[2:]:
        link(data_dir / f, search / f)
    fmnist.load(split="test")
    folder = env / "fashion-mnist"
    info = FASHION_MNIST.files[2]
    assert info.name == FILES[2] and Home(folder).fresh(info)[0]
    script = """
import json, sys
from fmnist.idx import atomic_write
path, stem = sys.argv[1], sys.argv[2]
records = json.load(open(path))
mtime = str(records["files"][stem]["mtime_ns"])
records["files"][stem]["mtime_ns"] = int(mtime[:-1] + str((int(mtime[-1]) + 1) % 10))  # same length
atomic_write(path, (json.dumps(records, indent=1, sort_keys=True) + "\\n").encode())
"""
    before = (folder / RECORDS).stat().st_size
    subprocess.run([sys.executable, "-c", script, str(folder / RECORDS), info.stem], check=True)
    assert (folder / RECORDS).stat().st_size == before
    assert not Home(folder).fresh(info)[0]
    assert np.array_equal(fmnist.load(split="test")[0], fmnist.read_idx(data_dir / FILES[2]))  # verified again
    assert Home(folder).fresh(info)[0]


def test_cache_can_be_turned_off(env: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)
    monkeypatch.setenv("FMNIST_CACHE", "0")
    fmnist.load(split="test")
    assert final_files(env / "fashion-mnist") == []


# --- downloads --------------------------------------------------------------------------------


def test_download_into_an_empty_root_then_load(env: Path, server: Server, expected: dict[str, Any]) -> None:
    folder = fmnist.download(mirrors=[server.mirror("ok")])
    assert folder == env / "fashion-mnist"
    assert final_files(folder) == sorted(FILES)
    assert all(server.hits[("ok", f)] == 1 for f in FILES)
    (x, y), (xt, yt) = fmnist.load_data(download=False)
    assert np.array_equal(x, expected[FILES[0]]) and np.array_equal(yt, expected[FILES[3]])


def test_load_downloads_what_is_missing(env: Path, server: Server) -> None:
    images, labels = fmnist.load(split="test", mirrors=[server.mirror("ok")])
    assert images.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
    assert server.hits[("ok", "t10k-images-idx3-ubyte.gz")] == 1 and server.hits[("ok", FILES[0])] == 0


def test_404_then_a_good_mirror(env: Path, server: Server) -> None:
    fmnist.download(mirrors=[server.mirror("404"), server.mirror("ok")], retries=2)
    assert server.hits[("404", FILES[1])] == 1  # a 404 is not retried
    assert final_files(env / "fashion-mnist") == sorted(FILES)


@pytest.mark.parametrize(
    "mode, why",
    [
        ("404", "HTTP 404"),
        ("500", "HTTP 500"),
        ("html", "served an HTML page"),
        ("ftp", "redirected (HTTP 302) to ftp://127.0.0.1/train-images-idx3-ubyte.gz, not an http"),
        (
            "wrong",
            "served bytes that failed verification: MD5 mismatch over the stored (gzip-compressed) bytes: "
            "expected 8d4fb7e6c68d591d4c3df",
        ),
    ],
)
def test_a_bad_mirror_leaves_nothing_and_says_why(env: Path, server: Server, mode: str, why: str) -> None:
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror(mode)], retries=2)
    assert isinstance(e.value, OSError)
    assert f"{server.mirror(mode)}train-images-idx3-ubyte.gz: {why}" in str(e.value)
    assert final_files(env / "fashion-mnist") == []


def test_an_http_redirect_is_followed(env: Path, server: Server) -> None:
    fmnist.download(mirrors=[server.mirror("moved")], retries=1)
    assert final_files(env / "fashion-mnist") == sorted(FILES) and server.hits[("ok", FILES[0])] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_file_mirror_whose_file_is_a_fifo_is_skipped_not_waited_on(env: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for f in FILES:
        os.mkfifo(mirror / f)
    with pytest.raises(fmnist.DownloadError, match="is not a regular file"):
        fmnist.download(mirrors=[mirror.as_uri() + "/"], retries=1, timeout=5)
    assert final_files(env / "fashion-mnist") == []


def test_500_is_retried_then_the_next_mirror_serves(env: Path, server: Server) -> None:
    fmnist.download(mirrors=[server.mirror("500"), server.mirror("ok")], retries=2)
    assert server.hits[("500", FILES[1])] == 2
    assert final_files(env / "fashion-mnist") == sorted(FILES)


def test_every_failing_mirror_is_listed(env: Path, server: Server) -> None:
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror("404"), server.mirror("html"), server.mirror("wrong")], retries=1)
    text = str(e.value)
    for mode in ("404", "html", "wrong"):
        assert f"{server.mirror(mode)}train-images-idx3-ubyte.gz" in text
    assert e.value.attempts[0][0].endswith("/404/train-images-idx3-ubyte.gz")


def test_connection_dropped_mid_body_resumes_with_range(env: Path, server: Server, expected: dict[str, Any]) -> None:
    fmnist.download(mirrors=[server.mirror("drop")], retries=3)
    size = len(server.files[FILES[0]])
    assert ("drop", FILES[0], f"bytes={size // 2}-") in server.ranges  # resumed where it broke
    assert np.array_equal(fmnist.load(download=False)[0], expected[FILES[0]])


def test_a_stale_partial_longer_than_the_file_starts_over(env: Path, server: Server) -> None:
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    stale = folder / "t10k-labels-idx1-ubyte.gz.partial"
    size = len(server.files["t10k-labels-idx1-ubyte.gz"])
    stale.write_bytes(b"\0" * (size + 10))
    fmnist.download(mirrors=[server.mirror("ok")], retries=2)
    # The resumed range was asked for and refused (416); the download started again and verified.
    assert ("ok", "t10k-labels-idx1-ubyte.gz", f"bytes={size + 10}-") in server.ranges
    assert server.hits[("ok", "t10k-labels-idx1-ubyte.gz")] == 2
    assert not stale.exists() and final_files(folder) == sorted(FILES)


def test_server_without_range_support(env: Path, server: Server) -> None:
    fmnist.download(mirrors=[server.mirror("norange")], retries=3)
    assert server.hits[("norange", FILES[0])] == 2  # the dropped try, then the whole file again
    assert any(m == "norange" for m, _, _ in server.ranges)  # it was asked for a range and ignored it
    assert final_files(env / "fashion-mnist") == sorted(FILES)


def test_slow_server_times_out_and_the_next_mirror_serves(env: Path, server: Server) -> None:
    server.delay = 3.0
    t = time.monotonic()
    fmnist.download(mirrors=[server.mirror("slow"), server.mirror("ok")], timeout=0.5, retries=1)
    assert time.monotonic() - t < 4 * 3.0  # each file waited ~timeout, not the server's delay
    assert final_files(env / "fashion-mnist") == sorted(FILES)


CHILD = """
import hashlib, sys
import fmnist
(x, y), (xt, yt) = fmnist.load_data(mirrors=[sys.argv[1]])
print(hashlib.sha256(b"".join(a.tobytes() for a in (x, y, xt, yt))).hexdigest())
"""


def test_four_processes_download_once(env: Path, server: Server) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, server.mirror("ok")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1  # identical arrays everywhere
    assert {f: server.hits[("ok", f)] for f in FILES} == {f: 1 for f in FILES}


def test_sigkill_mid_download_leaves_nothing_at_the_final_path(env: Path, server: Server) -> None:
    server.delay = 0.01  # 16 KiB every 10 ms: the training images take several seconds
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, fmnist; fmnist.download(mirrors=[sys.argv[1]])", server.mirror("trickle")],
        env=os.environ.copy(),
    )
    partial = env / "fashion-mnist" / "train-images-idx3-ubyte.gz.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 1 << 20):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.kill()  # SIGKILL on POSIX, TerminateProcess on Windows: no cleanup runs
    child.wait()
    assert not (env / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists()
    fmnist.download(mirrors=[server.mirror("ok")])
    assert final_files(env / "fashion-mnist") == sorted(FILES)
    assert any(m == "ok" and f == FILES[0] for m, f, _ in server.ranges)  # it resumed the partial


# --- drop-in loaders ----------------------------------------------------------------------------


def test_load_mnist_has_the_mnist_reader_form(data_dir: Path, expected: dict[str, Any]) -> None:
    images, labels = fmnist.load_mnist(data_dir, kind="t10k")
    assert images.shape == (10000, 784) and images.dtype == np.uint8 and labels.shape == (10000,)
    assert np.array_equal(images, expected["t10k-images-idx3-ubyte.gz"].reshape(10000, 784))
    with pytest.raises(FileNotFoundError):
        fmnist.load_mnist(data_dir, kind="validation")


def test_load_data_has_the_keras_form(env: Path, server: Server) -> None:
    (x_train, y_train), (x_test, y_test) = fmnist.load_data(mirrors=[server.mirror("ok")])
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"mirrors": []}, ValueError, "mirrors is empty"),
        ({"mirrors": "http://127.0.0.1:1/"}, TypeError, "list of base URLs, not a single str"),
        ({"mirrors": ["ftp://example/"]}, ValueError, "http://, https:// or file://"),
        ({"retries": 0}, ValueError, "retries must be an int >= 1"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a positive number of seconds, finite, not inf"),
        ({"splits": ["validation"]}, ValueError, r"has the splits train, test, not \['validation'\]"),
        ({"splits": []}, ValueError, "has the splits train, test, not an empty list"),
    ],
)
def test_download_arguments_are_checked_before_any_network(
    env: Path, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        fmnist.download(**kwargs)
    assert not (env / "fashion-mnist").exists() or not any((env / "fashion-mnist").iterdir())
    if "mirrors" in kwargs:
        with pytest.raises(error, match=message):
            fmnist.load(mirrors=kwargs["mirrors"], download=True, cache=False)


def test_an_archive_downloads_whole(env: Path) -> None:
    # EMNIST's splits share one gzip.zip: asking for some of its files is refused, before any network.
    with pytest.raises(ValueError, match="emnist-digits is published as one archive: it downloads whole"):
        fmnist.download("emnist-digits", splits=["train"], mirrors=["http://127.0.0.1:1/"])
    assert not env.exists() or not any(env.rglob("*"))  # nothing written


def test_other_surprising_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes must be an int from 0"):
        fmnist.read_idx(b"\x00\x00\x08\x01\x00\x00\x00\x00", max_bytes=2**64)
    x, y = np.zeros((4, 2), np.uint8), np.zeros(4)
    with pytest.raises(ValueError, match="world_size must be an int"):
        fmnist.batches(x, y, 2, world_size=True)
    with pytest.raises(ValueError, match="rank must be an int"):
        fmnist.batches(x, y, 2, rank=False, world_size=2)


def _searchable(data_dir: Path, tmp_path: Path) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)


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
    assert "not cached: " in out.stderr and "is a file fmnist did not write" in out.stderr
    x, y = fmnist.load(split="test")
    assert np.array_equal(y, expected["t10k-labels-idx1-ubyte.gz"]) and y.flags.owndata


def test_an_endless_body_is_cut_at_the_files_size(env: Path, server: Server) -> None:
    start = time.monotonic()
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror("endless")], retries=1)
    # The first file, the training images: cut at its published .gz size.
    assert f"sent more than the {26421880 + 26421880 // 8 + 65536} bytes the file can have" in str(e.value)
    assert time.monotonic() - start < 30
    assert final_files(env / "fashion-mnist") == []
    assert not list((env / "fashion-mnist").glob("*.partial"))


def test_a_drip_is_cut_within_about_twice_the_timeout(env: Path, server: Server) -> None:
    server.delay = 0.2  # one byte every 0.2 s: each read is well inside the 1 s timeout
    start = time.monotonic()
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror("drip")], timeout=1, retries=1)
    took = time.monotonic() - start
    # curl's rule: fewer than 4 KiB in a timeout's worth of seconds abandons the attempt.
    assert "too slow: " in str(e.value) and "fewer than 4096 bytes arrive in the timeout" in str(e.value)
    assert took < 2 * 1 + 1.5, took  # about twice the timeout for the file (and some slack)


def test_a_symlink_planted_at_the_partial_is_never_followed(env: Path, server: Server, tmp_path: Path) -> None:
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for f in FILES:
        (folder / (f + ".partial")).symlink_to(victim)
    fmnist.download(mirrors=[server.mirror("ok")])
    assert victim.read_bytes() == b"precious"
    assert all((folder / f).is_file() and not (folder / f).is_symlink() for f in FILES)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_a_failing_disk_is_an_os_error_at_once_not_a_network_retry(env: Path, server: Server) -> None:
    # The child may write files of at most 8 KiB (EFBIG past that): a real local write error.
    code = (
        "import resource, signal, sys, fmnist\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))\n"
        "try:\n    fmnist.download(mirrors=[sys.argv[1]])\n"
        "except fmnist.DownloadError as e:\n    print('DownloadError', e)\n"
        "except OSError as e:\n    print(type(e).__name__, e.errno, e.filename)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, server.mirror("ok")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    kind, err, filename = out.stdout.split()
    assert (kind, int(err)) == ("OSError", errno.EFBIG) and filename.endswith(".gz.partial"), out.stdout
    assert sum(n for (mode, _), n in server.hits.items() if mode == "ok") == 1  # not retried


def test_a_header_claiming_more_than_the_registry_moves_to_the_next_mirror(env: Path, real: dict[str, bytes]) -> None:
    # A small body whose IDX header claims 25 GiB: refused from its header (max_bytes from the
    # registry's shape), never allocated; the next mirror gives the real file.
    import struct as _struct

    liar = gzip.compress(_struct.pack(">BBBBII", 0, 0, 8, 2, 65536, 409600) + bytes(1 << 20))  # 25 GiB
    with Server({**real}, wrong={f: liar for f in FILES}) as s:
        fmnist.download(mirrors=[s.mirror("wrong"), s.mirror("ok")])
        assert all(s.hits[("ok", f)] == 1 for f in FILES)
    assert final_files(env / "fashion-mnist") == sorted(FILES)


def test_what_happens_is_logged_to_the_fmnist_logger(
    env: Path, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fmnist"):
        fmnist.load(split="test", mirrors=[server.mirror("404"), server.mirror("ok")])
    messages = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "fmnist"]
    assert any("t10k-images-idx3-ubyte.gz" in m and "404" in m and "next mirror" in m for m in messages)
    assert any(
        m.startswith("t10k-images-idx3-ubyte.gz: ") and "[download; " in m and ": downloaded, " in m for m in messages
    )
    assert any(m.startswith("t10k-labels-idx1-ubyte.gz: cached as") for m in messages)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="fmnist"):
        fmnist.load(split="test")
    assert any("warm cache" in r.getMessage() for r in caplog.records)


# --- issue 9, items 11-15: descriptors, cache=False, copies users already have -----------------


def _decompressed(data_dir: Path, folder: Path, names: Any = FILES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in names:
        (folder / f[:-3]).write_bytes(gzip.decompress((data_dir / f).read_bytes()))


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


def test_a_decompressed_copy_elsewhere_is_read_not_mapped_and_checked_on_every_load(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any]
) -> None:
    tv_root = tmp_path / "tv"
    raw = tv_root / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    before = {p.name: p.stat().st_mode for p in raw.iterdir()}
    for _ in ("first", "again"):
        arrays, result = found(FASHION_MNIST, root=tv_root, cache=False)
        for f, a in zip(FILES, arrays):
            p = result.files[f].provenance
            assert np.array_equal(a, expected[f]) and a.flags.writeable and a.flags.owndata
            assert p.path == raw / f[:-3] and p.source == "torchvision" and not p.mapped
    # Nothing written beside another loader's files, nothing of its changed.
    assert {p.name: p.stat().st_mode for p in raw.iterdir()} == before
    assert sorted(p.name for p in tv_root.iterdir()) == ["FashionMNIST"]
    # Rewritten in place with its mtime put back: the next load hashes it again and turns it down.
    target = raw / "t10k-labels-idx1-ubyte"
    st = target.stat()
    target.write_bytes(target.read_bytes()[:-1] + b"\x07")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(fmnist.DatasetNotFoundError, match="t10k-labels-idx1-ubyte.*SHA-256 mismatch over"):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], root=tv_root)
    assert target.exists()  # not deleted: it is not fmnist's


@pytest.fixture
def no_content(data_dir: Path) -> Dataset:
    """Fashion-MNIST as the registry would describe it with no content digest (as KMNIST is),
    with the .gz MD5s of the test data's copies (upstream's or a recompressed one) standing for
    the published ones."""
    return replace(
        FASHION_MNIST,
        name="no-content",
        files=tuple(
            replace(
                f, stored_md5=stored_md5(data_dir / f.name), stored_sha256=None, content_md5=None, content_sha256=None
            )
            for f in FASHION_MNIST.files
        ),
    )


def test_a_decompressed_copy_is_proven_by_a_verified_gz(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], no_content: Dataset
) -> None:
    raw = tmp_path / "search" / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    # Alone, a decompressed copy cannot be judged: no published digest covers it.
    with pytest.raises(fmnist.DatasetNotFoundError, match="no verified published form of it proves its content"):
        found(no_content, [no_content.file("test", "labels")], cache=False)
    # Beside the .gz it came from (published MD5), it is proven equal.
    for f in FILES:
        link(data_dir / f, raw / f)
    policy = {"every_copy": True, "cache": False}  # (as `fmnist verify` judges them)
    arrays, result = found(no_content, **policy)
    for f, a in zip(FILES, arrays):
        assert np.array_equal(a, expected[f])
        judged = {j.path.name: j for j in result.judgments if j.info.name == f}
        assert judged[f].ok and judged[f[:-3]].ok
        # Proven by the verified .gz beside it: the judgment names it.
        assert judged[f[:-3]].proof == "proven" and str(raw / f) in judged[f[:-3]].message
    # With the cache on, the proof is recorded (under fmnist's root): the decompressed copy alone
    # is then accepted, by the content the verified .gz had.
    found(no_content)
    for f in FILES:
        (raw / f).unlink()
    _, result = found(no_content, cache=True, every_copy=True)
    judged = {j.path.name: j for j in result.judgments if j.ok and j.source == "torchvision"}
    records = str(env / "no-content" / ".fmnist-cache.json")
    assert all(judged[f[:-3]].proof == "proven" and records in judged[f[:-3]].message for f in FILES), judged


def test_keras_files_are_found_by_kerass_own_rules(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.chdir(tmp_path)  # nothing under ./data or . to find
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    where = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    where.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, where / f)
    _, result = found(FASHION_MNIST, cache=False)
    assert {(r.provenance.source, r.provenance.path.parent) for r in result.files.values()} == {("keras", where)}


def test_kerass_npz_form_is_verified_by_its_published_sha256(
    env: Path, tmp_path: Path, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_content: Dataset
) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    npz = tmp_path / "keras-home" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    x_test, y_test = expected["t10k-images-idx3-ubyte.gz"], expected["t10k-labels-idx1-ubyte.gz"]
    np.savez_compressed(npz, x_train=x_test[:0], y_train=y_test[:0], x_test=x_test, y_test=y_test)
    # The real MNIST's mnist.npz is not here: keras's form of Fashion-MNIST's test split, with its
    # own SHA-256 in the registry entry, stands in for it. MNIST's entry names keras's digest.
    assert DATASETS["mnist"].keras_npz_sha256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    ds = replace(no_content, keras_npz="mnist.npz", keras_npz_sha256=hashlib.sha256(npz.read_bytes()).hexdigest())
    (x, y), result = found(ds, [ds.file("test", "images"), ds.file("test", "labels")])
    assert np.array_equal(x, x_test) and np.array_equal(y, y_test)
    p = result.files["t10k-images-idx3-ubyte.gz"].provenance
    assert p.source == "keras .npz" and p.path == npz and p.proof == "keras_npz_sha256" and p.member == "x_test"
    # Cached like any verified file: the next load is warm, and proves the same content.
    assert found(ds, [ds.file("test", "labels")])[0][0].flags.owndata is False
    with pytest.raises(
        fmnist.DatasetNotFoundError, match=r"mnist.npz \(keras .npz\): SHA-256 mismatch over the file's bytes"
    ):
        fmnist.load("mnist", split="test", download=False)


def test_looked_in_lists_only_layouts_that_apply(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMNIST_SEARCH_PATH")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(fmnist.DatasetNotFoundError) as e:
        fmnist.load(split="test", download=False)
    looked = [p.rsplit(" (", 1)[0] for p in str(e.value).split("looked in: ")[1].split(", ")]
    assert str(tmp_path / "kh" / "datasets" / "fashion-mnist") in looked  # keras's, by KERAS_HOME
    assert os.path.join("data", "FashionMNIST", "raw") in looked and os.path.join("data", "fashion") in looked
    for impossible in (os.path.join("data", "data", "fashion"), os.path.join(".keras", "datasets", "data")):
        assert not any(impossible in p for p in looked), looked
    folders = {layout for _, layout in fmnist.sources.folders(DATASETS["mnist"], env)}
    assert folders == {"fmnist", "torchvision"}  # keras's MNIST is one file, mnist.npz; no Debian package


# --- issue 11: QMNIST, xz downloads, datasets users define ----------------------------------


def test_qmnist_in_the_registry_verifies_the_real_label_files(env: Path, tmp_path: Path, qmnist_dir: Path) -> None:
    qm = DATASETS["qmnist"]
    assert qm.splits == ("train", "test", "nist") and set(qm.slices) == {"test10k", "test50k"}
    assert qm.label_columns[0] == "class" and len(qm.label_columns) == 8
    raw = tmp_path / "search" / "QMNIST" / "raw"  # torchvision's layout
    raw.mkdir(parents=True)
    labels = [qm.file("train", "labels"), qm.file("test", "labels")]
    for info in labels:
        link(qmnist_dir / info.name, raw / info.name)
    (train, test), result = found(qm, labels)
    assert train.shape == test.shape == (60000, 8) and train.dtype == np.int32
    assert train[0].tolist() == [5, 4, 2154, 59, 35, 229421, 0, 0]
    assert result.files[labels[0].name].provenance.proof == "stored_md5"
    assert not (env / "qmnist").exists() or final_files(env / "qmnist") == []  # int32: not cached
    # The same content as .xz (how the nist split is published): verified by its content digest.
    (raw / labels[0].name).unlink()
    (raw / "qmnist-train-labels-idx2-int.xz").write_bytes(
        lzma.compress(gzip.decompress((qmnist_dir / labels[0].name).read_bytes()))
    )
    xz_info = replace(labels[0], name="qmnist-train-labels-idx2-int.xz", stored_md5=None, stored_size=None)
    ((again,), _) = found(qm, [xz_info])
    assert np.array_equal(again, train)
    # A correct decompressed int32 copy (torchvision's) is verified, read (byteswapped), and left alone.
    (raw / labels[0].stem).write_bytes(gzip.decompress((qmnist_dir / labels[0].name).read_bytes()))
    before = (raw / labels[0].stem).stat()
    ((again,), result) = found(qm, [labels[0]])  # its .gz is gone: the decompressed copy is what is left
    assert np.array_equal(again, train) and result.files[labels[0].name].provenance.path == raw / labels[0].stem
    assert identity((raw / labels[0].stem).stat()) == identity(before)


def test_an_xz_file_downloads_verified_from_the_loopback_server(env: Path, qmnist_dir: Path) -> None:
    content = gzip.decompress((qmnist_dir / "qmnist-test-labels-idx2-int.gz").read_bytes())
    packed = lzma.compress(content)
    info = replace(
        DATASETS["qmnist"].file("nist", "labels"),
        shape=(60000, 8),
        stored_md5=hashlib.md5(packed).hexdigest(),
        content_sha256=hashlib.sha256(content).hexdigest(),
    )
    with Server({info.name: packed}, wrong={info.name: packed[:-100] + bytes(100)}) as server:
        ((got,), _) = found(
            DATASETS["qmnist"], [info], download=True, mirrors=[server.mirror("wrong"), server.mirror("ok")], retries=1
        )
    assert got.shape == (60000, 8) and got[:, 0].max() == 9
    assert (env / "qmnist" / info.name).read_bytes() == packed  # the .xz, as published


def _my_digits(tmp_path: Path, server: Server | None = None) -> tuple[Path, dict[str, bytes], dict[str, Any]]:
    """A dataset of the tests' own: 12x12 images in 3 classes, written as IDX .gz files and
    described in a TOML registry file."""
    rng = np.random.default_rng(5)
    arrays = {
        "digits-train-images.gz": rng.integers(0, 256, (300, 12, 12), dtype=np.uint8),
        "digits-train-labels.gz": np.repeat(np.arange(3, dtype=np.uint8), 100),
        "digits-test-images.gz": rng.integers(0, 256, (90, 12, 12), dtype=np.uint8),
        "digits-test-labels.gz": np.repeat(np.arange(3, dtype=np.uint8), 30),
    }
    blobs = {}
    for name, a in arrays.items():
        buf = io.BytesIO()
        fmnist.write_idx(buf, a, compress=True)
        blobs[name] = buf.getvalue()
    mirror = server.mirror("ok") if server else "https://example.invalid/digits/"
    files = "".join(
        f'[[dataset.files]]\nname = "{name}"\nsplit = "{name.split("-")[1]}"\nkind = "{name.split("-")[2][:-3]}"\n'
        f'shape = {list(arrays[name].shape)}\nsize = {len(blob)}\nmd5 = "{hashlib.md5(blob).hexdigest()}"\n\n'
        for name, blob in blobs.items()
    )
    toml = (
        '[[dataset]]\nname = "my-digits"\ntitle = "My digits"\nlicense = "CC0"\n'
        f'classes = ["zero", "one", "two"]\nmirrors = ["{mirror}"]\ntorchvision_name = "MyDigits"\n\n' + files
    )
    path = tmp_path / "my.toml"
    path.write_text(toml)
    return path, blobs, arrays


def test_a_dataset_users_define_loads_downloads_and_caches_like_the_built_ins(
    env: Path, tmp_path: Path, registered: None
) -> None:
    with Server({}) as server:
        path, blobs, arrays = _my_digits(tmp_path, server)
        server.files.update(blobs)
        (ds,) = fmnist.load_registry(path)
        assert ds.name == "my-digits" and fmnist.DATASETS["my-digits"] is ds
        (x, y), (xt, yt) = fmnist.load_data("my-digits")  # downloaded from the registry's mirror
        assert np.array_equal(x, arrays["digits-train-images.gz"]) and np.array_equal(
            yt, arrays["digits-test-labels.gz"]
        )
        assert sorted(p.name for p in (env / "my-digits").glob("*.gz")) == sorted(blobs)
    # Warm (the server is gone): mapped from the cache.
    x2, _ = fmnist.load("my-digits", "train")
    assert np.array_equal(x2, x) and not x2.flags.owndata
    # Registering it again is a no-op; a different description under its name is refused.
    fmnist.load_registry(path)
    with pytest.raises(fmnist.RegistryError, match="already names the registered dataset 'my-digits'"):
        fmnist.register(replace(ds, title="other"))


def _bad_description(change: Any) -> dict[str, Any]:
    """my-digits as a registry file holds it (with an archive of its own), changed by ``change``."""
    ds = fmnist.datasets.to_dict(fmnist.datasets.FASHION_MNIST)
    ds.update(name="my-digits", aliases=["mydigits"], torchvision_name="MyDigits")
    data = {"dataset": [ds], "archive": [{"name": "my-zip", "file": "a.zip", "max_size": 1000, "stored_md5": "0" * 32}]}
    change(data, ds, ds["files"][0])
    return data


#: Each malformed field (the issue's list) -> the field the RegistryError must name.
REGISTRY_FAULTS: dict[str, tuple[Any, str]] = {
    "files=5": (lambda d, ds, f: ds.update(files=5), "files: must be a non-empty list"),
    "shape=5": (lambda d, ds, f: f.update(shape=5), r"files\[0\].*\.shape: must be a list of 1 to"),
    "shape=[]": (lambda d, ds, f: f.update(shape=[]), r"\.shape: must be a list of 1 to"),
    "numeric name": (lambda d, ds, f: ds.update(name=5), "name: must be a string, not int 5"),
    "numeric md5": (lambda d, ds, f: f.update(stored_md5=5), r"\.stored_md5: must be 32 lowercase hex digits"),
    "aliases=[1]": (lambda d, ds, f: ds.update(aliases=[1]), r"aliases\[0\]: must be a string"),
    "kind=[images]": (lambda d, ds, f: f.update(kind=["images"]), r"\.kind: must be 'images' or 'labels'"),
    "slices=[]": (lambda d, ds, f: ds.update(slices=[]), "slices: must be a table"),
    "bad slice": (lambda d, ds, f: ds.update(slices={"x": ["train", 5, 2]}), "slices.x: start and stop must cut"),
    "slice of nothing": (lambda d, ds, f: ds.update(slices={"x": ["nope", 0, 2]}), "slices.x: must be"),
    "debian_name path": (lambda d, ds, f: ds.update(debian_name="../../etc"), "debian_name: '../../etc' must be one"),
    "repo_dir path": (lambda d, ds, f: ds.update(repo_dir="/etc"), "repo_dir: '/etc' must be a relative path"),
    "keras_npz path": (lambda d, ds, f: ds.update(keras_npz="../shadow"), "keras_npz: '../shadow' must be one"),
    "torchvision_name path": (lambda d, ds, f: ds.update(torchvision_name="a/b"), "torchvision_name: 'a/b'"),
    "max_size=big": (lambda d, ds, f: d["archive"][0].update(max_size="big"), "max_size: must be a positive whole"),
    "transposed=no": (lambda d, ds, f: ds.update(transposed="no"), "transposed: must be true or false"),
    "named like an archive": (
        lambda d, ds, f: ds.update(name="my-zip"),
        "name: 'my-zip' also names its archive 'my-zip'",
    ),
    "named like the built-ins' archive": (
        lambda d, ds, f: ds.update(name="EMNIST"),
        "folder of the registered archive",
    ),
    "stems collide": (
        lambda d, ds, f: (f.update(name="imgs.gz"), ds["files"][2].update(name="imgs.xz")),
        "'imgs.gz' and 'imgs.xz' have the same cache name 'imgs'",
    ),
    "names collide": (lambda d, ds, f: ds["files"][2].update(name=f["name"]), "have the same file name"),
    "alias taken": (lambda d, ds, f: ds.update(aliases=["Fashion"]), "'Fashion' already names the registered"),
    "unknown archive": (lambda d, ds, f: ds.update(archive="nope"), "archive: must name an archive"),
    "archive members path": (lambda d, ds, f: d["archive"][0].update(members="../"), "members: '../' must be"),
    "a key twice": (lambda d, ds, f: f.update(md5="0" * 32), "'md5' and 'stored_md5' give the same field twice"),
    "unknown key": (lambda d, ds, f: ds.update(licence="CC0"), "unknown key"),
    "no classes": (lambda d, ds, f: ds.update(classes=[]), "classes: must be a non-empty list"),
    "bad mirror": (lambda d, ds, f: ds.update(mirrors=["ftp://x/"]), r"mirrors\[0\]: 'ftp://x/' must be an http"),
}


@pytest.mark.parametrize("fault", list(REGISTRY_FAULTS))
def test_registry_files_are_checked_whole_naming_the_file_dataset_and_field(
    tmp_path: Path, registered: None, fault: str
) -> None:
    change, message = REGISTRY_FAULTS[fault]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad_description(change)))
    before = (dict(DATASETS), dict(fmnist.datasets.ARCHIVES))
    with pytest.raises(fmnist.RegistryError, match=message) as e:
        fmnist.load_registry(path)
    assert str(path) in str(e.value)
    assert ": dataset " in str(e.value) or ": archive " in str(e.value)  # and which one
    assert (DATASETS, fmnist.datasets.ARCHIVES) == before  # nothing of the file registered


def test_names_are_case_insensitive_and_a_bad_env_registry_breaks_nothing_else(
    tmp_path: Path, registered: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = _bad_description(lambda d, ds, f: ds.update(name="My-Digits", aliases=[]))
    (tmp_path / "good.json").write_text(json.dumps(good))
    (ds,) = fmnist.load_registry(tmp_path / "good.json")
    assert fmnist.datasets.get("my-digits") is ds and fmnist.datasets.get("MY-DIGITS") is ds
    with pytest.raises(fmnist.RegistryError, match="'MY-digits' already names the registered dataset 'My-Digits'"):
        fmnist.register(replace(ds, name="MY-digits", title="other"))
    # One bad file in $FMNIST_REGISTRY: logged, named when its dataset is asked for, and the rest
    # (the built-in datasets, a good file after it) still load.
    (tmp_path / "bad.json").write_text(json.dumps(_bad_description(lambda d, ds, f: f.update(shape=5))))
    other = _bad_description(lambda d, ds, f: ds.update(name="other-digits", aliases=[]))
    del other["archive"]
    (tmp_path / "other.json").write_text(json.dumps(other))
    monkeypatch.setenv("FMNIST_REGISTRY", os.pathsep.join(str(tmp_path / n) for n in ("bad.json", "other.json")))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert fmnist.datasets.get("fashion-mnist").name == "fashion-mnist"
        assert fmnist.datasets.get("other-digits").name == "other-digits"
        with pytest.raises(
            ValueError, match=r"(?s)unknown dataset 'my-digits-2'.*refused from \$FMNIST_REGISTRY: .*bad.json"
        ):
            fmnist.datasets.get("my-digits-2")
    assert any("bad.json" in r.getMessage() and "shape" in r.getMessage() for r in caplog.records)


def test_the_built_in_datasets_are_a_registry_file_in_the_package() -> None:
    archives, found = fmnist.datasets.parse_registry(fmnist.datasets.BUILTIN)
    assert [d.name for d in found] == list(DATASETS)[: len(found)] and found == list(DATASETS.values())[: len(found)]
    assert [a.name for a in archives] == ["emnist"] and DATASETS["emnist-letters"].archive == archives[0]
    assert fmnist.datasets.BUILTIN.stat().st_size < fmnist.datasets.REGISTRY_MAX_BYTES
    text = fmnist.datasets.BUILTIN.read_text()
    assert '"stored_md5"' in text and '"gz_' not in text and '"md5"' not in text  # field names say what they cover


def test_registry_files_are_read_only_when_regular_and_small(tmp_path: Path) -> None:
    # A FIFO would block a plain open() until a writer came; /dev/zero would be read until
    # memory ran out; a huge file is refused after reading at most 1 MiB and a byte.
    fifo = tmp_path / "registry.toml"
    big = tmp_path / "big.json"
    big.write_bytes(b" " * ((1 << 20) + 1))
    cases = [(big, "over 1048576 bytes")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        cases += [(fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file")]
    for path, message in cases:
        with pytest.raises(fmnist.RegistryError, match=message) as e:
            fmnist.load_registry(path)
        assert str(path) in str(e.value)


def test_every_built_in_dataset_is_expressible_as_a_registry_file(tmp_path: Path) -> None:
    for ds in DATASETS.values():
        path = tmp_path / f"{ds.name}.json"
        path.write_text(json.dumps({"dataset": [fmnist.datasets.to_dict(ds)]}))
        assert fmnist.load_registry(path) == [ds]  # the same description: registering it is a no-op


def _archive_of(ds: Dataset) -> fmnist.datasets.Archive:
    assert ds.archive is not None
    return ds.archive


def _archive(tmp_path: Path) -> tuple[bytes, dict[str, Any], list[fmnist.Dataset]]:
    """An EMNIST-like archive of the tests' own: two datasets' IDX .gz files as members of one
    zip (under gzip/), images stored transposed, and the two registry entries that share it."""
    rng = np.random.default_rng(9)
    arrays: dict[str, Any] = {}
    for split, n in (("a", 120), ("b", 60)):
        for part, m in (("train", n), ("test", n // 3)):
            arrays[f"tiny-{split}-{part}-images-idx3-ubyte.gz"] = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8)
            arrays[f"tiny-{split}-{part}-labels-idx1-ubyte.gz"] = rng.integers(0, 4, m, dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("gzip/README", b"not an IDX file")
        for name, a in arrays.items():
            member = io.BytesIO()
            fmnist.write_idx(member, a, compress=True)
            z.writestr("gzip/" + name, member.getvalue())
    blob = buf.getvalue()
    archive = fmnist.datasets.Archive(
        "tiny-emnist", "tiny.zip", 1 << 20, stored_md5=hashlib.md5(blob).hexdigest(), members="gzip/"
    )
    entries = []
    for split, n in (("a", 120), ("b", 60)):
        files = tuple(
            FileInfo(f"tiny-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", part, kind, shape)
            for part, m in (("train", n), ("test", n // 3))
            for kind, shape in (("images", (m, 28, 28)), ("labels", (m,)))
        )
        entries.append(
            fmnist.Dataset(
                name=f"tiny-{split}",
                title="tiny",
                homepage="",
                license="",
                classes=("w", "x", "y", "z"),
                mirrors=(),
                files=files,
                torchvision_name="TinyEMNIST",
                archive=archive,
                transposed=True,
            )
        )
    return blob, arrays, entries


def test_an_archive_downloads_once_resumes_and_serves_every_dataset_in_it(
    env: Path, tmp_path: Path, registered: None
) -> None:
    blob, arrays, entries = _archive(tmp_path)
    with Server({"tiny.zip": blob}) as server:
        archive = replace(_archive_of(entries[0]), mirrors=(server.mirror("drop"),))
        for ds in entries:
            fmnist.register(replace(ds, archive=archive))
        x, y = fmnist.load("tiny-a", "train")  # the connection drops mid-body: resumed
        assert np.array_equal(x, arrays["tiny-a-train-images-idx3-ubyte.gz"])
        assert np.array_equal(y, arrays["tiny-a-train-labels-idx1-ubyte.gz"])
        (xb, _), (xt, yt) = fmnist.load_data("tiny-b")  # the same archive: no second download
        assert server.hits[("drop", "tiny.zip")] == 2 and len(server.ranges) == 1
    assert np.array_equal(yt, arrays["tiny-b-test-labels-idx1-ubyte.gz"])
    assert (env / "tiny-emnist" / "tiny.zip").read_bytes() == blob
    assert not list((env / "tiny-emnist").glob("*.partial"))
    # Stored transposed (as EMNIST is, and as torchvision returns it); upright on request.
    up, _ = fmnist.load("tiny-a", "train", upright=True)
    assert np.array_equal(up, x.transpose(0, 2, 1)) and up.flags.c_contiguous
    # Warm: the members were cached (mapped), the archive is not read again.
    (env / "tiny-emnist" / "tiny.zip").unlink()
    assert not fmnist.load("tiny-a", "train")[0].flags.owndata


def test_a_wrong_archive_is_rejected_and_torchvisions_copy_is_found(
    env: Path, tmp_path: Path, registered: None
) -> None:
    blob, arrays, entries = _archive(tmp_path)
    for ds in entries:
        fmnist.register(ds)
    tv = tmp_path / "search" / "TinyEMNIST" / "raw"
    tv.mkdir(parents=True)
    (tv / "tiny.zip").write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    with pytest.raises(
        fmnist.DatasetNotFoundError,
        match=r"MD5 mismatch over the file's bytes \(uncompressed: stored = content\): "
        r"expected [0-9a-f]+ \(the published archive MD5\)",
    ):
        fmnist.load("tiny-b", "test", download=False)
    (tv / "tiny.zip").write_bytes(blob)
    (x, _), result = found(entries[1], [entries[1].file("test", "images"), entries[1].file("test", "labels")])
    assert np.array_equal(x, arrays["tiny-b-test-images-idx3-ubyte.gz"])
    p = result.files["tiny-b-test-images-idx3-ubyte.gz"].provenance
    assert p.source == "torchvision archive" and p.proof == "archive"
    assert p.path == tv / "tiny.zip" and p.member == "gzip/tiny-b-test-images-idx3-ubyte.gz"


def test_an_archive_dataset_in_download_info_and_verify(env: Path, tmp_path: Path, registered: None) -> None:
    blob, arrays, entries = _archive(tmp_path)
    with Server({"tiny.zip": blob}) as server:
        archive = replace(_archive_of(entries[0]), mirrors=(server.mirror("ok"),))
        for ds in entries:
            fmnist.register(replace(ds, archive=archive))
        assert fmnist.download("tiny-b") == env / "tiny-emnist"  # the archive, not its members
        assert fmnist.download("tiny-a") == env / "tiny-emnist" and server.hits[("ok", "tiny.zip")] == 1
    ds = DATASETS["tiny-a"]
    (_, _, _, y), _ = found(ds, cache=False)  # discovery reads the archive
    assert np.array_equal(y, arrays["tiny-a-test-labels-idx1-ubyte.gz"])
    _, result = found(ds, [ds.file("train", "images")], every_copy=True, cache=False)  # as `fmnist verify`
    assert [(j.path, j.source, j.member, j.ok) for j in result.judgments] == [
        (env / "tiny-emnist" / "tiny.zip", "fmnist archive", "gzip/tiny-a-train-images-idx3-ubyte.gz", True)
    ]


def test_an_archive_without_a_member_says_which(env: Path, tmp_path: Path, registered: None) -> None:
    blob, _, entries = _archive(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("tiny-a-test-labels-idx1-ubyte.gz"):
                dst.writestr(item, src.read(item))
    short = buf.getvalue()
    archive = entries[0].archive
    assert archive is not None
    ds = replace(entries[0], archive=replace(archive, name="tiny-short", stored_md5=hashlib.md5(short).hexdigest()))
    fmnist.register(ds)
    (env / "tiny-short").mkdir(parents=True)
    (env / "tiny-short" / "tiny.zip").write_bytes(short)
    with pytest.raises(
        fmnist.DatasetNotFoundError, match="no member gzip/tiny-a-test-labels-idx1-ubyte.gz in the archive"
    ):
        fmnist.load("tiny-a", "test", download=False)


def test_decompressed_copies_of_the_wrong_size_or_form_are_turned_down(
    env: Path, data_dir: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "search" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    content = gzip.decompress((data_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(content[:-1])
    with pytest.raises(fmnist.DatasetNotFoundError, match="t10k-labels-idx1-ubyte.*IDX length mismatch.*found 10007"):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], cache=False)
    # gzip data (its header comment padding it to the decompressed size) under the decompressed
    # file's name: its content is right, its form is not.
    bare = len(reference.gzip_member(content, comment=b""))
    packed = reference.gzip_member(content, comment=b"x" * (len(content) - bare))
    assert len(packed) == len(content)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(packed)
    with pytest.raises(fmnist.DatasetNotFoundError, match="gzip data under a decompressed file's name"):
        found(FASHION_MNIST, [FASHION_MNIST.file("test", "labels")], cache=False)


def test_an_earlier_fmnists_cache_stays_fmnists_and_is_hashed_before_its_first_use(
    env: Path, data_dir: Path, tmp_path: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The stamps file of fmnist before the records had a version: {stem: {size, mtime_ns,
    # content_sha256}} beside read-only cache files.
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    stamps = {}
    for info in FASHION_MNIST.files[2:]:
        path = folder / info.stem
        path.write_bytes(gzip.decompress((data_dir / info.name).read_bytes()))
        path.chmod(0o444)
        st = path.stat()
        stamps[info.stem] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "content_sha256": info.content_sha256}
    (folder / ".fmnist-cache.json").write_text(json.dumps(stamps))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        (x, y), result = found(FASHION_MNIST, FASHION_MNIST.files[2:])
    assert np.array_equal(y, expected["t10k-labels-idx1-ubyte.gz"]) and not caplog.records  # no "not fmnist's"
    p = result.files["t10k-images-idx3-ubyte.gz"].provenance
    assert p.source == "fmnist warm cache" and p.mapped and p.proof == "content_sha256"  # hashed, then mapped
    records = json.loads((folder / ".fmnist-cache.json").read_text())
    assert records["version"] == 2 and records["files"]["t10k-images-idx3-ubyte"]["ino"]  # stamped in full
    _, result = found(FASHION_MNIST, FASHION_MNIST.files[2:])
    assert result.files["t10k-images-idx3-ubyte.gz"].provenance.proof == "stamp"  # and trusted from then on


def test_registry_api_misuse_is_a_clear_error(tmp_path: Path, registered: None) -> None:
    with pytest.raises(TypeError, match="a dataset name is a str, not int"):
        fmnist.datasets.get(5)  # type: ignore[arg-type]
    with pytest.raises(fmnist.RegistryError, match=r"register\(\) takes an fmnist.Dataset, not dict"):
        fmnist.register({"name": "x"})  # type: ignore[arg-type]
    base = _bad_description(lambda d, ds, f: None)
    cases = [
        ({**base, "extra": []}, "a registry holds the lists 'dataset' and \\(optionally\\) 'archive', nothing else"),
        ({**base, "archive": {"name": "x"}}, "'archive' must be a list of archive descriptions"),
        ({**base, "archive": base["archive"] * 2}, "two archives have the same name"),
        ({**base, "dataset": []}, "expected a non-empty list 'dataset'"),
    ]
    for data, message in cases:
        path = tmp_path / "r.json"
        path.write_text(json.dumps(data))
        with pytest.raises(fmnist.RegistryError, match=message) as e:
            fmnist.load_registry(path)
        assert str(path) in str(e.value)
    taken = fmnist.datasets.Archive("fashion-mnist", "a.zip", 10, stored_md5="0" * 32)
    with pytest.raises(
        fmnist.RegistryError, match="its folder name is taken by the registered dataset 'fashion-mnist'"
    ):
        fmnist.datasets.register_archive(taken)
