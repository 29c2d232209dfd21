"""One augmented epoch of the real training set as normalised float32 batches of 256: random
crop (padding 4), horizontal flip (0.5) and random erasing (0.5, torchvision's defaults).
fmnist.batches and fmnist.torch.loader with fmnist.Augment against the same epoch without
augmentation (the goal: at most 1.5x its time), against torchvision's per-item transforms behind
a DataLoader (0 and 2 workers), and against torchvision's transforms.v2 on uint8 tensors, per
item behind a DataLoader. The torch rows are measured where torch and torchvision are installed
(scripts/test's sdist+torch suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import fmnist

MEAN, STD = 0.2860, 0.3530
BATCH = 256
ROUNDS = 200  # an epoch takes ~10 ms: many rounds steady the median on a noisy machine
GROUP = "epoch of augmented batches of 256 (crop pad 4, flip, erase 0.5), float32 normalised"
NBYTES = 60000 * 784 * 4
AUGMENT = fmnist.Augment(pad=4, hflip=0.5, erase=0.5)


@pytest.fixture(scope="module")
def train(data_dir: Path) -> tuple[Any, Any]:
    return (
        fmnist.read_idx(data_dir / "train-images-idx3-ubyte.gz"),
        fmnist.read_idx(data_dir / "train-labels-idx1-ubyte.gz"),
    )


def epoch(batches: Any) -> int:
    return sum(len(x) for x, _ in batches)


def fmnist_epoch(x: Any, y: Any, augment: fmnist.Augment | None) -> int:
    return epoch(fmnist.batches(x, y, BATCH, dtype="float32", mean=MEAN, std=STD, augment=augment))


def test_fmnist_augmented(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    name = "fmnist.batches + Augment"
    assert measure(GROUP, name, lambda: fmnist_epoch(x, y, AUGMENT), NBYTES, rounds=ROUNDS) == 60000


def test_fmnist_without_augmentation(measure: Callable[..., Any], train: Any) -> None:
    x, y = train
    name = "fmnist.batches (the same epoch, no augmentation)"
    assert measure(GROUP, name, lambda: fmnist_epoch(x, y, None), NBYTES, rounds=ROUNDS) == 60000


@pytest.fixture(scope="module")
def tv() -> Any:
    pytest.importorskip("torch", reason="torch is optional: these rows are measured where it is installed")
    return pytest.importorskip("torchvision", reason="torchvision is optional: measured where it is installed")


def test_fmnist_torch_loader_augmented(measure: Callable[..., Any], train: Any, tv: Any) -> None:
    from fmnist.torch import loader

    x, y = train
    it = loader(x, y, BATCH, mean=MEAN, std=STD, augment=AUGMENT)
    assert measure(GROUP, "fmnist.torch.loader + Augment", lambda: epoch(it), NBYTES, rounds=ROUNDS) == 60000


def per_item(tv: Any) -> Any:
    t = tv.transforms
    return t.Compose(
        [
            t.RandomCrop(28, padding=4),
            t.RandomHorizontalFlip(),
            t.ToTensor(),
            t.Normalize((MEAN,), (STD,)),
            t.RandomErasing(p=0.5),
        ]
    )


# Last: these rows take seconds each, and their worker processes must not overlap the
# millisecond rows above.
@pytest.mark.parametrize("workers", [0, 2])
def test_torchvision_per_item(measure: Callable[..., Any], root: Path, tv: Any, workers: int) -> None:
    import torch

    ds = tv.datasets.FashionMNIST(str(root), train=True, transform=per_item(tv))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers)
    name = f"torchvision + DataLoader ({workers} workers, per item)"
    assert measure(GROUP, name, lambda: epoch(loader), NBYTES, rounds=3) == 60000


@pytest.mark.parametrize("workers", [0, 2])
def test_torchvision_v2_on_uint8_tensors(measure: Callable[..., Any], train: Any, tv: Any, workers: int) -> None:
    import torch
    from torchvision.transforms import v2

    x, y = train
    images = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)  # (N, 1, 28, 28) uint8
    labels = torch.from_numpy(y.astype(np.int64))
    pipeline = v2.Compose(
        [
            v2.RandomCrop(28, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([MEAN], [STD]),
            v2.RandomErasing(p=0.5),
        ]
    )

    class Tensors(torch.utils.data.Dataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            return pipeline(images[i]), labels[i]

    loader = torch.utils.data.DataLoader(Tensors(), batch_size=BATCH, shuffle=True, num_workers=workers)
    name = f"torchvision transforms.v2 + DataLoader ({workers} workers, per item, uint8 tensors)"
    assert measure(GROUP, name, lambda: epoch(loader), NBYTES, rounds=3) == 60000
