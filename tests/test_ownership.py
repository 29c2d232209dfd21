"""The datasets layer as a hostile user and another loader would try it (issue 17): bytes proven
are the bytes returned, a file fmnist does not own is never touched or mapped, the warm cache is
optional, archives are bounded member by member. Real files, archives the tests build, real
subprocesses, and a user without root's override of file permissions (``setpriv``)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.datasets import FASHION_MNIST, Dataset, to_dict
from fmnist.resolve import Audit, Policy, Torchvision, resolve

from .conftest import FILES, linux_only
from .resolving import _archive, _archive_of, _decompressed, _searchable, found

#: A command run as root without the override of file permissions (as an ordinary user would
#: meet them): the capabilities dropped from the bounding set, so the exec'd program lacks them.
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
needs_setpriv = pytest.mark.skipif(
    shutil.which("setpriv") is None or sys.platform != "linux", reason="setpriv is util-linux's (Linux)"
)


def registry_file(tmp_path: Path, ds: Dataset) -> str:
    """A registry file describing ``ds`` and its archive, for the command line in a subprocess."""
    path = tmp_path / f"{ds.name}.json"
    archives = [to_dict(ds.archive)] if ds.archive else []
    path.write_text(json.dumps({"dataset": [to_dict(ds)], "archive": archives}))
    return str(path)


def run(code: str, *args: str, user: bool = False, **kw: Any) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
    return subprocess.run((WITHOUT_OVERRIDE if user else []) + cmd, capture_output=True, text=True, timeout=300, **kw)


# --- item 2: proven on the bytes returned ------------------------------------------------------


def _swapping(path: Path, good: bytes, bad: bytes, seconds: float) -> subprocess.Popen[str]:
    """A second process putting a good and a bad copy at ``path`` in turn, by rename, for
    ``seconds``."""
    code = """
    import os, sys, time
    path, seconds = sys.argv[1], float(sys.argv[4])
    good, bad = (open(p, "rb").read() for p in sys.argv[2:4])
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        tmp = f"{path}.{n % 2}.tmp"
        with open(tmp, "wb") as f:
            f.write(good if n % 2 else bad)
        os.replace(tmp, path)
        n += 1
    with open(path + ".tmp", "wb") as f:
        f.write(good)
    os.replace(path + ".tmp", path)
    print(n)
    """
    (path.parent / "good.bin").write_bytes(good)
    (path.parent / "bad.bin").write_bytes(bad)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(code),
            str(path),
            str(path.parent / "good.bin"),
            str(path.parent / "bad.bin"),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def _registered_archive(tmp_path: Path) -> tuple[bytes, dict[str, Any], list[Dataset]]:
    """The tests' EMNIST-like archive (``test_datasets._archive``), its two datasets registered."""
    blob, arrays, entries = _archive(tmp_path)
    for ds in entries:
        fmnist.register(ds)
    return blob, arrays, entries


def _bad_archive(blob: bytes) -> bytes:
    """The archive with other labels in one member: a zip as readable as the good one, whose
    MD5 is not the published one."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("tiny-a-test-labels-idx1-ubyte.gz"):
                buf = io.BytesIO()
                fmnist.write_idx(buf, np.full(40, 3, np.uint8), compress=True)
                data = buf.getvalue()
            dst.writestr(item.filename, data)
    return out.getvalue()


@pytest.mark.parametrize("cache", [False, True])
def test_an_archive_swapped_under_its_name_never_yields_the_bad_arrays(
    env: Path, tmp_path: Path, registered: None, cache: bool
) -> None:
    blob, arrays, entries = _registered_archive(tmp_path)
    folder = env / "tiny-emnist"
    folder.mkdir(parents=True)
    path = folder / "tiny.zip"
    path.write_bytes(blob)
    want = arrays["tiny-a-test-labels-idx1-ubyte.gz"]
    swapper = _swapping(path, blob, _bad_archive(blob), seconds=3.0)
    good = refused = 0
    try:
        while swapper.poll() is None:
            try:
                _, y = fmnist.load("tiny-a", "test", download=False, cache=cache)
            except fmnist.DatasetNotFoundError as e:
                assert "MD5 mismatch" in str(e) or "unreadable" in str(e) or "no copy found" in str(e), e
                refused += 1
                continue
            assert np.array_equal(y, want), "a load returned the bad archive's labels"
            good += 1
    finally:
        swaps = int(swapper.communicate(timeout=60)[0])
    assert swaps > 50 and good + refused > 10, (swaps, good, refused)
    # The good archive is back: every load, warm or not, and `fmnist verify`, see the good labels.
    _, y = fmnist.load("tiny-a", "test", download=False, cache=cache)
    assert np.array_equal(y, want)
    if cache:
        assert not fmnist.load("tiny-a", "test", download=False)[1].flags.owndata  # warm
        verify = [sys.executable, "-m", "fmnist", "--registry", registry_file(tmp_path, entries[0]), "verify", "tiny-a"]
        out = subprocess.run(verify, capture_output=True, text=True)
        assert out.returncode == 0 and "tiny-a-test-labels-idx1-ubyte.gz" in out.stdout, out.stdout + out.stderr


def test_a_keras_npz_swapped_under_its_name_never_yields_the_bad_arrays(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50, dtype=np.uint8)
    keras = tmp_path / "keras" / "datasets"
    keras.mkdir(parents=True)

    def npz(labels: Any) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, x_train=x, y_train=labels, x_test=x[:10], y_test=labels[:10])
        return buf.getvalue()

    good, bad = npz(y), npz((y + 1) % 10)
    files = tuple(
        fmnist.FileInfo(f"{p}-{k}", s, k, ((n, 28, 28) if k == "images" else (n,)), content_md5="0" * 32)
        for s, p, n in (("train", "train", 50), ("test", "t10k", 10))
        for k in ("images", "labels")
    )
    ds = replace(
        FASHION_MNIST,
        name="np-digits",
        aliases=(),
        files=files,
        keras_npz="np.npz",
        keras_npz_sha256=hashlib.sha256(good).hexdigest(),
        torchvision_name="",
        keras_name="",
        debian_name="",
        repo_dir="",
    )
    monkeypatch.setenv("FMNIST_SEARCH_PATH", str(keras))
    swapper = _swapping(keras / "np.npz", good, bad, seconds=3.0)
    loads = 0
    try:
        while swapper.poll() is None:
            try:
                (_, labels), _ = found(ds, [ds.file("train", "images"), ds.file("train", "labels")], cache=False)
            except fmnist.DatasetNotFoundError:
                continue
            assert np.array_equal(labels, y), "a load returned the bad .npz's labels"
            loads += 1
    finally:
        swapper.communicate(timeout=60)
    assert loads > 5


def test_an_archives_members_get_content_digests_checked_on_every_later_read(
    env: Path, tmp_path: Path, registered: None
) -> None:
    blob, arrays, entries = _registered_archive(tmp_path)
    ds = entries[0]
    folder = env / "tiny-emnist"
    folder.mkdir(parents=True)
    (folder / "tiny.zip").write_bytes(blob)
    fmnist.load("tiny-a", "test")  # verified: each member's content SHA-256 recorded
    records = (env / "tiny-a" / ".fmnist-cache.json").read_text()
    sha = hashlib.sha256(fmnist.reference.write_idx(arrays["tiny-a-test-labels-idx1-ubyte.gz"])).hexdigest()
    assert sha in records and f"archive tiny-emnist stored_md5:{_archive_of(ds).stored_md5}" in records
    # torchvision extracts the archive and keeps the decompressed members in raw/: those are
    # accepted by the digests recorded, the archive gone; a changed one is turned down.
    raw = tmp_path / "search" / "TinyEMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("tiny-a-test-images-idx3-ubyte.gz", "tiny-a-test-labels-idx1-ubyte.gz"):
        (raw / name[:-3]).write_bytes(fmnist.reference.write_idx(arrays[name]))
    (folder / "tiny.zip").unlink()
    (_, y), result = found(ds, [ds.file("test", "images"), ds.file("test", "labels")], cache=True)
    p = result.files["tiny-a-test-labels-idx1-ubyte.gz"]
    assert p.source in ("torchvision", "fmnist warm cache")
    _, result = found(ds, [ds.file("test", "labels")], cache=True, audit=Audit(every_copy=True))
    judged = {j.path.name: j for j in result.judgments}
    extracted = judged["tiny-a-test-labels-idx1-ubyte"]
    assert (
        extracted.ok and extracted.proof == "proven" and str(env / "tiny-a" / ".fmnist-cache.json") in extracted.message
    )
    (raw / "tiny-a-test-labels-idx1-ubyte").write_bytes(fmnist.reference.write_idx(np.zeros(40, np.uint8)))
    _, result = found(ds, [ds.file("test", "labels")], cache=True, audit=Audit(every_copy=True))
    assert not {j.path.name: j for j in result.judgments}["tiny-a-test-labels-idx1-ubyte"].ok


# --- item 3: files fmnist does not own ---------------------------------------------------------


def _tree(folder: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file under ``folder``: inode, mode, mtime and bytes (what fmnist must not change)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_ino, st.st_mode, st.st_mtime_ns, p.read_bytes())
    return out


@pytest.mark.parametrize("cache", ["0", "1"])
def test_a_process_holding_arrays_survives_another_loader_re_extracting(
    env: Path, data_dir: Path, tmp_path: Path, cache: str
) -> None:
    # torchvision's download=True re-extracts every .gz with open(path, "wb") into raw/: the very
    # files a loader that mapped them would die on (SIGBUS). fmnist reads them into memory.
    tv = tmp_path / "tv"
    raw = tv / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    code = """
    import os, sys, fmnist
    raw = sys.argv[1]
    (x, y), (xt, yt) = fmnist.load_data(root=os.path.dirname(os.path.dirname(raw)), download=False)
    before = [a.copy() for a in (x, y, xt, yt)]
    for name in sorted(os.listdir(raw)):  # as torchvision's extract_archive writes them
        with open(os.path.join(raw, name), "wb") as f:
            f.write(b"re-extracted")
    assert all((a == b).all() for a, b in zip((x, y, xt, yt), before))
    print(int(x.sum()) + int(yt.sum()))
    """
    out = run(code, str(raw), env={**os.environ, "FMNIST_CACHE": cache})
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert int(out.stdout) > 0


def test_a_foreign_folder_is_never_written_and_its_files_never_changed(
    env: Path, data_dir: Path, tmp_path: Path
) -> None:
    tv = tmp_path / "tv"
    raw = tv / "FashionMNIST" / "raw"
    _decompressed(data_dir, raw)
    # A subset of its own (custom data) under the registry's name, and a truncated copy.
    fmnist.write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(500, np.uint8))
    (raw / "train-labels-idx1-ubyte").write_bytes((raw / "train-labels-idx1-ubyte").read_bytes()[:1000])
    before = _tree(tv / "FashionMNIST")
    with pytest.raises(fmnist.DatasetNotFoundError):
        fmnist.load_data(root=tv, download=False)
    policies: list[dict[str, Any]] = [{"cache": True}, {"cache": False}, {"audit": Audit(every_copy=True)}]
    for policy in policies:
        for where in ({"root": tv}, {"torchvision": Torchvision(tv / "FashionMNIST" / "raw")}):  # load(root=), .torch
            try:
                found(FASHION_MNIST, **where, **policy)
            except fmnist.DatasetNotFoundError:
                pass
    # torchvision's folder: nothing deleted, rewritten, renamed, chmod'ed, nothing added; beside
    # it only fmnist's own folder of the dataset, for a root given as fmnist's data root.
    assert _tree(tv / "FashionMNIST") == before
    assert {p.name for p in tv.iterdir()} <= {"FashionMNIST", "fashion-mnist"}
    assert not list((tv / "FashionMNIST").rglob(".*"))  # no stamps or locks beside its files


def test_a_file_at_fmnists_own_paths_that_fmnist_did_not_write_is_never_replaced(
    env: Path, data_dir: Path, tmp_path: Path
) -> None:
    from .httpserver import Server

    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    mine = folder / "t10k-labels-idx1-ubyte.gz"
    mine.write_bytes(b"a user's own file, not the dataset's")
    with Server({f: (data_dir / f).read_bytes() for f in FILES}) as server:
        with pytest.raises(fmnist.DatasetNotFoundError, match="a file fmnist did not write is at .* not replaced"):
            fmnist.load(split="test", mirrors=[server.mirror("ok")])
        assert mine.read_bytes() == b"a user's own file, not the dataset's"
        mine.unlink()
        fmnist.download(mirrors=[server.mirror("ok")])  # fmnist's own downloads, recorded
        # Inode reuse: fmnist's downloads deleted and the user's own files put at those names; a
        # filesystem may hand the freed inodes back (ext4 does). Where it did not, the records are
        # made to name the new inodes, as if it had. Their ctime and bytes are not the recorded
        # ones: not fmnist's, never replaced.
        records = folder / ".fmnist-cache.json"
        for f in FILES:
            (folder / f).unlink()
            (folder / f).write_bytes(b"the user's own " + f.encode())
        data = json.loads(records.read_text())
        for f in FILES:
            st = (folder / f).stat()
            data["downloads"][f].update(dev=st.st_dev, ino=st.st_ino, size=st.st_size)
        records.chmod(0o644)
        records.write_text(json.dumps(data))
        with pytest.raises(fmnist.DatasetNotFoundError, match="a file fmnist did not write is at .* not replaced"):
            fmnist.download(mirrors=[server.mirror("ok")])
        assert all((folder / f).read_bytes() == b"the user's own " + f.encode() for f in FILES)
        for f in FILES:
            (folder / f).unlink()
        fmnist.download(mirrors=[server.mirror("ok")])
    # A file at a cache name that is not the content the registry accepts (here one put there by
    # rename, with the size and mtime of fmnist's): replaced, never silently kept.
    fmnist.load(split="test")
    cache = folder / "t10k-labels-idx1-ubyte"
    good, st = cache.read_bytes(), cache.stat()
    other = folder / "other"
    other.write_bytes(good[:8] + bytes(10000))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, cache)
    y = fmnist.load(split="test")[1]
    assert y.any() and cache.read_bytes() == good  # read from the .gz; the cache file replaced


@needs_setpriv
def test_a_read_only_root_with_stale_stamps_still_loads_and_warns(env: Path, data_dir: Path, tmp_path: Path) -> None:
    _searchable(data_dir, tmp_path)
    fmnist.load_data()  # the cache written
    folder = env / "fashion-mnist"
    for p in folder.iterdir():
        if not p.name.startswith("."):
            os.utime(p, ns=(0, 0))  # every stamp stale
    for p in (folder, env):
        p.chmod(0o555)
    try:
        code = "import fmnist; (x, y), (xt, yt) = fmnist.load_data(); print(x.shape, int(yt.sum()))"
        out = run(code, user=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["(60000,", "28,", "28)", "45000"]
        assert "the warm cache was not written" in out.stderr and "verified all the same" in out.stderr
        out = run("import fmnist; print(fmnist.load(split='test', cache=False)[1].sum())", user=True)
        assert out.returncode == 0 and out.stdout.strip() == "45000", out.stderr
    finally:
        for p in (folder, env):
            p.chmod(0o755)


@linux_only
def test_a_full_disk_still_loads_and_warns(env: Path, data_dir: Path, tmp_path: Path) -> None:
    _searchable(data_dir, tmp_path)
    code = """
    import resource, signal, fmnist
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # writes past 1 MiB fail (EFBIG)
    (x, y), (xt, yt) = fmnist.load_data()
    print(x.shape, int(yt.sum()))
    """
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(60000,", "28,", "28)", "45000"] and "the warm cache was not written" in out.stderr
    # No partial file where a good one belongs: what was not written is not there.
    assert not list((env / "fashion-mnist").glob("*.partial"))
    assert fmnist.load(split="test")[0].shape == (10000, 28, 28)


# --- item 6: archives bounded member by member --------------------------------------------------


def _craft(blob: bytes, member: str, how: str) -> bytes:
    """The archive with one member made hostile: its sizes claiming 1.5 GiB, its CRC wrong, marked
    encrypted, or compressed with bzip2."""
    if how == "bzip2":
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
            for item in src.infolist():
                kind = zipfile.ZIP_BZIP2 if item.filename == member else zipfile.ZIP_STORED
                dst.writestr(item.filename, src.read(item), compress_type=kind)
        return out.getvalue()
    data = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        item = z.getinfo(member)
        local = item.header_offset
    central = 0
    # The central directory entry of the member: its signature, then the name at offset 46.
    name = member.encode()
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        (n,) = struct.unpack_from("<H", data, at + 28)
        if bytes(data[at + 46 : at + 46 + n]) == name:
            central = at
            break
        at += 4
    if how == "huge":
        for base, off in ((local, 22), (central, 24)):  # uncompressed size: local header, directory
            struct.pack_into("<I", data, base + off, 3 << 29)
    elif how == "crc":
        start = (
            local + 30 + struct.unpack_from("<H", data, local + 26)[0] + struct.unpack_from("<H", data, local + 28)[0]
        )
        data[start + 20] ^= 0xFF  # a byte of the stored member: its CRC no longer matches
    elif how == "encrypted":
        for base, off in ((local, 6), (central, 8)):  # general purpose flag bit 0
            struct.pack_into("<H", data, base + off, struct.unpack_from("<H", data, base + off)[0] | 1)
    return bytes(data)


@pytest.mark.parametrize(
    "how, message",
    [
        ("huge", r"the zip's directory gives it 1,610,612,736 bytes, more than the [\d,]+ any gzip"),
        ("crc", "Bad CRC-32"),
        ("encrypted", "encrypted; fmnist reads no encrypted members"),
        ("bzip2", "compressed with zip method 12; fmnist reads stored and deflated members"),
    ],
)
def test_a_bad_member_rejects_only_its_own_files_naming_it(
    env: Path, tmp_path: Path, registered: None, how: str, message: str
) -> None:
    blob, arrays, entries = _archive(tmp_path)
    member = "gzip/tiny-a-test-labels-idx1-ubyte.gz"
    bad = _craft(blob, member, how)
    archive = replace(_archive_of(entries[0]), stored_md5=hashlib.md5(bad).hexdigest())
    ds = fmnist.register(replace(entries[0], archive=archive))
    (env / "tiny-emnist").mkdir(parents=True)
    (env / "tiny-emnist" / "tiny.zip").write_bytes(bad)
    with pytest.raises(fmnist.DatasetNotFoundError, match=message) as e:  # judged from the directory, or a bounded read
        fmnist.load("tiny-a", "test", download=False, cache=False)
    assert f"tiny.zip: member {member}: " in str(e.value)
    # The exception of its own, naming the member, is what the judgment holds.
    result = resolve(ds, [ds.file("test", "labels"), ds.file("test", "images")], Policy(cache=False))
    (judged,) = result.rejected(ds.file("test", "labels"))
    assert isinstance(judged.error, fmnist.BadZipFile) and isinstance(judged.error, zipfile.BadZipFile)
    assert member in str(judged.error)
    # Its neighbours load.
    assert np.array_equal(
        result.files["tiny-a-test-images-idx3-ubyte.gz"].array, arrays["tiny-a-test-images-idx3-ubyte.gz"]
    )
    x, y = fmnist.load("tiny-a", "train", download=False)
    assert np.array_equal(y, arrays["tiny-a-train-labels-idx1-ubyte.gz"])
    # `fmnist verify` checks the members and says which it could not read.
    verify = [sys.executable, "-m", "fmnist", "--registry", registry_file(tmp_path, ds), "verify", "tiny-a"]
    out = subprocess.run(verify, capture_output=True, text=True)
    assert out.returncode == 1
    assert (
        f"tiny-a-test-labels-idx1-ubyte.gz: {env / 'tiny-emnist' / 'tiny.zip'}:{member} [fmnist archive]: FAILED"
        in out.stdout
    )
    assert "tiny-a-train-labels-idx1-ubyte.gz: " in out.stdout and "[fmnist archive]: OK" in out.stdout


@needs_setpriv
def test_fmnist_torch_style_download_with_fmnists_root_read_only(env: Path, data_dir: Path, tmp_path: Path) -> None:
    from .httpserver import Server

    env.mkdir(parents=True)
    env.chmod(0o555)
    code = """
    import sys
    from pathlib import Path
    import fmnist
    from fmnist.resolve import Policy, Torchvision, resolve
    ds = fmnist.datasets.FASHION_MNIST
    raw = Path(sys.argv[2]) / "FashionMNIST" / "raw"
    policy = Policy(download=True, mirrors=[sys.argv[1]], torchvision=Torchvision(raw, place=True))
    print(resolve(ds, [ds.file("test", "labels")], policy).arrays()[0].sum())
    """
    try:
        with Server({f: (data_dir / f).read_bytes() for f in FILES}) as server:
            out = run(code, server.mirror("ok"), str(tmp_path / "tv"), user=True)
    finally:
        env.chmod(0o755)
    assert out.returncode == 0 and out.stdout.strip() == "45000", out.stderr
    assert "downloading without fmnist's lock" in out.stderr and "the warm cache was not written" in out.stderr
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    assert sorted(os.listdir(raw)) == ["t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"]
    assert not any(env.iterdir())


# --- issue 28: a shared root, neighbours and accidents ----------------------------------------

RANK = """
import sys
from pathlib import Path
import fmnist
from fmnist.resolve import Policy, Torchvision, resolve
ds = fmnist.datasets.FASHION_MNIST
raw = Path(sys.argv[2]) / "FashionMNIST" / "raw"
policy = Policy(download=True, mirrors=[sys.argv[1]], torchvision=Torchvision(raw, place=True))
arrays = resolve(ds, list(ds.files[2:]), policy).arrays()
print(sum(int(a.sum()) for a in arrays))
"""


def test_ranks_with_their_own_homes_download_into_one_torchvision_root(data_dir: Path, tmp_path: Path) -> None:
    # Four DDP ranks, each with a node-local FMNIST_HOME (so no lock in common), all downloading
    # into one shared torchvision root: every temporary name is unique, a file another rank put
    # in place first is never replaced but read, so every rank gets the data, three rounds running.
    from .httpserver import Server

    files = {f: (data_dir / f).read_bytes() for f in FILES}
    for round_ in range(3):
        shared = tmp_path / f"shared-{round_}"
        with Server(files) as server:
            ranks = [
                subprocess.Popen(
                    [sys.executable, "-c", RANK, server.mirror("ok"), str(shared)],
                    env={**os.environ, "FMNIST_HOME": str(tmp_path / f"node-{round_}-{rank}")},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for rank in range(4)
            ]
            outs = [p.communicate(timeout=300) for p in ranks]
        assert all(p.returncode == 0 for p in ranks), [err for _, err in outs]
        assert len({out.strip() for out, _ in outs}) == 1
        raw = shared / "FashionMNIST" / "raw"
        assert sorted(os.listdir(raw)) == sorted(f for name in FILES[2:] for f in (name, name[:-3]))


@linux_only
@pytest.mark.parametrize("name", ["emnist", "npz"])
def test_a_sparse_4_gib_archive_or_npz_is_turned_down_from_its_size(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # A 4 GiB sparse gzip.zip (or mnist.npz) where a search path points: its size alone rules it
    # out (the archive's published bound; what any .npz of the dataset's arrays needs), so it is
    # turned down from stat, a byte never read, and the reason says so.
    search = tmp_path / "search"
    if name == "emnist":
        path, dataset, reason_ = search / "emnist" / "gzip.zip", "emnist-digits", "more than the archive's"
    else:
        path, dataset, reason_ = search / "mnist.npz", "mnist", "more than any .npz of the dataset's arrays needs"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        f.truncate(4 << 30)
    code = """
import sys, fmnist
def rchar():
    with open("/proc/self/io") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("rchar:"))
before = rchar()
try:
    fmnist.load(sys.argv[1], "test", download=False)
except fmnist.DatasetNotFoundError as e:
    print(rchar() - before)
    print(e)
"""
    out = run(code, dataset, env={**os.environ, "FMNIST_SEARCH_PATH": str(search)})
    assert out.returncode == 0, out.stderr
    read, message = out.stdout.split("\n", 1)
    assert int(read) < 16 << 20, read  # a few MiB of Python's own imports at most, not 4 GiB
    assert f"{path}" in message and "4,294,967,296 bytes" in message and reason_ in message, message


def test_records_and_registries_nested_deeper_than_the_recursion_limit_are_unreadable(
    env: Path, data_dir: Path, tmp_path: Path
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    registry = tmp_path / "deep.json"
    registry.write_text(deep)
    with pytest.raises(fmnist.RegistryError, match="not valid JSON: nested deeper than Python's recursion limit"):
        fmnist.load_registry(registry)
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(fmnist.RegistryError, match="not valid TOML"):
        fmnist.load_registry(tmp_path / "deep.toml")
    _searchable(data_dir, tmp_path)
    folder = env / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / ".fmnist-cache.json").write_text(deep)
    y = fmnist.load(split="test")[1]  # the records unreadable: as if there were none
    assert y.shape == (10000,) and json.loads((folder / ".fmnist-cache.json").read_text())["version"] == 3
