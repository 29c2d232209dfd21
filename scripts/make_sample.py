"""Builds the sample bundled in the wheel: the first 100 test images of each Fashion-MNIST class.

    python scripts/make_sample.py [FOLDER]   # FOLDER holds the real t10k files (default: ../shared/data/fashion-mnist)

It verifies the source files against the registry's content digests, selects in file order,
writes python/fmnist/sample/t10k-{images,labels}-sample-idx*-ubyte.gz and records where they
came from and their digests in python/fmnist/sample/SAMPLE.json. Running it again on the same
files gives the same bytes (gzip level 9, no name, mtime 0).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import fmnist
from fmnist import reference
from fmnist.datasets import FASHION_MNIST

PER_CLASS = 100
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "python" / "fmnist" / "sample"


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "fashion-mnist"
    images_info, labels_info = FASHION_MNIST.file("test", "images"), FASHION_MNIST.file("test", "labels")
    images = fmnist.read_idx(folder / images_info.name, content_sha256=images_info.content_sha256)
    labels = fmnist.read_idx(folder / labels_info.name, content_sha256=labels_info.content_sha256)
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)]))
    files = {}
    for kind, array in (("images", images[keep]), ("labels", labels[keep])):
        name = f"t10k-{kind}-sample-idx{array.ndim}-ubyte.gz"
        fmnist.write_idx(OUT / name, array, compress=9)
        data = (OUT / name).read_bytes()
        content = reference.encode_idx(array)
        files[kind] = {
            "name": name,
            "shape": list(array.shape),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_sha256": hashlib.sha256(content).hexdigest(),
        }
    provenance = {
        "what": f"the first {PER_CLASS} test images of each Fashion-MNIST class, in file order",
        "source": {
            "images": {"name": images_info.name, "content_sha256": images_info.content_sha256},
            "labels": {"name": labels_info.name, "content_sha256": labels_info.content_sha256},
        },
        "indices_sha256": hashlib.sha256(keep.astype("<i8").tobytes()).hexdigest(),
        "licence": FASHION_MNIST.license,
        "built_by": "scripts/make_sample.py",
        "files": files,
    }
    (OUT / "SAMPLE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {len(keep)} examples to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
