# Stubs for the Rust extension module (src/python.rs). Checked by `mypy --strict` in CI.
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "ELEMENT_TYPES",
    "IdxFormatError",
    "ChecksumError",
    "read_idx",
    "read_idx_many",
    "read_idx_digests",
    "encode_idx",
    "map_file",
    "Batcher",
]

__version__: str
#: numpy dtype code -> IDX type code (None for the types only batches read)
ELEMENT_TYPES: dict[str, int | None]

class IdxFormatError(ValueError): ...
class ChecksumError(ValueError): ...

_Source = str | bytes | tuple[bytes, str]
#: (array, {digest kind: hex}, compressed); the array is None when decode=False.
_Outcome = tuple[npt.NDArray[Any] | None, dict[str, str], bool]

def read_idx(
    source: _Source,
    md5: str | None = None,
    sha256: str | None = None,
    content_md5: str | None = None,
    content_sha256: str | None = None,
    max_bytes: int | None = None,
) -> npt.NDArray[Any]: ...
def read_idx_many(
    sources: Sequence[_Source],
    digests: Sequence[Mapping[str, str]],
    max_bytes: int | None = None,
) -> list[npt.NDArray[Any]]: ...
def read_idx_digests(
    sources: Sequence[_Source],
    wanted: Sequence[Sequence[str]],
    max_bytes: int | None = None,
    decode: bool = True,
) -> list[_Outcome | Exception]: ...
def encode_idx(array: npt.NDArray[Any], level: int | None = None, codec: str = "gzip") -> bytes: ...

if sys.platform != "win32":
    def map_file(path: str | os.PathLike[str]) -> npt.NDArray[np.uint8] | None: ...

@final
class Batcher:
    def __new__(
        cls,
        images: npt.NDArray[Any],
        labels: npt.NDArray[Any],
        order: npt.NDArray[np.int64],
        batch_size: int,
        drop_last: bool,
        to_f32: bool,
        mean: list[float] | None,
        std: list[float] | None,
        image_shape: list[int],
    ) -> Batcher: ...
    def __iter__(self) -> Batcher: ...
    def __next__(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Batcher: ...
    def __exit__(self, *exc: object) -> bool: ...
