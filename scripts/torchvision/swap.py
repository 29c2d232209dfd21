"""pytest plugin for ``run.py``: with ``FMNIST_SWAP=1``, torchvision's MNIST-family classes are
replaced by fmnist.torch's in ``torchvision.datasets`` before torchvision's test module is
imported, so that its test cases (``DATASET_CLASS = datasets.MNIST`` ...) test fmnist's. Only the
name the tests read changes: torchvision's own registries (the transforms-v2 wrappers, keyed by
its classes) are made first, as they are when no test swaps anything."""

from __future__ import annotations

import os
from typing import Any


def pytest_configure(config: Any) -> None:
    if os.environ.get("FMNIST_SWAP") != "1":
        return
    import torchvision.datasets  # type: ignore[import-untyped]
    import torchvision.tv_tensors._dataset_wrapper  # type: ignore[import-untyped]  # noqa: F401 - keys its classes

    import fmnist.torch

    for name in ("MNIST", "FashionMNIST", "KMNIST", "EMNIST", "QMNIST"):
        setattr(torchvision.datasets, name, getattr(fmnist.torch, name))
