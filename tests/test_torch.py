"""fmnist.torch against the real torch and torchvision (installed by scripts/test in the suite
that runs this module; the other suites leave it out with --ignore, not a skip): the same
tensors, classes and errors as torchvision's classes, files shared both ways, DataLoader
workers, the loader's order and DDP with two gloo ranks in real processes."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision  # type: ignore[import-untyped]
from torch.utils.data import DataLoader
from torchvision import transforms

import fmnist
import fmnist.torch as ft

from .conftest import FILES, link
from .httpserver import Server

REPO = Path(__file__).resolve().parents[1]
TO_TENSOR = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path / "fmnist-root"))
    monkeypatch.setenv("FMNIST_SEARCH_PATH", str(tmp_path / "nothing"))


@pytest.fixture
def tv_root(tmp_path: Path, data_dir: Path, isolated: None) -> Path:
    """The real files as torchvision lays them out after its download: each .gz and its
    decompressed copy in <root>/FashionMNIST/raw/."""
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, raw / f)
        (raw / f[:-3]).write_bytes(gzip.decompress((data_dir / f).read_bytes()))
    return tmp_path / "tv"


def test_importing_fmnist_does_not_import_torch() -> None:
    code = "import sys, fmnist; fmnist.load_data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("train", [True, False])
def test_the_same_dataset_as_torchvisions(tv_root: Path, train: bool) -> None:
    ours = ft.FashionMNIST(str(tv_root), train=train, transform=TO_TENSOR)
    theirs = torchvision.datasets.FashionMNIST(str(tv_root), train=train, transform=TO_TENSOR)
    assert ours.data.dtype == theirs.data.dtype == torch.uint8 and torch.equal(ours.data, theirs.data)
    assert ours.targets.dtype == theirs.targets.dtype == torch.int64 and torch.equal(ours.targets, theirs.targets)
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    assert len(ours) == len(theirs) and ours.raw_folder == theirs.raw_folder
    assert repr(ours).splitlines()[:4] == repr(theirs).splitlines()[:4]
    # The same training-loop code over both: every index (all of the test split; the training
    # split's first and last 2,000) gives the same tensor and target.
    n = len(ours)
    for i in range(n) if not train else [*range(2000), *range(n - 2000, n)]:
        (x, y), (tx, ty) = ours[i], theirs[i]
        assert y == ty and torch.equal(x, tx), i
    plain = ft.FashionMNIST(str(tv_root), train=train)[7][0]
    assert plain.mode == "L" and plain.size == (28, 28)


def test_missing_data_is_torchvisions_runtime_error_with_fmnists_reasons(tmp_path: Path, isolated: None) -> None:
    with pytest.raises(RuntimeError) as theirs:
        torchvision.datasets.MNIST(str(tmp_path / "empty"))
    with pytest.raises(RuntimeError) as ours:
        ft.MNIST(str(tmp_path / "empty"))
    assert str(ours.value).splitlines()[0] == str(theirs.value)
    assert isinstance(ours.value, fmnist.DatasetNotFoundError) and "looked in:" in str(ours.value)
    assert ft.MNIST.classes == torchvision.datasets.MNIST.classes
    assert ft.KMNIST.classes == torchvision.datasets.KMNIST.classes


@pytest.fixture
def server(data_dir: Path) -> Iterator[Server]:
    with Server({f: (data_dir / f).read_bytes() for f in FILES}) as s:
        yield s


def test_what_fmnist_downloads_torchvision_finds(tmp_path: Path, server: Server, isolated: None) -> None:
    class FashionMNIST(ft.FashionMNIST):  # (its name is its folder: torchvision's rule)
        mirrors = [server.mirror("ok")]

    root = tmp_path / "fresh"
    ours = FashionMNIST(str(root), train=False, download=True)
    raw = root / "FashionMNIST" / "raw"
    assert {"t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} <= set(os.listdir(raw))
    theirs = torchvision.datasets.FashionMNIST(str(root), train=False, download=False)
    assert torch.equal(ours.data, theirs.data) and torch.equal(ours.targets, theirs.targets)
    # Found again, warm, with no network at all.
    again = ft.FashionMNIST(str(root), train=False)
    assert torch.equal(again.data, ours.data) and all(p.mapped for p in again.provenance.values())  # fmnist's own cache


def test_dataloader_workers_and_pickling(tv_root: Path) -> None:
    ours = ft.FashionMNIST(str(tv_root), train=False, transform=TO_TENSOR)
    theirs = torchvision.datasets.FashionMNIST(str(tv_root), train=False, transform=TO_TENSOR)
    copy = pickle.loads(pickle.dumps(ours))
    assert torch.equal(copy.data, ours.data) and copy.classes == ours.classes
    batches = list(DataLoader(ours, batch_size=500, num_workers=2))
    expected = list(DataLoader(theirs, batch_size=500, num_workers=0))
    assert len(batches) == len(expected) == 20
    for (x, y), (tx, ty) in zip(batches, expected):
        assert torch.equal(x, tx) and torch.equal(y, ty)


def test_loader_serves_fmnist_batches_as_tensors(tv_root: Path) -> None:
    ds = ft.FashionMNIST(str(tv_root), train=False)
    it = ft.loader(ds, batch_size=256, seed=3, mean=0.2860, std=0.3530)
    assert len(it) == 40  # ceil(10000 / 256)
    for epoch in (0, 1):
        it.set_epoch(epoch)
        reference = fmnist.batches(
            ds.data.numpy(), ds.targets.numpy(), 256, seed=3, epoch=epoch, dtype="float32", mean=0.2860, std=0.3530
        )
        served = list(it)
        assert len(served) == 40
        for (x, y), (rx, ry) in zip(served, reference):
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            assert np.array_equal(x.numpy(), rx) and np.array_equal(y.numpy(), ry)
    # Other forms: uint8 bytes, flattened, the labels' own dtype, a shard, drop_last.
    images, labels = ds.data.numpy(), ds.targets.numpy().astype(np.uint8)
    x, y = next(iter(ft.loader(images, labels, 100, dtype="uint8", flatten=True, int64_targets=False)))
    assert x.dtype == torch.uint8 and x.shape == (100, 784) and y.dtype == torch.uint8
    shard = ft.loader(ds, batch_size=256, drop_last=True, rank=1, world_size=3)
    assert len(shard) == len(list(shard)) == 3333 // 256
    with pytest.raises(ValueError, match="rank must be"):
        ft.loader(ds, batch_size=8, rank=2, world_size=2)
    with pytest.raises(TypeError, match="labels come from the dataset"):
        ft.loader(ds, ds.targets)
    with pytest.warns(UserWarning, match="pin_memory"):
        ft.loader(ds, batch_size=8, pin_memory=True)


def test_ddp_example_two_gloo_ranks(tmp_path: Path, present: dict[str, str]) -> None:
    env = present
    report = tmp_path / "report"
    port = str(29600 + os.getpid() % 300)
    cmd = [sys.executable, str(REPO / "examples" / "ddp.py"), "--epochs", "3", "--limit", "6000"]
    cmd += ["--batch-size", "100", "--port", port, "--report", str(report)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    ranks = [json.loads((tmp_path / f"report.{r}.json").read_text()) for r in (0, 1)]
    shards = [set(r["indices"]) for r in ranks]
    # Disjoint shards that cover the subset, 3,000 examples each (6,000 divides evenly).
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(6000))
    assert all(len(r["indices"]) == 3000 for r in ranks)
    for r in ranks:  # the loss falls: the last epoch's mean is below the first's
        losses = np.array(r["losses"]).reshape(3, -1)
        assert losses[-1].mean() < losses[0].mean() * 0.8, losses.mean(axis=1)
    assert "test accuracy" in out.stdout
    shutil.rmtree(tmp_path / "root", ignore_errors=True)


def test_a_dataset_users_define_through_fmnist_torch(tmp_path: Path, isolated: None) -> None:
    from .resolving import _my_digits

    path, blobs, arrays = _my_digits(tmp_path)
    before = dict(fmnist.DATASETS)
    try:
        fmnist.load_registry(path)
        raw = tmp_path / "root" / "MyDigits" / "raw"
        raw.mkdir(parents=True)
        for name, blob in blobs.items():
            (raw / name).write_bytes(blob)
        ds = ft.IDXDataset("my-digits", str(tmp_path / "root"), train=False)
        assert len(ds) == 90 and ds.classes == ["zero", "one", "two"] and ds.raw_folder == str(raw)
        assert torch.equal(ds.data, torch.from_numpy(arrays["digits-test-images.gz"]))
        img, target = ds[45]
        assert img.size == (12, 12) and target == 1
        assert repr(ds).startswith("Dataset IDXDataset('my-digits')")
        x, y = next(iter(ft.loader(ds, batch_size=90, shuffle=False)))
        assert x.shape == (90, 12, 12) and y.tolist() == arrays["digits-test-labels.gz"].tolist()
    finally:
        fmnist.DATASETS.clear()
        fmnist.DATASETS.update(before)


WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is util-linux's (Linux)")
@pytest.mark.parametrize("cache", ["0", "1"])
def test_torchvision_downloads_and_re_extracts_after_fmnist_and_a_holder_survives(
    tmp_path: Path, server: Server, isolated: None, cache: str
) -> None:
    # All of it as a user without root's override of file permissions: fmnist.torch downloads
    # into torchvision's root; a process holds its arrays while torchvision itself downloads and
    # extracts every file into the same raw/ folder (open(path, "wb") over what fmnist wrote).
    root = tmp_path / "shared"
    env = {**os.environ, "FMNIST_CACHE": cache}
    holder = """
import sys, fmnist.torch as ft
class FashionMNIST(ft.FashionMNIST):
    mirrors = [sys.argv[2]]
ds = FashionMNIST(sys.argv[1], train=False, download=True)
before = ds.data.clone(), ds.targets.clone()
print("ready", flush=True)
sys.stdin.readline()  # torchvision re-extracts meanwhile
assert bool((ds.data == before[0]).all()) and bool((ds.targets == before[1]).all())
print("intact", int(ds.data.sum()), flush=True)
"""
    extract = """
import sys, torchvision
from torchvision.datasets.utils import download_and_extract_archive
raw = sys.argv[1]
for url, md5 in torchvision.datasets.FashionMNIST.resources:
    name = url.rsplit("/", 1)[-1]  # (torchvision's resources are file names, its mirrors the bases)
    download_and_extract_archive(sys.argv[2] + name, download_root=raw, filename=name, md5=None)
ds = torchvision.datasets.FashionMNIST(sys.argv[3], train=False, download=True)
print(len(ds))
"""
    a = subprocess.Popen(
        [*WITHOUT_OVERRIDE, sys.executable, "-c", holder, str(root), server.mirror("ok")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert a.stdout is not None and a.stdin is not None
        assert a.stdout.readline().strip() == "ready", a.stderr.read() if a.stderr else ""
        raw = root / "FashionMNIST" / "raw"
        assert set(os.listdir(raw)) == {*FILES, *(f[:-3] for f in FILES)}  # torchvision's form, nothing else
        assert all((raw / f).stat().st_mode & 0o777 == 0o666 & ~_umask() for f in os.listdir(raw))
        b = subprocess.run(
            [*WITHOUT_OVERRIDE, sys.executable, "-c", extract, str(raw), server.mirror("ok"), str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert b.returncode == 0 and b.stdout.strip() == "10000", b.stderr
        out, err = a.communicate("go\n", timeout=120)
        assert a.returncode == 0 and out.startswith("intact"), (a.returncode, err)
    finally:
        if a.poll() is None:
            a.kill()
            a.communicate()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- issue 18: subclasses of torchvision's classes, torchvision's rules in its folders ----------

FAMILY = ("MNIST", "FashionMNIST", "KMNIST", "EMNIST", "QMNIST")


def test_the_classes_are_torchvisions_with_its_attributes(tv_root: Path) -> None:
    for name in FAMILY:
        ours, theirs = getattr(ft, name), getattr(torchvision.datasets, name)
        assert issubclass(ours, theirs) and ours.__name__ == theirs.__name__
        assert ours.resources == theirs.resources and ours.mirrors == theirs.mirrors and ours.classes == theirs.classes
    ds = ft.FashionMNIST(str(tv_root), train=False, transform=TO_TENSOR)
    theirs = torchvision.datasets.FashionMNIST(str(tv_root), train=False, transform=TO_TENSOR)
    assert isinstance(ds, torchvision.datasets.VisionDataset) and ds.verified
    assert repr(ds) == repr(theirs)  # the transform's lines too
    assert (ds.raw_folder, ds.processed_folder) == (theirs.raw_folder, theirs.processed_folder)
    assert (ds.training_file, ds.test_file) == (theirs.training_file, theirs.test_file)
    with pytest.warns(UserWarning, match="test_labels has been renamed targets"):
        assert ds.test_labels is ds.targets
    with pytest.warns(UserWarning, match="train_data has been renamed data"):
        assert ds.train_data is ds.data
    assert repr(ds.transforms) == repr(theirs.transforms)
    for bad in (1.0, "3"):  # index types: as torchvision's (tensor indexing refuses them)
        with pytest.raises(Exception) as e_theirs:
            theirs[bad]
        with pytest.raises(type(e_theirs.value)):
            ds[bad]
    # torchvision's transforms v2 wrapper takes it as torchvision's own.
    from torchvision.datasets import wrap_dataset_for_transforms_v2  # type: ignore[import-untyped]

    wrapped = wrap_dataset_for_transforms_v2(ft.FashionMNIST(str(tv_root), train=False))
    assert isinstance(wrapped, ft.FashionMNIST) and len(wrapped) == 10000

    # A subclass keeps torchvision's rule for its folder: its own name.
    class Mine(ft.FashionMNIST):
        pass

    with pytest.raises(RuntimeError, match="^Dataset not found. You can use download=True to download it"):
        Mine(str(tv_root))
    assert Mine.__mro__[1] is ft.FashionMNIST


def test_filtering_by_reassigning_data_and_targets_is_what_items_and_the_loader_serve(tv_root: Path) -> None:
    ours = ft.FashionMNIST(str(tv_root), train=False)
    theirs = torchvision.datasets.FashionMNIST(str(tv_root), train=False)
    for ds in (ours, theirs):
        keep = (ds.targets == 0) | (ds.targets == 9)
        ds.data, ds.targets = ds.data[keep], ds.targets[keep]
        ds.targets[0] = 5  # edited in place: items follow
    assert len(ours) == len(theirs) == 2000
    for i in range(len(ours)):
        (x, y), (tx, ty) = ours[i], theirs[i]
        assert y == ty and np.array_equal(np.asarray(x), np.asarray(tx)), i
    assert ours[0][1] == 5
    served = list(ft.loader(ours, batch_size=500, shuffle=False, dtype="uint8"))
    assert sum(len(x) for x, _ in served) == 2000
    assert torch.equal(torch.cat([y for _, y in served]), ours.targets)


def _subset(raw: Path, data_dir: Path, n: int) -> None:
    """torchvision's folder holding a subset of its own (the first ``n`` examples of each split;
    torchvision wants all four files there, whichever split it loads)."""
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        fmnist.write_idx(raw / name[:-3], fmnist.read_idx(data_dir / name)[:n])


def test_torchvisions_files_load_by_its_rules_warned_when_nothing_proves_them(
    tmp_path: Path, data_dir: Path, isolated: None
) -> None:
    root = tmp_path / "tv"
    raw = root / "FashionMNIST" / "raw"
    _subset(raw, data_dir, 100)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir()}
    with pytest.warns(fmnist.UnverifiedDataWarning, match=r"t10k-images-idx3-ubyte: not verified \("):
        ours = ft.FashionMNIST(str(root), train=False)
    theirs = torchvision.datasets.FashionMNIST(str(root), train=False)
    assert not ours.verified and len(ours) == len(theirs) == 100
    assert torch.equal(ours.data, theirs.data) and torch.equal(ours.targets, theirs.targets)
    assert all(p.proof == "unverified" for p in ours.provenance.values())
    with pytest.raises(RuntimeError, match="^Dataset not found") as e:
        ft.FashionMNIST(str(root), train=False, verify=True)
    assert "t10k-images-idx3-ubyte" in str(e.value)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir()}
    assert after == before  # nothing there deleted or changed
    # Unproven data is never cached.
    assert not list((tmp_path / "fmnist-root").rglob("t10k-*"))


def test_emnist_and_qmnist_as_torchvisions_on_the_same_files(tmp_path: Path, qmnist_dir: Path, isolated: None) -> None:
    root = tmp_path / "tv"
    rng = np.random.default_rng(2)
    raw = root / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    for part, n in (("train", 30), ("test", 10)):
        fmnist.write_idx(raw / f"emnist-letters-{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), np.uint8))
        fmnist.write_idx(raw / f"emnist-letters-{part}-labels-idx1-ubyte", rng.integers(1, 27, n).astype(np.uint8))
    with pytest.warns(fmnist.UnverifiedDataWarning):
        ours = ft.EMNIST(str(root), split="letters", train=False)
    theirs = torchvision.datasets.EMNIST(str(root), split="letters", train=False)
    assert ours.classes == theirs.classes and ours.classes[:2] == ["N/A", "a"] and len(ours) == 10
    assert torch.equal(ours.data, theirs.data) and torch.equal(ours.targets, theirs.targets)
    assert [ours[i][1] for i in range(10)] == [theirs[i][1] for i in range(10)]
    with pytest.raises(ValueError, match="split"):
        ft.EMNIST(str(root), split="nope")
    # QMNIST: its real test labels (verified by their content digest) beside images of our own.
    raw = root / "QMNIST" / "raw"
    raw.mkdir(parents=True)
    labels = fmnist.read_idx(qmnist_dir / "qmnist-test-labels-idx2-int.gz")
    fmnist.write_idx(raw / "qmnist-test-labels-idx2-int", labels)
    fmnist.write_idx(raw / "qmnist-test-images-idx3-ubyte", rng.integers(0, 256, (60000, 28, 28), np.uint8))
    for what, compat in (("test10k", True), ("test50k", False), ("test", True)):
        with pytest.warns(fmnist.UnverifiedDataWarning, match="qmnist-test-images-idx3-ubyte"):
            q = ft.QMNIST(str(root), what=what, compat=compat)
        tq = torchvision.datasets.QMNIST(str(root), what=what, compat=compat)
        assert torch.equal(q.data, tq.data) and torch.equal(q.targets, tq.targets) and q.targets.dtype == torch.int64
        assert q.provenance["qmnist-test-labels-idx2-int.gz"].proof == "content_sha256"  # the labels are proven
        for i in (0, len(q) - 1):
            (x, y), (tx, ty) = q[i], tq[i]
            assert np.array_equal(np.asarray(x), np.asarray(tx)) and (y == ty if compat else torch.equal(y, ty))
        assert repr(q) == repr(tq)


def test_a_failed_download_is_torchvisions_runtime_error(tmp_path: Path, server: Server, isolated: None) -> None:
    class FashionMNIST(ft.FashionMNIST):
        mirrors = [server.mirror("404")]

    with pytest.raises(RuntimeError, match="^Error downloading ") as e:
        FashionMNIST(str(tmp_path / "fresh"), download=True)
    assert "HTTP 404" in str(e.value) and isinstance(e.value, fmnist.DatasetNotFoundError)


def test_rows_slice_a_split_as_load_does_and_the_loader_takes_indices(tv_root: Path) -> None:
    # rows="train[:90%]" (fmnist's keyword) holds the rows load gives for the same spec, in place
    # of train; the loader serves a subset of rows from indices, as fmnist.batches does.
    whole = ft.FashionMNIST(str(tv_root), train=True)
    head = ft.FashionMNIST(str(tv_root), rows="train[:90%]")
    tail = ft.FashionMNIST(str(tv_root), train=True, rows="test[-1000:]")  # rows decides, not train
    assert len(head) == 54000 and torch.equal(head.data, whole.data[:54000]) and head.train
    assert (
        len(tail) == 1000
        and not tail.train
        and int(tail.targets[-1]) == int(ft.FashionMNIST(str(tv_root), train=False).targets[-1])
    )
    assert head[53999][1] == int(whole.targets[53999])
    with pytest.raises(ValueError, match=r"split 'validation\[:10%\]': fashion-mnist has the splits"):
        ft.FashionMNIST(str(tv_root), rows="validation[:10%]")
    with pytest.raises(ValueError, match="mixes rows and percents"):
        ft.FashionMNIST(str(tv_root), rows="train[1:50%]")
    train_rows, held = fmnist.split_indices(len(whole), 0.1, seed=0, stratify=whole.targets.numpy())
    batches = ft.loader(whole, batch_size=500, indices=held, shuffle=False)
    assert len(batches) == 12
    seen = torch.cat([y for _, y in batches])
    assert torch.equal(seen, whole.targets[torch.from_numpy(held)])
