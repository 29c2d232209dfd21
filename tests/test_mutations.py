"""Truncated, extended and bit-flipped files: never a crash or a hang, always a documented
exception, and fmnist rejects exactly the inputs the reference rejects, with the same class."""

from __future__ import annotations

import lzma
from gzip import BadGzipFile
from typing import Any, Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fmnist
from fmnist import reference

DOCUMENTED = (fmnist.IdxFormatError, BadGzipFile, lzma.LZMAError, fmnist.ChecksumError)

rng = np.random.default_rng(7)
VALID = [
    reference.write_idx(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)),
    reference.write_idx(rng.standard_normal((3, 2)), members=0),
    reference.write_idx(rng.integers(-5, 5, (40,), dtype=np.int16), members=1),
    reference.write_idx(
        rng.integers(0, 256, (6, 7), dtype=np.uint8), members=2, name=b"x", comment=b"c", extra=b"ex", header_crc=True
    ),
    reference.write_idx(rng.standard_normal((2, 3, 4)).astype(np.float32), members=3, level=0),
    reference.write_idx(rng.integers(0, 256, (9, 5), dtype=np.uint8), members=1, xz=True),
    reference.write_idx(rng.integers(-9, 9, (4, 6), dtype=np.int32), members=2, xz=True) + bytes(4),
]


def outcome(read: Callable[[bytes], Any], data: bytes) -> tuple[type | None, Any]:
    try:
        return None, read(data)
    except Exception as e:  # noqa: BLE001 - the point is to see every class
        return type(e), e


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "extend", "flip", "set"]))
        if kind == "truncate":
            del data[draw(st.integers(0, max(len(data) - 1, 0))) :]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = data[i] ^ (1 << draw(st.integers(0, 7))) if kind == "flip" else draw(st.integers(0, 255))
    return bytes(data)


@given(mutations())
@settings(max_examples=500)
def test_mutated_files_are_rejected_where_the_reference_rejects(data: bytes) -> None:
    ref_cls, ref = outcome(reference.read_idx, data)
    our_cls, ours = outcome(fmnist.read_idx, data)
    assert (our_cls is None) == (ref_cls is None), (ref, ours)
    if our_cls is None:
        assert ours.tobytes() == ref.tobytes() and ours.shape == ref.shape and ours.dtype == ref.dtype
    else:
        # The same class as the reference: a corrupt stream is a gzip error even where the IDX
        # header inflated from it is also wrong (the reference inflates everything first).
        assert ref_cls is not None and issubclass(our_cls, ref_cls), (ref, ours)
        assert isinstance(ours, DOCUMENTED), ours
        assert "bytes in memory" in str(ours)


def test_every_single_byte_truncation_of_a_gzip_file_is_rejected() -> None:
    data = VALID[3]
    for n in range(len(data)):
        cls, err = outcome(fmnist.read_idx, data[:n])
        assert cls is not None and issubclass(cls, DOCUMENTED), (n, err)


def test_every_single_byte_truncation_of_an_xz_file_is_rejected_as_the_reference_rejects_it() -> None:
    data = VALID[-1]  # two streams, then stream padding
    classes = []
    for n in range(len(data) - 4):  # (the last 4 bytes are stream padding: cutting them is fine)
        cls, err = outcome(fmnist.read_idx, data[:n])
        ref_cls = outcome(reference.read_idx, data[:n])[0]
        assert cls is not None and ref_cls is not None and issubclass(cls, ref_cls), (n, err)
        classes.append(cls)
    # Under 6 bytes there is no xz magic (then: not IDX); past it a corrupt stream everywhere but
    # where a cut leaves whole streams (then: short IDX content).
    assert set(classes[:6]) == {fmnist.IdxFormatError}
    assert classes[6:].count(fmnist.IdxFormatError) <= 2 and fmnist.XzError in classes
