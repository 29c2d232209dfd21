# Stubs for the Rust extension module (src/python.rs). Checked by `mypy --strict` in CI.
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class IdxFormatError(ValueError): ...
class ChecksumError(ValueError): ...

_Digests = Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]

def read_idx(
    source: Union[str, bytes],
    md5: Optional[str] = None,
    sha256: Optional[str] = None,
    content_md5: Optional[str] = None,
    content_sha256: Optional[str] = None,
    max_bytes: Optional[int] = None,
) -> npt.NDArray[Any]: ...
def read_idx_many(
    sources: Sequence[Union[str, bytes]],
    digests: Sequence[_Digests],
    max_bytes: Optional[int] = None,
) -> list[npt.NDArray[Any]]: ...
def read_idx_digests(
    sources: Sequence[Union[str, bytes]],
    wanted: Sequence[Sequence[str]],
    max_bytes: Optional[int] = None,
) -> list[Tuple[npt.NDArray[Any], dict[str, str], bool]]: ...
def encode_idx(array: npt.NDArray[Any], level: Optional[int] = None) -> bytes: ...

class Batcher:
    def __init__(
        self,
        images: npt.NDArray[Any],
        labels: npt.NDArray[Any],
        order: npt.NDArray[np.int64],
        batch_size: int,
        drop_last: bool,
        to_f32: bool,
        mean: Optional[list[float]],
        std: Optional[list[float]],
        image_shape: list[int],
    ) -> None: ...
    def __iter__(self) -> Batcher: ...
    def __next__(self) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...
