"""A minimal PNG writer for 8-bit greyscale images (the sprite), standard library only."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: npt.NDArray[Any]) -> bytes:
    """PNG bytes of a 2-D uint8 array (rows x columns), greyscale, no filtering."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {image.ndim}-D {image.dtype}")
    height, width = image.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row starts with filter type 0
    rows[:, 1:] = image
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def sprite(
    images: npt.NDArray[Any], labels: npt.NDArray[Any], *, classes: int = 10, rows_per_class: int = 3, columns: int = 30
) -> npt.NDArray[Any]:
    """Tiles images like the dataset README's sprite: each class takes ``rows_per_class`` rows of
    ``columns`` images, classes in label order, images in file order. Raises ValueError if a
    class has too few images."""
    h, w = images.shape[1:3]
    need = rows_per_class * columns
    canvas = np.zeros((classes * rows_per_class * h, columns * w), np.uint8)
    for c in range(classes):
        picks = np.flatnonzero(labels == c)[:need]
        if len(picks) < need:
            raise ValueError(f"class {c} has {len(picks)} images; the sprite needs {need}")
        for k, i in enumerate(picks):
            r, col = c * rows_per_class + k // columns, k % columns
            canvas[r * h : (r + 1) * h, col * w : (col + 1) * w] = images[i]
    return canvas
