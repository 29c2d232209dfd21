# Stubs for the Rust extension module (src/python/). Checked by `mypy --strict` and stubtest in CI.
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "ELEMENT_TYPES",
    "MAX_NDIM",
    "read",
    "Request",
    "Expected",
    "Mode",
    "Kind",
    "Codec",
    "Errors",
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

_Source = Any  # str (a path), bytes, any object with the buffer protocol, or (buffer, name)

@final
class Mode:
    ARRAY: ClassVar[Mode]
    DIGESTS: ClassVar[Mode]
    STORED: ClassVar[Mode]
    def __int__(self) -> int: ...

@final
class Kind:
    MD5: ClassVar[Kind]
    SHA256: ClassVar[Kind]
    CONTENT_MD5: ClassVar[Kind]
    CONTENT_SHA256: ClassVar[Kind]
    @property
    def key(self) -> str: ...
    def __int__(self) -> int: ...

@final
class Codec:
    RAW: ClassVar[Codec]
    GZIP: ClassVar[Codec]
    XZ: ClassVar[Codec]
    @property
    def key(self) -> str: ...
    def __int__(self) -> int: ...

@final
class Errors:
    RAISE: ClassVar[Errors]
    RETURN: ClassVar[Errors]
    def __int__(self) -> int: ...

@final
class Expected:
    def __new__(cls, kind: Kind, hex: str, whose: str | None = None) -> Expected: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def hex(self) -> str: ...
    @property
    def whose(self) -> str | None: ...

@final
class Request:
    def __new__(
        cls, source: _Source, mode: Mode = ..., expected: Sequence[Expected] = ..., report: Sequence[Kind] = ...
    ) -> Request: ...
    @property
    def source(self) -> _Source: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def expected(self) -> list[Expected]: ...
    @property
    def report(self) -> list[Kind]: ...

@final
class Verdict:
    @property
    def kind(self) -> Kind: ...
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
    def whose(self) -> str | None: ...
    @property
    def message(self) -> str: ...

@final
class Outcome:
    @property
    def array(self) -> npt.NDArray[Any] | None: ...
    @property
    def stored(self) -> bytes | None: ...
    @property
    def codec(self) -> Codec: ...
    @property
    def dtype(self) -> str | None: ...
    @property
    def shape(self) -> list[int] | None: ...
    @property
    def digests(self) -> dict[Kind, str]: ...
    @property
    def verdicts(self) -> list[Verdict]: ...

def read(
    requests: Sequence[Request],
    *,
    strict: bool = True,
    max_bytes: int | None = None,
    errors: Errors = ...,
) -> list[Any]: ...
def encode_idx(array: npt.ArrayLike, compress: bool | int | str | None = None) -> bytes: ...
def idx_header(dtype: str, shape: Sequence[int]) -> bytes: ...
def idx_size(dtype: str, shape: Sequence[int]) -> tuple[int, int]: ...
def max_compressed_size(dtype: str, shape: Sequence[int]) -> int: ...

if sys.platform != "win32":
    def map_idx(path: str, dtype: str, shape: Sequence[int]) -> npt.NDArray[Any]: ...

def _panic(on_worker: bool) -> None: ...
def batch_args(
    batch_size: Any, rank: Any, world_size: Any, dtype: Any, seed: Any, epoch: Any, augmenting: bool
) -> tuple[int, int, int, str | None, int, int]: ...
def augment_check(augment: Any) -> tuple[int, float, float, tuple[float, float], tuple[float, float], Any]: ...
def augment_draws(
    augment: Any, indices: npt.NDArray[np.int64], seed: Any, epoch: Any, height: int, width: int
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
        augment: tuple[Any, Any, Any] | None = None,
    ) -> Batcher: ...
    def __iter__(self) -> Batcher: ...
    def __next__(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def __len__(self) -> int: ...
    def batch(self, k: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Batcher: ...
    def __exit__(self, *exc: object) -> bool: ...
