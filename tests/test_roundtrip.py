"""Round trips between fmnist and the pure-Python reference, over random dtypes, shapes, values
and gzip layouts: each side must read what the other wrote, bit for bit."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

import fmnist
from fmnist import reference

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def shapes() -> st.SearchStrategy[tuple[int, ...]]:
    # Up to 8 dimensions, zero-size ones included, a few thousand elements at most.
    return st.integers(1, 8).flatmap(
        lambda n: hnp.array_shapes(min_dims=n, max_dims=n, min_side=0, max_side={1: 300, 2: 40, 3: 12}.get(n, 3))
    )


@st.composite
def arrays(draw: st.DrawFn) -> npt.NDArray[Any]:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    # from_dtype covers NaN, +/-inf, -0.0, subnormals and the integer extremes.
    return draw(hnp.arrays(dtype, shapes(), elements=hnp.from_dtype(dtype)))


@st.composite
def gzip_layouts(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "members": draw(st.integers(0, 3)),  # 0: not compressed
        "level": draw(st.integers(0, 9)),
        "name": draw(st.none() | st.binary(max_size=8).map(lambda b: b.replace(b"\0", b"_"))),
        "comment": draw(st.none() | st.just(b"a comment")),
        "extra": draw(st.none() | st.binary(max_size=12)),
        "header_crc": draw(st.booleans()),
    }


def read_from(data: bytes, via_file: bool) -> npt.NDArray[Any]:
    """fmnist.read_idx of ``data`` as bytes, or from a file holding them."""
    if not via_file:
        return fmnist.read_idx(data)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.idx")
        with open(path, "wb") as f:
            f.write(data)
        return fmnist.read_idx(path)


def same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """Equal bit for bit: shape, dtype and every byte (NaN payloads and -0.0 included)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@given(arrays(), gzip_layouts(), st.integers(0, 3), st.booleans())
def test_reference_writes_fmnist_reads(
    array: npt.NDArray[Any], layout: dict[str, Any], padding: int, via_file: bool
) -> None:
    data = reference.write_idx(array, **layout)
    if layout["members"]:
        data += b"\0" * padding  # zero padding after the last member is allowed (as gzip allows)
    got = read_from(data, via_file)
    assert same(got, array)
    assert same(got, reference.read_idx(data))
    assert got.flags.c_contiguous and got.flags.writeable and got.dtype.isnative


@given(arrays(), st.integers(1, 3), st.integers(0, 2), st.booleans())
def test_reference_writes_xz_fmnist_reads(array: npt.NDArray[Any], streams: int, padding: int, via_file: bool) -> None:
    data = reference.write_idx(array, members=streams, xz=True) + b"\0" * (4 * padding)  # stream padding
    got = read_from(data, via_file)
    assert same(got, array) and same(got, reference.read_idx(data))
    assert got.flags.c_contiguous and got.flags.writeable and got.dtype.isnative


@given(arrays(), gzip_layouts(), st.booleans(), st.integers(0, 3))
def test_digests_without_decoding_agree_with_the_decoder(
    array: npt.NDArray[Any], layout: dict[str, Any], xz: bool, padding: int
) -> None:
    # verify and the warm cache hash a file without decoding it (streaming, nothing held whole):
    # what the decoder accepts, that path accepts too, with the same stored and content digests.
    from fmnist import _core

    members = layout["members"]
    data = reference.write_idx(array, members=members, xz=True) if xz else reference.write_idx(array, **layout)
    if members:
        data += b"\0" * (4 * padding if xz else padding)
    wanted = [_core.Kind.MD5, _core.Kind.SHA256, _core.Kind.CONTENT_MD5, _core.Kind.CONTENT_SHA256]
    (decoded,) = _core.read([_core.Request(data, report=wanted)])
    (streamed,) = _core.read([_core.Request(data, _core.Mode.DIGESTS, report=wanted)])
    assert streamed.array is None and streamed.digests == decoded.digests and streamed.codec == decoded.codec
    assert streamed.digests[_core.Kind.CONTENT_MD5] == hashlib.md5(reference.encode_idx(array)).hexdigest()
    assert streamed.digests[_core.Kind.MD5] == hashlib.md5(data).hexdigest()


@given(arrays(), st.sampled_from([False, True, 0, 1, 9, "xz", "gzip"]), st.sampled_from(["C", "F", "strided", "big"]))
def test_fmnist_writes_reference_reads(array: npt.NDArray[Any], compress: Any, layout: str) -> None:
    view = array
    if layout == "F":
        view = np.asfortranarray(array)
    elif layout == "strided" and array.ndim:
        view = np.repeat(array, 2, axis=0)[::2]
    elif layout == "big":
        view = array.astype(array.dtype.newbyteorder(">"))
    buf = io.BytesIO()
    fmnist.write_idx(buf, view, compress=compress)
    data = buf.getvalue()
    assert (data[:2] == b"\x1f\x8b") == (compress is not False and compress != "xz")
    assert (data[:6] == reference.XZ_MAGIC) == (compress == "xz")
    assert same(reference.read_idx(data), array)
    assert same(fmnist.read_idx(data), array)
    if compress is False:
        assert data == reference.encode_idx(array)


@given(arrays())
@settings(max_examples=50)
def test_write_to_path_is_the_same_file(array: npt.NDArray[Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.idx")
        fmnist.write_idx(path, array)
        with open(path, "rb") as f:
            assert f.read() == reference.encode_idx(array)
        assert os.listdir(d) == ["out.idx"]


def test_scalar_and_empty_arrays() -> None:
    for a in [np.array(3.5), np.zeros((0,), np.int16), np.zeros((2, 0, 3), np.uint8)]:
        data = reference.write_idx(a, members=1)
        assert same(fmnist.read_idx(data), a)
