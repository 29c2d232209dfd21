"""The one pipeline every loader and command is a policy of: ``resolve(dataset, files, policy)``
(``pipeline``), what it may do (``policy``), what it gives (``results``), how a copy is judged
(``judge``), fmnist's own files (``store``), downloads (``fetch``), where copies may be (``sources``)."""

from .fetch import DownloadError
from .pipeline import resolve
from .policy import Audit, Policy, Torchvision, data_root, default_root, search_roots
from .results import DatasetNotFoundError, Judgment, Proof, Resolution, Source

__all__ = [
    "Audit",
    "DatasetNotFoundError",
    "DownloadError",
    "Judgment",
    "Policy",
    "Proof",
    "Resolution",
    "Source",
    "Torchvision",
    "data_root",
    "default_root",
    "resolve",
    "search_roots",
]
