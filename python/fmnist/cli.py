"""The `fmnist` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import datasets
from .idx import read_idx_many


def _root(arg: Optional[str]) -> Path:
    return Path(arg or os.environ.get("FMNIST_HOME") or Path.home() / ".cache" / "fmnist")


def cmd_demo(args: argparse.Namespace) -> int:
    ds = datasets.get(args.dataset)
    folder = _root(args.root) / ds.name
    paths = [folder / f.name for f in ds.files]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"fmnist demo: {ds.name} not found: missing {', '.join(str(p) for p in missing)}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    arrays = read_idx_many(
        paths,
        content_md5=[f.content_md5 for f in ds.files],
        content_sha256=[f.content_sha256 for f in ds.files],
    )
    elapsed = time.perf_counter() - t0
    print(f"{ds.title}: {folder}")
    for f, a in zip(ds.files, arrays):
        print(f"  {f.name:28} {str(a.shape):16} {a.dtype}  content MD5 + SHA-256 verified")
    print(f"loaded and verified 4 files ({sum(a.nbytes for a in arrays) / 1e6:.1f} MB) in {elapsed * 1e3:.0f} ms")
    for split, labels in (("train", arrays[1]), ("test", arrays[3])):
        counts = np.bincount(labels, minlength=len(ds.classes))
        print(f"  {split:5} per class: " + ", ".join(f"{c}={n}" for c, n in zip(ds.classes, counts)))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fmnist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="load the dataset, verify it and print a summary")
    demo.add_argument("dataset", nargs="?", default="fashion-mnist")
    demo.add_argument("--root", help="data root (default: $FMNIST_HOME, else ~/.cache/fmnist)")
    demo.set_defaults(run=cmd_demo)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
