"""fmnist feeding a torch.distributed (DDP) training loop on CPU.

    python examples/ddp.py --world-size 2 --epochs 2

Starts `world-size` processes (gloo backend, 127.0.0.1). Each rank loads Fashion-MNIST with
fmnist and iterates ``fmnist.torch.loader``: the same permutation on every rank (seeded by seed +
epoch, set with ``set_epoch`` as with DistributedSampler), cut into disjoint shards as torch's
DistributedSampler cuts them; rank and world size come from the initialised process group.
Batches arrive as float32 tensors, normalised in Rust one batch ahead on another core, sharing
the batch's memory (no copy).

The loader serves each example's index as its label, and the model's targets are looked up by
it: so each rank can say which examples it trained on (``--report``, used by the tests).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

import fmnist
import fmnist.torch

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
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    targets = torch.from_numpy(y_train.astype(np.int64))
    index = np.arange(len(x_train))  # served as the label: targets are looked up by it
    train = fmnist.torch.loader(x_train, index, args.batch_size, seed=args.seed, mean=MEAN, std=STD)

    losses: list[float] = []
    indices: list[int] = []
    for epoch in range(args.epochs):
        train.set_epoch(epoch)
        seen = 0
        for x, i in train:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), targets[i])
            loss.backward()  # DDP averages the gradients across ranks here
            opt.step()
            seen += len(x)
            losses.append(loss.item())
            if epoch == 0:
                indices.extend(i.tolist())
        print(f"rank {rank}: epoch {epoch}: {seen} examples, last loss {loss.item():.3f}", flush=True)

    if rank == 0:
        test = fmnist.torch.loader(x_test, y_test, len(x_test), shuffle=False, rank=0, world_size=1, mean=MEAN, std=STD)
        with torch.no_grad():
            x, y = next(iter(test))
            accuracy = (model(x).argmax(1) == y).float().mean().item()
        print(f"test accuracy {accuracy:.3f}", flush=True)
    if args.report:
        with open(f"{args.report}.{rank}.json", "w") as f:
            json.dump({"rank": rank, "losses": losses, "indices": indices}, f)
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=29511)
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training examples only")
    parser.add_argument("--report", default="", help="write <REPORT>.<rank>.json: losses, first epoch's indices")
    parser.add_argument("--root", default=None, help="fmnist data root (default: $FMNIST_HOME or ~/.cache/fmnist)")
    args = parser.parse_args()
    mp.spawn(run, args=(args.world_size, args), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
