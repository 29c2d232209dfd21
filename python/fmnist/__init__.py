"""fmnist: Fashion-MNIST, and any MNIST-format (IDX) dataset, into numpy, fast and verified.

The heavy lifting (gzip inflation, IDX parsing, MD5/SHA-256) is done in Rust with the GIL
released; see ``fmnist.reference`` for the pure-Python specification it is tested against.
"""

from __future__ import annotations

from . import reference as reference  # the pure-Python specification, fmnist.reference
from ._core import __version__
from .augment import Augment, Draws
from .datasets import DATASETS, Dataset, FileInfo, RegistryError, load_registry, register
from .embedding import embed  # pip install 'fmnist[viz]'
from .errors import (
    BadGzipFile,
    BadZipFile,
    ChecksumError,
    Error,
    IdxFormatError,
    InternalError,
    UnverifiedDataWarning,
    XzError,
)
from .idx import read_idx, read_idx_many, write_idx
from .loaders import download, load, load_data, load_mnist
from .pipeline import Batches, batches, split_indices
from .resolve import DatasetNotFoundError, DownloadError

__all__ = [
    "Augment",
    "BadGzipFile",
    "BadZipFile",
    "Batches",
    "ChecksumError",
    "DATASETS",
    "Dataset",
    "FileInfo",
    "RegistryError",
    "DatasetNotFoundError",
    "DownloadError",
    "Draws",
    "Error",
    "IdxFormatError",
    "InternalError",
    "UnverifiedDataWarning",
    "XzError",
    "__version__",
    "batches",
    "download",
    "embed",
    "load",
    "load_data",
    "load_mnist",
    "load_registry",
    "read_idx",
    "read_idx_many",
    "register",
    "split_indices",
    "write_idx",
]
