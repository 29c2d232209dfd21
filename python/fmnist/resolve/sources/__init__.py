"""The sources ``resolve`` walks, in order: torchvision's folder by its rules (fmnist.torch),
fmnist's warm cache, IDX folders of each layout, keras's .npz, zip archives, the mirrors. Each
lists its candidates for a file (``candidates``: stats only) and judges a round of them (``judge``:
one engine call), returning judgments: it writes nothing a caller reads back. Only fmnist's own
cache files are mapped; no source deletes, rewrites, renames or chmods a file fmnist did not make.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...datasets import Dataset, FileInfo
from ..policy import Policy
from ..results import Copy, Judgment
from ..store import Store


@dataclass(frozen=True)
class Known:
    """What the sources of one ``resolve`` know: the dataset, the policy, the data root and fmnist's
    folder of the dataset, whether the cache is on, and each file's content digests proven so far
    (recorded, or in an earlier round: name -> {SHA-256: what proved it})."""

    dataset: Dataset
    policy: Policy
    root: Path
    store: Store
    cache: bool
    proofs: Mapping[str, Mapping[str, str]]


class Source:
    places: list[str]  #: where it looks, for the error that says where ``resolve`` looked

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        raise NotImplementedError

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        raise NotImplementedError


def regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
