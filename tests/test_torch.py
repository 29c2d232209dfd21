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
    class Mirrored(ft.FashionMNIST):
        mirrors = [server.mirror("ok")]

    root = tmp_path / "fresh"
    ours = Mirrored(str(root), train=False, download=True)
    raw = root / "FashionMNIST" / "raw"
    assert {"t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} <= set(os.listdir(raw))
    theirs = torchvision.datasets.FashionMNIST(str(root), train=False, download=False)
    assert torch.equal(ours.data, theirs.data) and torch.equal(ours.targets, theirs.targets)
    # Found again, warm, with no network at all.
    again = ft.FashionMNIST(str(root), train=False)
    assert torch.equal(again.data, ours.data) and not again.images.flags.owndata


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
            ds.images, ds.labels, 256, seed=3, epoch=epoch, dtype="float32", mean=0.2860, std=0.3530
        )
        served = list(it)
        assert len(served) == 40
        for (x, y), (rx, ry) in zip(served, reference):
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            assert np.array_equal(x.numpy(), rx) and np.array_equal(y.numpy(), ry.astype(np.int64))
    # Other forms: uint8 bytes, flattened, the labels' own dtype, a shard, drop_last.
    x, y = next(iter(ft.loader(ds.images, ds.labels, 100, dtype="uint8", flatten=True, int64_targets=False)))
    assert x.dtype == torch.uint8 and x.shape == (100, 784) and y.dtype == torch.uint8
    shard = ft.loader(ds, batch_size=256, drop_last=True, rank=1, world_size=3)
    assert len(shard) == len(list(shard)) == 3333 // 256
    with pytest.raises(ValueError, match="rank must be"):
        ft.loader(ds, batch_size=8, rank=2, world_size=2)
    with pytest.raises(TypeError, match="labels come from the dataset"):
        ft.loader(ds, ds.labels)
    with pytest.warns(UserWarning, match="pin_memory"):
        ft.loader(ds, batch_size=8, pin_memory=True)


def test_ddp_example_two_gloo_ranks(tmp_path: Path, data_dir: Path) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)
    env = {**os.environ, "FMNIST_HOME": str(tmp_path / "root"), "FMNIST_SEARCH_PATH": str(tmp_path / "search")}
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
    from .test_datasets import _my_digits

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
class Mirrored(ft.FashionMNIST):
    mirrors = [sys.argv[2]]
ds = Mirrored(sys.argv[1], train=False, download=True)
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
