"""Downloads (``fmnist.resolve.fetch`` and the mirrors source) from a real HTTP server on 127.0.0.1
with misbehaving modes, with real subprocesses for the concurrency and kill tests."""

from __future__ import annotations

import errno
import gzip
import hashlib
import lzma
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.datasets import DATASETS

from .conftest import FILES
from .httpserver import Server
from .resolving import final_files, found


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
    # Resumed where it broke: after the bytes that arrived (all the half sent, unless the kernel
    # lost the tail of it with the connection).
    starts = [int(r[6:-1]) for m, f, r in server.ranges if (m, f) == ("drop", FILES[0]) and r]
    assert starts and 0 < starts[0] <= size // 2, server.ranges
    assert np.array_equal(fmnist.load(download=False)[0], expected[FILES[0]])


def test_a_stale_partial_longer_than_the_file_starts_over(env: Path, server: Server) -> None:
    # A download of fmnist's own left behind (recorded as resumable), longer than the file.
    from fmnist.resolve.fetch import _partial
    from fmnist.resolve.store import Store

    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    size = len(server.files["t10k-labels-idx1-ubyte.gz"])
    stale, fd = _partial(Store(folder), folder / "t10k-labels-idx1-ubyte.gz")
    os.write(fd, b"\0" * (size + 10))
    os.close(fd)
    planted = folder / "t10k-labels-idx1-ubyte.gz.partial"  # someone else's, at a name like a partial's
    planted.write_bytes(b"not fmnist's")
    fmnist.download(mirrors=[server.mirror("ok")], retries=2)
    # The resumed range was asked for and refused (416); the download started again and verified.
    assert ("ok", "t10k-labels-idx1-ubyte.gz", f"bytes={size + 10}-") in server.ranges
    assert server.hits[("ok", "t10k-labels-idx1-ubyte.gz")] == 2
    assert not stale.exists() and [f for f in final_files(folder) if f != planted.name] == sorted(FILES)
    assert planted.read_bytes() == b"not fmnist's"  # never opened


def test_server_without_range_support(env: Path, server: Server) -> None:
    fmnist.download(mirrors=[server.mirror("norange")], retries=3)
    assert server.hits[("norange", FILES[0])] == 2  # the dropped try, then the whole file again
    assert any(m == "norange" for m, _, _ in server.ranges)  # it was asked for a range and ignored it
    assert final_files(env / "fashion-mnist") == sorted(FILES)


def test_slow_server_times_out_and_the_next_mirror_serves(env: Path, server: Server) -> None:
    server.delay = 3.0
    fmnist.download(mirrors=[server.mirror("slow"), server.mirror("ok")], timeout=0.5, retries=1)
    # Each file: one attempt at the slow mirror, given up at the timeout (its answer would come
    # after it), then the next mirror's.
    assert all(server.hits[("slow", f)] == 1 and server.hits[("ok", f)] == 1 for f in FILES), server.hits
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

    def partial() -> Path:
        return next((env / "fashion-mnist").glob("train-images-idx3-ubyte.gz.*.partial"), env / "none")

    deadline = time.monotonic() + 60
    while not (partial().exists() and partial().stat().st_size > 1 << 20):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.kill()  # SIGKILL on POSIX, TerminateProcess on Windows: no cleanup runs
    child.wait()
    assert not (env / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists()
    fmnist.download(mirrors=[server.mirror("ok")])
    assert final_files(env / "fashion-mnist") == sorted(FILES)
    assert any(m == "ok" and f == FILES[0] for m, f, _ in server.ranges)  # it resumed the partial


def test_an_endless_body_is_cut_at_the_files_size(env: Path, server: Server) -> None:
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror("endless")], retries=1)
    # The first file, the training images: cut at its published .gz size.
    assert f"sent more than the {26421880 + 26421880 // 8 + 65536} bytes the file can have" in str(e.value)
    assert final_files(env / "fashion-mnist") == []
    assert not list((env / "fashion-mnist").glob("*.partial"))


def test_a_drip_is_cut_within_about_twice_the_timeout(env: Path, server: Server) -> None:
    server.delay = 0.2  # one byte every 0.2 s: each read is well inside the 1 s timeout
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror("drip")], timeout=1, retries=1)
    # curl's rule: fewer than 4 KiB in a timeout's worth of seconds abandons the attempt, in its
    # first window (every byte it got came in that window), not after hours of drip.
    slow = re.search(r"too slow: (\d+) bytes in 1 s after (\d+) bytes", str(e.value))
    assert slow and slow[1] == slow[2] and int(slow[1]) < 4096, str(e.value)
    assert "fewer than 4096 bytes arrive in the timeout" in str(e.value)


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
    assert (kind, int(err)) == ("OSError", errno.EFBIG) and filename.endswith(".partial"), out.stdout
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


@pytest.mark.parametrize(
    "mode, why",
    [
        ("banner", "no HTTP answer: BadStatusLine"),
        ("longline", "no HTTP answer: LineTooLong"),
        ("headers", "no HTTP answer: HTTPException: got more than 100 headers"),
        ("headdrip", "the status line and headers did not arrive within 1 s"),
    ],
)
def test_an_answer_that_is_not_http_is_one_failed_attempt_and_the_next_mirror_serves(
    env: Path, server: Server, mode: str, why: str
) -> None:
    server.delay = 0.5  # the dripped head: a byte every half second, each well inside the timeout
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download(mirrors=[server.mirror(mode)], timeout=1, retries=2)
    # Each attempt failed as such (the dripped head: cut by the watchdog at the deadline, which
    # is what "did not arrive within 1 s" reports), and the next was made.
    attempts = [w for u, w in e.value.attempts if u.endswith("train-images-idx3-ubyte.gz")]
    assert len(attempts) == 2 and all(w.startswith(why) for w in attempts), e.value.attempts
    assert final_files(env / "fashion-mnist") == []
    fmnist.download(mirrors=[server.mirror(mode), server.mirror("ok")], timeout=1, retries=1)
    assert final_files(env / "fashion-mnist") == sorted(FILES)


def test_a_name_that_does_not_resolve_is_not_retried(env: Path, server: Server) -> None:
    mirror = "http://fmnist-test.invalid/"  # .invalid never resolves (RFC 6761)
    fmnist.download(mirrors=[mirror, server.mirror("ok")], retries=3)
    assert final_files(env / "fashion-mnist") == sorted(FILES)
    with pytest.raises(fmnist.DownloadError) as e:
        fmnist.download("mnist", mirrors=[mirror], retries=3)
    assert [u for u, _ in e.value.attempts] == [mirror + "train-images-idx3-ubyte.gz"]  # one attempt
    assert "the name does not resolve" in e.value.attempts[0][1]


def test_a_hard_link_planted_where_fmnist_writes_is_never_written_through(
    env: Path, server: Server, tmp_path: Path
) -> None:
    # A partial's old fixed name, and a final name: hard links to a victim elsewhere. fmnist
    # creates its own files with O_EXCL under names of its own, and never replaces the final
    # name's file (not fmnist's): the victim is unchanged.
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for f in FILES[:2]:
        os.link(victim, folder / (f + ".partial"))
    os.link(victim, folder / FILES[3])
    with pytest.raises(fmnist.DatasetNotFoundError, match="a file fmnist did not write is at .* not replaced"):
        fmnist.download(mirrors=[server.mirror("ok")])
    assert victim.read_bytes() == b"precious" and victim.stat().st_nlink == 4
    assert (folder / FILES[3]).stat().st_ino == victim.stat().st_ino  # left where it was
    assert [f for f in final_files(folder) if not f.endswith(".partial")] == sorted(FILES)
