"""fmnist feeding a torch.distributed (DDP) training loop on CPU.

    python examples/ddp.py --world-size 2 --epochs 2

Starts `world-size` processes (gloo backend, 127.0.0.1). Each rank loads Fashion-MNIST with
fmnist, then iterates its own shard of every epoch with
``fmnist.batches(..., rank=rank, world_size=world_size, epoch=epoch)``: the same permutation on
every rank (seeded by seed + epoch), cut into disjoint shards as torch's DistributedSampler cuts
them. Batches arrive as float32 numpy arrays, normalised in Rust one batch ahead on another
core, and cross into torch with ``torch.from_numpy``, which shares the memory: no copy.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

import fmnist

MEAN, STD = 0.2860, 0.3530


def run(rank: int, world_size: int, args: argparse.Namespace) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(args.port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)  # the same initial weights on every rank
    model = nn.parallel.DistributedDataParallel(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    (x_train, y_train), (x_test, y_test) = fmnist.load_data(root=args.root)

    for epoch in range(args.epochs):
        seen = 0
        for xb, yb in fmnist.batches(
            x_train,
            y_train,
            args.batch_size,
            seed=args.seed,
            epoch=epoch,
            rank=rank,
            world_size=world_size,
            drop_last=True,
            dtype="float32",
            mean=MEAN,
            std=STD,
        ):
            x = torch.from_numpy(xb)  # shares xb's memory
            y = torch.from_numpy(yb.astype(np.int64))
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()  # DDP averages the gradients across ranks here
            opt.step()
            seen += len(xb)
        print(f"rank {rank}: epoch {epoch}: {seen} examples, last loss {loss.item():.3f}", flush=True)

    if rank == 0:
        with torch.no_grad():
            xb = next(
                iter(fmnist.batches(x_test, y_test, len(x_test), shuffle=False, dtype="float32", mean=MEAN, std=STD))
            )[0]
            accuracy = (model(torch.from_numpy(xb)).argmax(1).numpy() == y_test).mean()
        print(f"test accuracy {accuracy:.3f}")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=29511)
    parser.add_argument("--root", default=None, help="fmnist data root (default: $FMNIST_HOME or ~/.cache/fmnist)")
    args = parser.parse_args()
    mp.spawn(run, args=(args.world_size, args), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
