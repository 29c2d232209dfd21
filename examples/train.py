"""Time to accuracy: a small CNN trained on Fashion-MNIST on the CPU, fed by fmnist and by
torchvision.

    python examples/train.py                        # both pipelines, 15 epochs each
    python examples/train.py --pipeline fmnist --epochs 1 --limit 4096 --test-limit 1000

The model (83,050 parameters, under the 100,000 of the seed table's "2 Conv <100K parameters"
entry, 0.925) is three 3x3 convolutions, each with batch norm and 2x2 max pooling, then one
linear layer; AdamW with a one-cycle learning rate, batches of 128. Both pipelines augment every
example of every epoch the same way: a random crop of the image padded by 2, a horizontal flip
with probability 0.5, random erasing with probability 0.1 (torchvision's scale and ratio),
after normalising with the training set's mean and standard deviation.

- ``fmnist``: ``fmnist.torch.loader(..., augment=fmnist.Augment(pad=2, hflip=0.5, erase=0.1))``:
  batches made whole in Rust, one ahead on a second thread.
- ``torchvision``: ``torchvision.datasets.FashionMNIST`` with ``RandomCrop(28, padding=2)``,
  ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``, ``RandomErasing(p=0.1)`` per item
  behind a ``DataLoader`` (``--workers``, 2 by default).

For each epoch it reports the seconds, the share of them spent waiting for the next batch, the
mean training loss, and the test accuracy (measured after the epoch, not counted in its time);
``--json`` writes all of it. The data come from wherever fmnist finds or downloads them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import fmnist
import fmnist.torch

MEAN, STD = 0.2860, 0.3530  # the training set's pixel mean and standard deviation
PAD, HFLIP, ERASE = 2, 0.5, 0.1


def model() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    # 28x28 -> 14x14 -> 7x7 -> 3x3, then one linear layer.
    return nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 96), nn.Flatten(), nn.Linear(96 * 3 * 3, 10))


def fmnist_batches(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Any:
    augment = fmnist.Augment(pad=PAD, hflip=HFLIP, erase=ERASE)
    return fmnist.torch.loader(x, y, args.batch_size, seed=args.seed, mean=MEAN, std=STD, augment=augment)


def torchvision_batches(args: argparse.Namespace, limit: int) -> Any:
    import torchvision
    from torchvision import transforms as T

    # torchvision's own class reads its own folder: fmnist.torch places torchvision's files there
    # (from wherever fmnist finds the dataset), as torchvision's download would.
    root = args.torchvision_root or tempfile.mkdtemp(prefix="fmnist-train-")
    fmnist.torch.FashionMNIST(root, train=True, download=True)
    pipeline = T.Compose(
        [
            T.RandomCrop(28, padding=PAD),
            T.RandomHorizontalFlip(HFLIP),
            T.ToTensor(),
            T.Normalize((MEAN,), (STD,)),
            T.RandomErasing(p=ERASE),
        ]
    )
    ds: Any = torchvision.datasets.FashionMNIST(root, train=True, transform=pipeline)
    if limit:
        ds = torch.utils.data.Subset(ds, range(limit))
    generator = torch.Generator().manual_seed(args.seed)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        generator=generator,
    )


class Timed:
    """Iterates ``batches``, adding the time spent waiting for each one to ``waited``."""

    def __init__(self, batches: Iterable[Any]) -> None:
        self.batches = batches
        self.waited = 0.0

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.batches)
        while True:
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self.waited += time.perf_counter() - t
            yield batch


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    net.eval()
    right = 0
    with torch.no_grad():
        for xb, yb in fmnist.torch.loader(x, y, 1000, shuffle=False, mean=MEAN, std=STD):
            right += int((net(xb.unsqueeze(1)).argmax(1) == yb).sum())
    net.train()
    return right / len(x)


def train(pipeline: str, args: argparse.Namespace) -> dict[str, Any]:
    (x_train, y_train), (x_test, y_test) = fmnist.load_data(root=args.root)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    torch.manual_seed(args.seed)  # the same initial weights for both pipelines
    net = model()
    batches = fmnist_batches(x_train, y_train, args) if pipeline == "fmnist" else torchvision_batches(args, args.limit)
    steps = len(batches)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps)
    epochs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for epoch in range(args.epochs):
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)  # fmnist: a new order and new augmentations each epoch
        timed = Timed(batches)
        losses: list[float] = []
        t = time.perf_counter()
        for xb, yb in timed:
            xb = xb.unsqueeze(1) if xb.ndim == 3 else xb  # fmnist serves (B, 28, 28)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - t
        acc = accuracy(net, x_test, y_test)
        row = {
            "epoch": epoch + 1,
            "seconds": round(seconds, 2),
            "waiting_share": round(timed.waited / seconds, 4),
            "loss": round(float(np.mean(losses)), 4),
            "test_accuracy": round(acc, 4),
            "losses": [round(v, 4) for v in losses] if args.all_losses else None,
        }
        epochs.append(row)
        print(
            f"{pipeline:11s} epoch {epoch + 1:2d}: {seconds:6.1f} s, waiting for data "
            f"{100 * row['waiting_share']:5.2f}%, loss {row['loss']:.4f}, test accuracy {acc:.4f}",
            flush=True,
        )
        if args.max_seconds and time.perf_counter() - started > args.max_seconds:
            print(f"{pipeline}: stopping after {args.max_seconds} s (--max-seconds)", flush=True)
            break
    return {
        "pipeline": pipeline,
        "parameters": sum(p.numel() for p in net.parameters()),
        "epochs": epochs,
        "best_test_accuracy": max(e["test_accuracy"] for e in epochs),
        "median_seconds_per_epoch": float(np.median([e["seconds"] for e in epochs])),
        "mean_waiting_share": float(np.mean([e["waiting_share"] for e in epochs])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=["fmnist", "torchvision", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="torchvision's DataLoader workers")
    parser.add_argument("--threads", type=int, default=0, help="torch's intra-op threads (0: torch's default)")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training examples only")
    parser.add_argument("--test-limit", type=int, default=0, help="test on the first N test examples only")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop a pipeline after the epoch past this")
    parser.add_argument("--all-losses", action="store_true", help="keep every batch's loss in --json")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--root", default=None, help="fmnist data root (default: $FMNIST_HOME or ~/.cache/fmnist)")
    parser.add_argument("--torchvision-root", default="", help="torchvision's folder (default: a new temporary one)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [train(p, args) for p in (["fmnist", "torchvision"] if args.pipeline == "both" else [args.pipeline])]
    for r in runs:
        print(
            f"{r['pipeline']}: {r['parameters']:,} parameters, {r['median_seconds_per_epoch']:.1f} s per epoch "
            f"(median), waiting for data {100 * r['mean_waiting_share']:.2f}% of it, best test accuracy "
            f"{r['best_test_accuracy']:.4f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
