"""PyTorch: one epoch of the real training set as normalised float32 tensors of 256, torchvision's
way (FashionMNIST + ToTensor + Normalize behind a DataLoader, 0 and 2 workers) against
fmnist.torch.FashionMNIST behind the same DataLoader and fmnist.torch.loader, with fmnist.batches
alone (numpy, no tensors) as the floor the loader must stay near; and the time to construct each
dataset object. torch and torchvision are optional: these rows are measured where they are
installed (the test suite that has them is scripts/test's sdist+torch suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import fmnist

torch = pytest.importorskip("torch", reason="torch is optional: these rows are measured where it is installed")
tv = pytest.importorskip("torchvision", reason="torchvision is optional: measured where it is installed")
import fmnist.torch as ft  # noqa: E402 - needs torch, checked above

MEAN, STD = 0.2860, 0.3530
BATCH = 256
EPOCH = "epoch of the training set as torch float32 tensors of 256, normalised"
CONSTRUCT = "dataset object: FashionMNIST(root, train=True), files on disk"
NBYTES = 60000 * 784 * 4


def transform() -> Any:
    return tv.transforms.Compose([tv.transforms.ToTensor(), tv.transforms.Normalize((MEAN,), (STD,))])


def epoch(loader: Any) -> int:
    return sum(len(x) for x, _ in loader)


def test_fmnist_batches_alone(measure: Callable[..., Any], root: Path) -> None:
    ds = ft.FashionMNIST(str(root), train=True)

    def run() -> int:
        return epoch(fmnist.batches(ds.data.numpy(), ds.targets.numpy(), BATCH, dtype="float32", mean=MEAN, std=STD))

    assert measure(EPOCH, "fmnist.batches (numpy arrays, no tensors)", run, NBYTES, rounds=100) == 60000


def test_fmnist_torch_loader(measure: Callable[..., Any], root: Path) -> None:
    loader = ft.loader(ft.FashionMNIST(str(root), train=True), batch_size=BATCH, mean=MEAN, std=STD)
    assert measure(EPOCH, "fmnist.torch.loader", lambda: epoch(loader), NBYTES, rounds=100) == 60000


def test_construct_torchvision(measure: Callable[..., Any], root: Path) -> None:
    ds = measure(CONSTRUCT, "torchvision.datasets.FashionMNIST", lambda: tv.datasets.FashionMNIST(str(root)), NBYTES)
    assert len(ds) == 60000


def test_construct_fmnist_on_torchvisions_files(measure: Callable[..., Any], root: Path) -> None:
    # torchvision's rules: the files torchvision left in raw/ are what is loaded, read into memory
    # and hashed on every construction (never mapped: torchvision may rewrite them).
    name = "fmnist.torch.FashionMNIST (torchvision's files: read and verified)"
    ds = measure(CONSTRUCT, name, lambda: ft.FashionMNIST(str(root)), NBYTES)
    assert len(ds) == 60000 and ds.verified and not any(p.mapped for p in ds.provenance.values())


def test_construct_fmnist_where_its_cache_serves(
    measure: Callable[..., Any], root: Path, data_dir: Path, tmp_path: Path
) -> None:
    # A root fmnist.torch downloaded into (from a file:// mirror of the real files): the files it
    # placed in raw/ are unchanged, so fmnist's own cache serves them, mapped.
    class FashionMNIST(ft.FashionMNIST):
        mirrors = [data_dir.as_uri() + "/"]

    mine = tmp_path / "fmnist-downloaded"
    FashionMNIST(str(mine), download=True)
    name = "fmnist.torch.FashionMNIST (fmnist downloaded it: its cache serves)"
    ds = measure(CONSTRUCT, name, lambda: ft.FashionMNIST(str(mine)), NBYTES)
    assert len(ds) == 60000 and all(p.mapped and p.source == "fmnist warm cache" for p in ds.provenance.values())


# Last: the DataLoader rows take seconds each, and their worker processes must not overlap the
# millisecond rows above.
@pytest.mark.parametrize("workers", [0, 2])
def test_torchvision_dataloader(measure: Callable[..., Any], root: Path, workers: int) -> None:
    ds = tv.datasets.FashionMNIST(str(root), train=True, transform=transform())
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers)
    name = f"torchvision + DataLoader ({workers} workers)"
    assert measure(EPOCH, name, lambda: epoch(loader), NBYTES, rounds=3) == 60000


@pytest.mark.parametrize("workers", [0, 2])
def test_fmnist_dataset_in_the_same_dataloader(measure: Callable[..., Any], root: Path, workers: int) -> None:
    ds = ft.FashionMNIST(str(root), train=True, transform=transform())
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers)
    name = f"fmnist.torch.FashionMNIST + DataLoader ({workers} workers)"
    assert measure(EPOCH, name, lambda: epoch(loader), NBYTES, rounds=3) == 60000
