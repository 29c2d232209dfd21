"""The drop-in loaders: ``load``, ``load_data`` (keras's form) and ``download``, each a policy over
``resolve``; and ``load_mnist``, the dataset's own ``utils/mnist_reader.py``, a reader of whatever
IDX files are at a path (see its docstring for why it is no policy of ``resolve``).

Where data lives: ``root`` if given, else ``$FMNIST_HOME``, else the platform's cache folder
(``~/.cache/fmnist`` on Linux, see ``default_root``); a dataset lives in ``<root>/<name>/``.
Before downloading, verified copies already on the machine are found (``resolve.sources``):
torchvision's ``<dir>/FashionMNIST/raw/``, keras's ``$KERAS_HOME/datasets/fashion-mnist/``
(MNIST as ``mnist.npz``), Debian's ``/usr/share/datasets/fashion-mnist/`` and a clone of the
dataset's repository (``data/fashion/``); ``$FMNIST_SEARCH_PATH`` replaces the searched folders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from .datasets import Dataset, FileInfo, get
from .idx import read_idx_many
from .resolve import Policy, data_root, resolve
from .resolve.policy import PathArg
from .splits import GRAMMAR, Spec, parse

Array = npt.NDArray[Any]


def split_files(ds: Dataset, split: str | Spec) -> list[FileInfo]:
    """The images and labels files of ``split`` (a spec such as ``"train[:90%]"``; for a slice of
    the registry's, such as QMNIST's ``test10k``, of the split it cuts)."""
    spec = split if isinstance(split, Spec) else parse(split)
    base = ds.slices[spec.split][0] if spec.split in ds.slices else spec.split
    if base not in ds.splits:
        names = " or ".join(repr(s) for s in (*ds.splits, *ds.slices))
        raise ValueError(f"split {spec.text!r}: {ds.name} has the splits {names} (a split is {GRAMMAR})")
    files = [ds.file(base, "images"), ds.file(base, "labels")]
    if spec.start is not None or spec.stop is not None:  # its bounds judged now, before any read
        _, start, stop = ds.slices.get(spec.split, (base, 0, None))
        spec.rows(len(range(files[1].shape[0])[start:stop]))
    return files


def finish(
    ds: Dataset, split: str | Spec, images: Array, labels: Array, extended: bool, upright: bool = False
) -> tuple[Array, Array]:
    """The rows ``split`` takes (a registry slice's, such as QMNIST's test10k, then the spec's
    bounds: views, no copy), the class column of row labels unless ``extended`` (then all of
    them, as stored), and for a dataset stored transposed (EMNIST) the images turned upright
    when asked (a copy)."""
    spec = split if isinstance(split, Spec) else parse(split)
    if spec.split in ds.slices:
        _, start, stop = ds.slices[spec.split]
        images, labels = images[start:stop], labels[start:stop]
    images, labels = spec.cut(images, labels)
    if upright and ds.transposed:
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    if labels.ndim == 2 and not extended:
        labels = labels[:, 0].astype(np.uint8)  # the class column, as the other datasets' labels
    return images, labels


@overload
def load(
    name: str = ...,
    split: str = ...,
    *,
    root: PathArg = ...,
    download: bool = ...,
    mirrors: Sequence[str] | None = ...,
    cache: bool | None = ...,
    extended: bool = ...,
    upright: bool = ...,
) -> tuple[Array, Array]: ...


@overload
def load(
    name: str = ...,
    split: list[str] | tuple[str, ...] = ...,
    *,
    root: PathArg = ...,
    download: bool = ...,
    mirrors: Sequence[str] | None = ...,
    cache: bool | None = ...,
    extended: bool = ...,
    upright: bool = ...,
) -> list[tuple[Array, Array]]: ...


def load(
    name: str = "fashion-mnist",
    split: str | Sequence[str] = "train",
    *,
    root: PathArg = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    cache: bool | None = None,
    extended: bool = False,
    upright: bool = False,
) -> tuple[Array, Array] | list[tuple[Array, Array]]:
    """``(images, labels)`` of one split: images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8,
    verified. From the warm cache, a verified copy on the machine, or a download. ``split`` may
    be sliced as tfds slices (``"train[:90%]"``, ``"train[-5000:]"``; ``fmnist.splits``): the
    rows are views of the verified arrays; a list of splits gives a pair each, from one
    resolve. For a dataset whose labels are rows (QMNIST: 8 int32 columns,
    ``DATASETS["qmnist"].label_columns``), the labels are the class column unless ``extended``,
    which gives all of them. EMNIST's images are returned as stored (transposed, as torchvision
    returns them); ``upright=True`` gives them turned the way MNIST's are."""
    ds = get(name)
    if isinstance(split, str):
        specs = [parse(split)]
    elif isinstance(split, Sequence) and split:
        specs = [parse(s) for s in split]
    else:
        raise ValueError(f"split must be a split or a non-empty list of them ({GRAMMAR}), not {split!r}")
    each = [split_files(ds, s) for s in specs]  # every spec judged before anything is read
    files = list(dict.fromkeys(f for pair in each for f in pair))
    policy = Policy(root=root, cache=cache, download=download, mirrors=mirrors)
    arrays = dict(zip((f.name for f in files), resolve(ds, files, policy).arrays()))
    pairs = []
    for s, (images, labels) in zip(specs, each):
        pairs.append(finish(ds, s, arrays[images.name], arrays[labels.name], extended, upright))
    return pairs[0] if isinstance(split, str) else pairs


def load_data(
    name: str = "fashion-mnist",
    *,
    root: PathArg = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    cache: bool | None = None,
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """``((x_train, y_train), (x_test, y_test))``, as ``keras.datasets.fashion_mnist.load_data()``
    returns them (uint8, ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``)."""
    ds = get(name)
    policy = Policy(root=root, cache=cache, download=download, mirrors=mirrors)
    x_train, y_train, x_test, y_test = resolve(ds, split_files(ds, "train") + split_files(ds, "test"), policy).arrays()
    return finish(ds, "train", x_train, y_train, False), finish(ds, "test", x_test, y_test, False)


def load_mnist(path: str | os.PathLike[str], kind: str = "train") -> tuple[Array, Array]:
    """The dataset repository's ``utils/mnist_reader.load_mnist``: reads
    ``<path>/<kind>-labels-idx1-ubyte.gz`` and ``<path>/<kind>-images-idx3-ubyte.gz`` (``kind`` is
    "train" or "t10k") and returns images ``(N, 784)`` uint8 and labels ``(N,)`` uint8.

    It is a reader, not a loader, and so not a policy of ``resolve``: like the function it stands
    in for, it reads whatever IDX files are at ``path`` (the repository's ``data/fashion``, its
    ``data/mnist``, a subset of one's own), so no registry digest can prove them; the engine
    checks their gzip and IDX structure, and ``fmnist.load`` is what verifies a known dataset."""
    labels, images = read_idx_many([os.path.join(path, f"{kind}-{k}-ubyte.gz") for k in ("labels-idx1", "images-idx3")])
    return images.reshape(len(labels), -1), labels


def download(
    name: str = "fashion-mnist",
    *,
    root: PathArg = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    splits: Sequence[str] | None = None,
) -> Path:
    """Makes sure ``<root>/<name>/`` holds a verified copy of every file of the dataset as
    published (of ``splits`` only, when given; a sliced split, ``"train[:90%]"``, names its
    split's files, which download whole), downloading what is missing or is fmnist's own
    and fails verification (a file fmnist did not write is never replaced); returns that folder
    (for a dataset published as an archive, the archive's folder ``<root>/<archive name>/``)."""
    ds = get(name)
    policy = Policy(root, cache=False, discover=False, download=True, mirrors=mirrors, timeout=timeout, retries=retries)
    policy.check(ds)
    if isinstance(splits, str) or not (splits is None or splits):
        raise ValueError(f"splits must be None (all) or a non-empty list of splits ({GRAMMAR}), not {splits!r}")
    # A sliced split ("train[:90%]", QMNIST's "test10k") downloads its split's files, whole.
    files = list(dict.fromkeys(f for s in (ds.splits if splits is None else splits) for f in split_files(ds, s)))
    if ds.archive is not None and len(files) != len(ds.files):
        raise ValueError(f"{ds.name} is published as one archive: it downloads whole, with every split")
    resolve(ds, files, policy).arrays()
    return data_root(root) / (ds.archive.name if ds.archive is not None else ds.name)
