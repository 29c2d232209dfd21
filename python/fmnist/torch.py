"""PyTorch: torchvision's MNIST-family datasets as a one-import switch, and batches straight into
training loops (``pip install fmnist[torch]``; ``import fmnist`` never imports torch).

    from fmnist.torch import FashionMNIST      # was: from torchvision.datasets import FashionMNIST
    train = FashionMNIST("data", train=True, download=True)

The classes take torchvision's arguments and have its attributes (``data``: uint8 tensor
``(N, 28, 28)``; ``targets``: int64 tensor; ``classes``; ``class_to_idx``; ``raw_folder``;
``__getitem__`` -> ``(PIL image "L", int)`` through ``transform``/``target_transform``), but are
built on fmnist's resolve pipeline: verified, discovered (torchvision's ``<root>/<Name>/raw/``
first), read by the engine, not parsed in Python. What they download goes to ``<root>/<Name>/raw/``
as torchvision lays it out (the .gz files and the decompressed ones, mode from the umask), so
torchvision finds it too; fmnist's warm cache, stamps and locks stay under fmnist's data root.

``loader`` serves ``(x, y)`` tensor batches made by ``fmnist.batches`` (gathered, converted and
normalised in Rust one batch ahead), handed to torch without a copy.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, ClassVar, Union

import numpy as np
import numpy.typing as npt

try:
    import torch
except ModuleNotFoundError as e:  # the extra is not installed: say which one
    if e.name != "torch":
        raise
    raise ModuleNotFoundError(
        "fmnist.torch needs torch: pip install 'fmnist[torch]' (or pip install torch pillow)", name="torch"
    ) from e
import torch.distributed as dist
from torch.utils.data import Dataset

from . import datasets
from .loaders import split_files
from .pipeline import Stat, batches, epoch_indices
from .resolve import DatasetNotFoundError, Policy, resolve
from .sources import data_root

__all__ = ["FashionMNIST", "KMNIST", "MNIST", "DatasetNotFound", "IDXDataset", "Loader", "loader"]

Root = Union[str, "os.PathLike[str]", None]


class DatasetNotFound(RuntimeError, DatasetNotFoundError):
    """torchvision's error for missing data (a ``RuntimeError`` with its wording), followed by
    fmnist's reasons; also an ``fmnist.DatasetNotFoundError``."""


class _VisionIDX(Dataset[tuple[Any, Any]]):
    """What the three classes share: torchvision's MNIST interface over ``fmnist.load``."""

    #: the fmnist registry name
    dataset: str
    #: torchvision's class names (as its ``classes`` attribute has them)
    classes: list[str]
    #: base URLs to download from, tried in order (None: the registry's). Like torchvision's
    #: ``mirrors`` attribute, a subclass or the class may override it.
    mirrors: ClassVar[list[str] | None] = None

    def __init__(
        self,
        root: Root = None,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
    ) -> None:
        if isinstance(root, str):
            root = os.path.expanduser(root)
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        ds = datasets.get(self.dataset)
        files = split_files(ds, "train" if train else "test")
        if download:
            # As torchvision does: every file, so that torchvision (which wants all of them in
            # raw/) finds what was downloaded, whichever split it asks for.
            files += [f for f in ds.files if f not in files]
        # torchvision's raw folder is searched first and, with download=True, given torchvision's
        # decompressed files; fmnist's own cache, stamps and locks stay under fmnist's data root.
        policy = Policy(
            download=download, mirrors=self.mirrors, torchvision_root=Path(self.base_of(root)), place=download
        )
        try:
            images, labels = resolve(ds, files, policy).arrays()[:2]
        except DatasetNotFoundError as e:
            raise DatasetNotFound(f"Dataset not found. You can use download=True to download it\n{e}") from None
        #: the arrays as fmnist returns them (uint8; mapped, not copied, when warm)
        self.images: npt.NDArray[np.uint8] = images
        self.labels: npt.NDArray[np.uint8] = labels
        self.data = torch.from_numpy(images)  # shares the array's memory
        self.targets = torch.from_numpy(labels.astype(np.int64))

    @staticmethod
    def base_of(root: Root) -> str:
        """torchvision's root: ``root``, else fmnist's data root."""
        return os.fspath(root) if root is not None else str(data_root(None))

    @property
    def raw_folder(self) -> str:
        """torchvision's ``<root>/<Name>/raw``: where downloads go and torchvision looks."""
        ds = datasets.get(self.dataset)
        return os.path.join(self.base_of(self.root), ds.torchvision_name or ds.name, "raw")

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        from PIL import Image

        img: Any = Image.fromarray(self.images[int(index)])  # uint8 (28, 28): mode "L"
        row = self.labels[int(index)]
        target: Any = int(row) if row.ndim == 0 else int(row[0])  # rows of labels (QMNIST): the class
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train is True else 'Test'}"

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}"]
        if self.root is not None:
            body.append(f"Root location: {self.root}")
        body += self.extra_repr().splitlines()
        for name in ("transform", "target_transform"):
            if getattr(self, name) is not None:
                body.append(f"{name}: {getattr(self, name)!r}")
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + line for line in body])


class FashionMNIST(_VisionIDX):
    """Fashion-MNIST, as ``torchvision.datasets.FashionMNIST``."""

    dataset = "fashion-mnist"
    classes = list(datasets.FASHION_MNIST.classes)


class MNIST(_VisionIDX):
    """MNIST, as ``torchvision.datasets.MNIST``."""

    dataset = "mnist"
    classes = [
        f"{d} - {w}"
        for d, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
    ]


class KMNIST(_VisionIDX):
    """Kuzushiji-MNIST, as ``torchvision.datasets.KMNIST``."""

    dataset = "kmnist"
    classes = list(datasets.KMNIST.classes)


class IDXDataset(_VisionIDX):
    """Any registered dataset (``fmnist.register``, ``$FMNIST_REGISTRY``, ``--registry``) with the
    same interface: ``IDXDataset("my-digits", root, train=True)``. Its files live in
    ``<root>/<torchvision_name or name>/raw/``."""

    def __init__(
        self,
        name: str,
        root: Root = None,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
    ) -> None:
        ds = datasets.get(name)
        self.dataset = ds.name
        self.classes = list(ds.classes)
        super().__init__(root, train, transform, target_transform, download)

    def __repr__(self) -> str:
        return super().__repr__().replace("Dataset IDXDataset", f"Dataset IDXDataset({self.dataset!r})", 1)


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """rank and world size: as given, else torch.distributed's when it is initialised, else 0, 1."""
    running = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if running else 1
    if rank is None:
        rank = dist.get_rank() if running else 0
    return rank, world_size


class Loader:
    """Batches of ``(x, y)`` tensors for one rank, an epoch per iteration (see ``loader``)."""

    def __init__(
        self,
        images: npt.NDArray[Any],
        labels: npt.NDArray[Any],
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        dtype: str | None,
        mean: Stat,
        std: Stat,
        flatten: bool,
        pin_memory: bool,
        device: torch.device | str | None,
        rank: int | None,
        world_size: int | None,
        int64_targets: bool,
    ) -> None:
        self.images = images
        # torchvision's targets are int64: converted once here, then batched as they are.
        self.labels = np.ascontiguousarray(labels, dtype=np.int64) if int64_targets else labels
        self.batch_size = batch_size
        self.rank, self.world_size = _distributed(rank, world_size)
        self.epoch = 0
        self._options: dict[str, Any] = dict(
            shuffle=shuffle, seed=seed, drop_last=drop_last, dtype=dtype, mean=mean, std=std, flatten=flatten
        )
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = pin_memory and torch.cuda.is_available()
        if pin_memory and not self.pin_memory:
            warnings.warn("pin_memory=True but no accelerator is available: memory is not pinned", stacklevel=3)
        # Fails now, not at the first iteration, on bad arguments.
        batches(
            self.images, self.labels, batch_size, rank=self.rank, world_size=self.world_size, **self._options
        ).close()

    def set_epoch(self, epoch: int) -> None:
        """As ``DistributedSampler.set_epoch``: the next iteration serves this epoch's order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        n = len(
            epoch_indices(
                len(self.images),
                shuffle=False,
                drop_last=self._options["drop_last"],
                rank=self.rank,
                world_size=self.world_size,
            )
        )
        return n // self.batch_size if self._options["drop_last"] else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        it = batches(
            self.images,
            self.labels,
            self.batch_size,
            epoch=self.epoch,
            rank=self.rank,
            world_size=self.world_size,
            **self._options,
        )
        from_numpy = torch.from_numpy  # each batch is a fresh array: shared, not copied
        with it:
            if not self.pin_memory and self.device is None:  # the common case, kept lean
                for xb, yb in it:
                    yield from_numpy(xb), from_numpy(yb)
                return
            for xb, yb in it:
                x, y = from_numpy(xb), from_numpy(yb)
                if self.pin_memory:
                    x, y = x.pin_memory(), y.pin_memory()
                if self.device is not None:
                    x = x.to(self.device, non_blocking=self.pin_memory)
                    y = y.to(self.device, non_blocking=self.pin_memory)
                yield x, y


def loader(
    images: npt.ArrayLike | _VisionIDX,
    labels: npt.ArrayLike | None = None,
    batch_size: int = 256,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    dtype: str | None = "float32",
    mean: Stat = None,
    std: Stat = None,
    flatten: bool = False,
    pin_memory: bool = False,
    device: torch.device | str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    int64_targets: bool = True,
) -> Loader:
    """``(x, y)`` tensor batches from ``images`` and ``labels`` (numpy arrays), or from one of this
    module's datasets as the first argument. The order is ``fmnist.batches``'s: the same
    permutation on every rank (``seed`` + the epoch set by ``set_epoch``), sharded as torch's
    DistributedSampler shards it; rank and world size come from ``torch.distributed`` when it is
    initialised, unless given. ``dtype="float32"`` (the default) scales to [0, 1] and normalises
    with ``mean``/``std``; ``"uint8"`` serves the bytes. ``y`` is int64 like torchvision's targets
    (``int64_targets=False`` keeps the labels' dtype). Tensors share the batches' memory.
    ``len()`` is the number of batches per epoch for this rank."""
    if isinstance(images, _VisionIDX):
        if labels is not None:
            raise TypeError("labels come from the dataset: pass only the dataset (and batch_size)")
        x, y = images.images, images.labels
    else:
        if labels is None:
            raise TypeError("loader(images, labels, batch_size): labels are missing")
        x, y = np.asarray(images), np.asarray(labels)
    return Loader(
        x,
        y,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        dtype=dtype,
        mean=mean,
        std=std,
        flatten=flatten,
        pin_memory=pin_memory,
        device=device,
        rank=rank,
        world_size=world_size,
        int64_targets=int64_targets,
    )
