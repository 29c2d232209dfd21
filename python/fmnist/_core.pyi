# Stubs for the Rust extension module (src/python.rs). Checked by `mypy --strict` in CI.
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class IdxFormatError(ValueError): ...
class ChecksumError(ValueError): ...

_Digests = tuple[str | None, str | None, str | None, str | None]

def read_idx(
    source: str | bytes,
    md5: str | None = None,
    sha256: str | None = None,
    content_md5: str | None = None,
    content_sha256: str | None = None,
    max_bytes: int | None = None,
) -> npt.NDArray[Any]: ...
def read_idx_many(
    sources: Sequence[str | bytes],
    digests: Sequence[_Digests],
    max_bytes: int | None = None,
) -> list[npt.NDArray[Any]]: ...
def read_idx_digests(
    sources: Sequence[str | bytes],
    wanted: Sequence[Sequence[str]],
    max_bytes: int | None = None,
) -> list[tuple[npt.NDArray[Any], dict[str, str], bool]]: ...
def encode_idx(array: npt.NDArray[Any], level: int | None = None) -> bytes: ...

class Batcher:
    def __init__(
        self,
        images: npt.NDArray[Any],
        labels: npt.NDArray[Any],
        order: npt.NDArray[np.int64],
        batch_size: int,
        drop_last: bool,
        to_f32: bool,
        mean: list[float] | None,
        std: list[float] | None,
        image_shape: list[int],
    ) -> None: ...
    def __iter__(self) -> Batcher: ...
    def __next__(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Batcher: ...
    def __exit__(self, *exc: object) -> bool: ...
