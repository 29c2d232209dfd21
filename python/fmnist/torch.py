"""PyTorch: torchvision's MNIST family as a one-import switch, and batches straight into training
loops (``pip install fmnist[torch]``: torch, torchvision, Pillow; ``import fmnist`` never imports
torch).

    from fmnist.torch import FashionMNIST      # was: from torchvision.datasets import FashionMNIST
    train = FashionMNIST("data", train=True, download=True)

``MNIST``, ``FashionMNIST``, ``KMNIST``, ``EMNIST`` and ``QMNIST`` are subclasses of
torchvision's own classes. They keep all of torchvision's public behaviour (items through
``transform``/``target_transform``, ``data``/``targets`` and their reassignment, ``classes``,
``class_to_idx``, the folders, ``resources``, ``mirrors``, ``download()``, the deprecated
aliases, ``transforms``, the repr, EMNIST's ``split``, QMNIST's ``what`` and ``compat``, the
``RuntimeError`` for missing data and failed downloads) and replace only how the data is found,
verified, downloaded and loaded: fmnist's resolve pipeline, its verified mirrors and its warm
cache. torchvision's rules hold in torchvision's folder: what torchvision would load from
``<root>/<ClassName>/raw/`` is loaded, verified when a published or proven digest matches it,
else with an ``fmnist.UnverifiedDataWarning`` (``ds.verified`` is then False; ``verify=True``
refuses such files instead). What they download goes to that folder in torchvision's form.
Each takes ``rows="train[:90%]"`` (a keyword of fmnist's): the rows of a split, sliced as
``fmnist.load`` slices them (``fmnist.splits``), in place of ``train`` (and QMNIST's ``what``).

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
    from torchvision import datasets as tv  # type: ignore[import-untyped]
except ModuleNotFoundError as e:  # the extra is not installed: say which one
    if e.name not in ("torch", "torchvision"):
        raise
    raise ModuleNotFoundError(
        f"fmnist.torch needs {e.name}: pip install 'fmnist[torch]' (or pip install torch torchvision pillow)",
        name=e.name,
    ) from e
import torch.distributed as dist

from . import datasets
from .augment import Augment
from .datasets import FileInfo
from .errors import UnverifiedDataWarning
from .loaders import split_files
from .pipeline import Stat, batches
from .resolve import DatasetNotFoundError, Judgment, Policy, Proof, Resolution, Torchvision, resolve
from .splits import Spec, parse

__all__ = [
    "EMNIST",
    "FashionMNIST",
    "KMNIST",
    "MNIST",
    "QMNIST",
    "DatasetNotFound",
    "DownloadFailed",
    "IDXDataset",
    "Loader",
    "UnverifiedDataWarning",
    "loader",
]

Root = Union[str, "os.PathLike[str]"]
NOT_FOUND = "Dataset not found. You can use download=True to download it"


class DatasetNotFound(RuntimeError, DatasetNotFoundError):
    """torchvision's error for missing data (a ``RuntimeError`` opening with its sentence),
    followed by fmnist's reasons; also an ``fmnist.DatasetNotFoundError``."""


class DownloadFailed(DatasetNotFound):
    """torchvision's error for a failed download (a ``RuntimeError`` opening "Error downloading"),
    followed by every mirror tried and why it failed."""


class _Resolved:
    """What the classes share: torchvision's constructor flow, with ``download``,
    ``_check_exists`` and ``_load_data`` on fmnist's resolve pipeline. (A mixin before
    torchvision's class in each class's bases.)"""

    #: the fmnist registry name of the dataset
    registry_name: ClassVar[str]
    #: refuse data in torchvision's folder that no published or proven digest matches
    verify: bool = False
    #: whether every file loaded was proven (False: torchvision's rules loaded unverified data)
    verified: bool = False
    #: where each file came from and what proved it, by file name
    provenance: dict[str, Judgment]
    #: torchvision's __init__ calls download, _check_exists and _load_data in turn: the one
    #: resolution passes from the first that resolves to _load_data, which takes it
    _result: Resolution | None = None
    #: ``rows="train[:90%]"``: the rows of a split this object holds (``fmnist.splits``), in place
    #: of ``train`` (and QMNIST's ``what``); None: the whole split
    rows: Spec | None = None
    root: Any
    raw_folder: str
    mirrors: Any

    def __init__(
        self,
        root: Root,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
        *,
        verify: bool = False,
        rows: str | None = None,
    ) -> None:
        self.verify = verify
        train = self._rows(rows, train)
        super().__init__(root, train=train, transform=transform, target_transform=target_transform, download=download)  # type: ignore[call-arg]

    def _rows(self, rows: str | None, train: bool) -> bool:
        """Takes the ``rows`` spec (checked now); ``train`` as it then is: the spec's split's."""
        self.rows = None if rows is None else parse(rows)
        return train if self.rows is None else self.rows.split == "train"

    def _sliced(self, images: npt.NDArray[Any], labels: npt.NDArray[Any]) -> tuple[Any, Any]:
        """The rows the ``rows`` spec takes (views)."""
        return (images, labels) if self.rows is None else self.rows.cut(images, labels)

    def _dataset(self) -> datasets.Dataset:
        return datasets.get(self.registry_name)

    def _files(self) -> list[FileInfo]:
        """The registry files this object loads: images, then labels."""
        split = self.rows or ("train" if getattr(self, "train", True) else "test")
        return split_files(self._dataset(), split)

    def _download_files(self) -> list[FileInfo]:
        """What ``download()`` fetches: what torchvision's would (every file of the dataset)."""
        files = self._files()
        return files + [f for f in self._dataset().files if f not in files]

    def _policy(self, download: bool) -> Policy:
        ds = self._dataset()
        torchvisions = next(
            (getattr(c, "mirrors", None) for c in type(self).__mro__ if c.__module__.startswith("torchvision")), None
        )
        # The class's mirrors when a user (or a subclass) set them; else the registry's, which
        # hold torchvision's and more.
        mirrors = None if self.mirrors == torchvisions or not isinstance(self.mirrors, list) else self.mirrors
        if mirrors is not None and ds.archive is None:
            mirrors = [m if m.endswith("/") else m + "/" for m in mirrors]
        return Policy(
            download=download, mirrors=mirrors, torchvision=Torchvision(Path(self.raw_folder), download, self.verify)
        )

    def download(self) -> None:
        """Downloads the dataset into ``raw_folder`` (torchvision's form: the published files and
        the decompressed ones) if it is not there, from the verified mirrors; ``RuntimeError``
        ("Error downloading ...") naming every mirror tried and why, if none gives it."""
        files = self._download_files()
        result = resolve(self._dataset(), files, self._policy(download=True))
        error = result.error()
        if error is not None:
            names = ", ".join(f.name for f in result.missing)
            raise DownloadFailed(f"Error downloading {names}:\n{error}") from error
        self._result = result

    def _check_exists(self) -> bool:
        """Whether the files are there (and proven, or loadable by torchvision's rules); when not,
        the ``RuntimeError`` opening with torchvision's sentence, then fmnist's reasons."""
        files = self._files()
        result = self._result
        if result is None or any(f.name not in result.files for f in files):
            result = resolve(self._dataset(), files, self._policy(download=False))
            self._result = result
        error = result.error(files)
        if error is not None:
            raise DatasetNotFound(f"{NOT_FOUND}\n{error}") from None
        return True

    def _arrays(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        result, self._result = self._result, None
        assert result is not None
        got = [result.files[f.name] for f in self._files()]
        self.provenance = {j.info.name: j for j in got}
        self.verified = all(j.proof != Proof.UNVERIFIED for j in got)
        images, labels = (r.array for r in got)
        return images, labels

    def _load_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self._sliced(*self._arrays())
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


class MNIST(_Resolved, tv.MNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """MNIST: ``torchvision.datasets.MNIST``, found, verified, downloaded and cached by fmnist."""

    registry_name = "mnist"


class FashionMNIST(_Resolved, tv.FashionMNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """Fashion-MNIST: ``torchvision.datasets.FashionMNIST``, by fmnist (see ``MNIST``)."""

    registry_name = "fashion-mnist"


class KMNIST(_Resolved, tv.KMNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """Kuzushiji-MNIST: ``torchvision.datasets.KMNIST``, by fmnist (see ``MNIST``)."""

    registry_name = "kmnist"


class EMNIST(_Resolved, tv.EMNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """EMNIST: ``torchvision.datasets.EMNIST(root, split, ...)``, its six splits read out of the
    one verified ``gzip.zip`` by fmnist (see ``MNIST``)."""

    def __init__(self, root: Root, split: str, *, verify: bool = False, rows: str | None = None, **kwargs: Any) -> None:
        self.verify = verify
        kwargs["train"] = self._rows(rows, kwargs.get("train", True))
        super(_Resolved, self).__init__(root, split, **kwargs)  # torchvision's, past the mixin's

    @property
    def registry_name(self) -> str:  # type: ignore[override]
        return f"emnist-{self.split}"


class QMNIST(_Resolved, tv.QMNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """QMNIST: ``torchvision.datasets.QMNIST(root, what=None, compat=True, train=True, ...)`` by
    fmnist: ``what`` is train, test, test10k, test50k or nist; ``targets`` are its 8 columns
    (int64), items give the class when ``compat`` (see ``MNIST``)."""

    registry_name = "qmnist"

    def __init__(
        self,
        root: Root,
        what: str | None = None,
        compat: bool = True,
        train: bool = True,
        *,
        verify: bool = False,
        rows: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.verify = verify
        train = self._rows(rows, train)
        what = self.rows.split if self.rows is not None else what
        super(_Resolved, self).__init__(root, what=what, compat=compat, train=train, **kwargs)  # torchvision's

    def _files(self) -> list[FileInfo]:
        return split_files(self._dataset(), self.subsets[self.what])

    def _download_files(self) -> list[FileInfo]:
        return self._files()  # as torchvision's: only what was asked for

    def _load_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self._arrays()
        cut = self._dataset().slices.get(self.what)
        if cut is not None:  # test10k, test50k: copies, as torchvision's
            images, labels = np.array(images[cut[1] : cut[2]]), labels[cut[1] : cut[2]]
        images, labels = self._sliced(images, labels)
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


class IDXDataset(_Resolved, tv.MNIST):  # type: ignore[misc]  # (torchvision is untyped)
    """Any registered dataset (``fmnist.register``, ``$FMNIST_REGISTRY``, ``--registry``) with the
    same interface: ``IDXDataset("my-digits", root, train=True)``. Its files live in
    ``<root>/<torchvision_name or name>/raw/``."""

    def __init__(
        self,
        name: str,
        root: Root,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
        *,
        verify: bool = False,
        rows: str | None = None,
    ) -> None:
        ds = datasets.get(name)
        self.registry_name = ds.name  # type: ignore[misc]
        self.classes = list(ds.classes)
        self.mirrors = list(ds.mirrors)
        self.resources = [(f.name, f.stored_md5 or "") for f in ds.files]
        self.verify = verify
        train = self._rows(rows, train)
        super(_Resolved, self).__init__(root, train, transform, target_transform, download)  # torchvision's

    @property
    def raw_folder(self) -> str:  # type: ignore[override]
        ds = datasets.get(self.registry_name)
        return os.path.join(str(self.root), ds.torchvision_name or ds.name, "raw")

    def __repr__(self) -> str:
        text = str(super().__repr__())
        return text.replace("Dataset IDXDataset", f"Dataset IDXDataset({self.registry_name!r})", 1)


_DATASETS = (MNIST, FashionMNIST, KMNIST, EMNIST, QMNIST, IDXDataset)


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
        options: dict[str, Any],
        pin_memory: bool,
        device: torch.device | str | None,
        rank: int | None,
        world_size: int | None,
        int64_targets: bool,
    ) -> None:
        """``options``: ``fmnist.batches``' keyword arguments but for the epoch and the shard."""
        self.images = images
        # torchvision's targets are int64: converted once here, then batched as they are.
        self.labels = np.ascontiguousarray(labels, dtype=np.int64) if int64_targets else labels
        self.batch_size = batch_size
        self.rank, self.world_size = _distributed(rank, world_size)
        self.epoch = 0
        self._options = options
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = pin_memory and torch.cuda.is_available()
        if pin_memory and not self.pin_memory:
            warnings.warn("pin_memory=True but no accelerator is available: memory is not pinned", stacklevel=3)
        # Fails now, not at the first iteration, on bad arguments; and says how many batches an
        # epoch has for this rank (the same for every epoch).
        probe = batches(self.images, self.labels, batch_size, rank=self.rank, world_size=self.world_size, **options)
        self._batches = len(probe)
        probe.close()

    def set_epoch(self, epoch: int) -> None:
        """As ``DistributedSampler.set_epoch``: the next iteration serves this epoch's order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self._batches

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
    images: npt.ArrayLike | MNIST | EMNIST | QMNIST | IDXDataset,
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
    augment: Augment | None = None,
    indices: npt.ArrayLike | None = None,
) -> Loader:
    """``(x, y)`` tensor batches from ``images`` and ``labels`` (numpy arrays), or from one of this
    module's datasets as the first argument. The order is ``fmnist.batches``'s: the same
    permutation on every rank (``seed`` + the epoch set by ``set_epoch``), sharded as torch's
    DistributedSampler shards it; rank and world size come from ``torch.distributed`` when it is
    initialised, unless given. ``dtype="float32"`` (the default) scales to [0, 1] and normalises
    with ``mean``/``std``; ``"uint8"`` serves the bytes. ``y`` is int64 like torchvision's targets
    (``int64_targets=False`` keeps the labels' dtype). Tensors share the batches' memory.
    ``augment``: an ``fmnist.Augment``, applied per example as batches are made (its draws
    follow ``seed`` and the epoch, so every epoch augments anew and every rank agrees).
    ``indices``: only these rows (``fmnist.split_indices``), as ``fmnist.batches`` takes them.
    ``len()`` is the number of batches per epoch for this rank."""
    if isinstance(images, _DATASETS):
        if labels is not None:
            raise TypeError("labels come from the dataset: pass only the dataset (and batch_size)")
        # What the dataset holds now (its data and targets may have been reassigned, as when
        # classes are filtered), shared, not copied; QMNIST's class column when compat.
        x, y = images.data.numpy(), images.targets.numpy()
        if y.ndim == 2 and getattr(images, "compat", True):
            y = np.ascontiguousarray(y[:, 0])
    else:
        if labels is None:
            raise TypeError("loader(images, labels, batch_size): labels are missing")
        x, y = np.asarray(images), np.asarray(labels)
    options = dict(
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        dtype=dtype,
        mean=mean,
        std=std,
        flatten=flatten,
        augment=augment,
        indices=indices,
    )
    return Loader(
        x,
        y,
        batch_size,
        options=options,
        pin_memory=pin_memory,
        device=device,
        rank=rank,
        world_size=world_size,
        int64_targets=int64_targets,
    )
