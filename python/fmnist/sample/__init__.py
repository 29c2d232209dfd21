"""The bundled sample: the first 100 Fashion-MNIST test images of each class (1,000 in all),
built from the real files by ``scripts/make_sample.py``; ``SAMPLE.json`` records their source and
digests. It lets the demo run on a machine with no data and no network. It is not the dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy.typing as npt

from ..idx import read_idx

HERE = Path(__file__).parent


def provenance() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((HERE / "SAMPLE.json").read_text())
    return info


def load_sample() -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(images (1000, 28, 28) uint8, labels (1000,) uint8), verified against SAMPLE.json."""
    files = provenance()["files"]
    images = read_idx(HERE / files["images"]["name"], sha256=files["images"]["sha256"])
    labels = read_idx(HERE / files["labels"]["name"], sha256=files["labels"]["sha256"])
    return images, labels
