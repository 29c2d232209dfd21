# Stubs for the Rust extension module (src/python/). Checked by `mypy --strict` and stubtest in CI.
import sys
from collections.abc import Sequence
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "ELEMENT_TYPES",
    "MAX_NDIM",
    "read",
    "encode_idx",
    "idx_header",
    "idx_size",
    "max_compressed_size",
    "Outcome",
    "Verdict",
    "map_idx",
    "augment_check",
    "augment_draws",
    "batch_args",
    "Batcher",
    "_panic",
]

__version__: str
#: (IDX type code or None for the types only batches read, numpy name, item size) per type
ELEMENT_TYPES: tuple[tuple[int | None, str, int], ...]
#: numpy's dimension limit (64 from numpy 2 on, 32 before)
MAX_NDIM: int

_Source = str | bytes | tuple[bytes, str]

@final
class Verdict:
    @property
    def kind(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def covers(self) -> str: ...
    @property
    def expected(self) -> str: ...
    @property
    def actual(self) -> str: ...
    @property
    def matched(self) -> bool: ...
    @property
    def source(self) -> str | None: ...
    @property
    def message(self) -> str: ...

@final
class Outcome:
    @property
    def array(self) -> npt.NDArray[Any] | None: ...
    @property
    def stored(self) -> bytes | None: ...
    @property
    def codec(self) -> str: ...
    @property
    def dtype(self) -> str | None: ...
    @property
    def shape(self) -> list[int] | None: ...
    @property
    def digests(self) -> dict[str, str]: ...
    @property
    def verdicts(self) -> list[Verdict]: ...
    @property
    def all_matched(self) -> bool: ...
    @property
    def any_matched(self) -> bool: ...

def read(
    sources: Sequence[_Source],
    mode: str | Sequence[str] | None = None,
    expected: Sequence[Sequence[tuple[str, str, str | None]]] | None = None,
    report: Sequence[Sequence[str]] | None = None,
    strict: bool = True,
    max_bytes: int | None = None,
    errors: str = "raise",
) -> list[Any]: ...
def encode_idx(array: npt.ArrayLike, compress: bool | int | str | None = None) -> bytes: ...
def idx_header(dtype: str, shape: Sequence[int]) -> bytes: ...
def idx_size(dtype: str, shape: Sequence[int]) -> tuple[int, int]: ...
def max_compressed_size(dtype: str, shape: Sequence[int]) -> int: ...

if sys.platform != "win32":
    def map_idx(path: str, dtype: str, shape: Sequence[int]) -> npt.NDArray[Any]: ...

def _panic(on_worker: bool) -> None: ...
def batch_args(batch_size: Any, rank: Any, world_size: Any, dtype: Any) -> tuple[int, int, int, str | None]: ...
def augment_check(augment: Any) -> None: ...
def augment_draws(
    augment: Any, indices: npt.NDArray[np.int64], seed: int, epoch: int, height: int, width: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]: ...

@final
class Batcher:
    def __new__(
        cls,
        images: npt.NDArray[Any],
        labels: npt.NDArray[Any],
        order: npt.NDArray[np.int64],
        batch_size: int,
        drop_last: bool,
        dtype: str | None,
        mean: list[float] | None,
        std: list[float] | None,
        image_shape: list[int],
        augment: tuple[Any, int, int] | None = None,
    ) -> Batcher: ...
    def __iter__(self) -> Batcher: ...
    def __next__(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Batcher: ...
    def __exit__(self, *exc: object) -> bool: ...
