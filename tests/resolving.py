"""Helpers the dataset layer's tests share: resolving as ``load`` does, the folders they lay out,
and datasets of the tests' own (an EMNIST-like archive, a registry file of 12x12 digits)."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import fmnist
from fmnist.datasets import Dataset, FileInfo
from fmnist.resolve import Policy, Resolution, resolve

from .conftest import FILES, link
from .httpserver import Server


def found(ds: Dataset, files: Any = None, **policy: Any) -> tuple[list[Any], Resolution]:
    """``resolve`` as ``load`` calls it, with downloads off unless asked: the arrays, and the
    resolution (provenance of each file, every candidate judged)."""
    result = resolve(ds, list(ds.files if files is None else files), Policy(**policy))
    return result.arrays(), result


def final_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*ubyte*")) if folder.exists() else []


def _searchable(data_dir: Path, tmp_path: Path) -> None:
    search = tmp_path / "search" / "fashion-mnist"
    search.mkdir(parents=True)
    for f in FILES:
        link(data_dir / f, search / f)


def _decompressed(data_dir: Path, folder: Path, names: Any = FILES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in names:
        (folder / f[:-3]).write_bytes(gzip.decompress((data_dir / f).read_bytes()))


def _archive_of(ds: Dataset) -> fmnist.datasets.Archive:
    assert ds.archive is not None
    return ds.archive


def _archive(tmp_path: Path) -> tuple[bytes, dict[str, Any], list[fmnist.Dataset]]:
    """An EMNIST-like archive of the tests' own: two datasets' IDX .gz files as members of one
    zip (under gzip/), images stored transposed, and the two registry entries that share it."""
    rng = np.random.default_rng(9)
    arrays: dict[str, Any] = {}
    for split, n in (("a", 120), ("b", 60)):
        for part, m in (("train", n), ("test", n // 3)):
            arrays[f"tiny-{split}-{part}-images-idx3-ubyte.gz"] = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8)
            arrays[f"tiny-{split}-{part}-labels-idx1-ubyte.gz"] = rng.integers(0, 4, m, dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("gzip/README", b"not an IDX file")
        for name, a in arrays.items():
            member = io.BytesIO()
            fmnist.write_idx(member, a, compress=True)
            z.writestr("gzip/" + name, member.getvalue())
    blob = buf.getvalue()
    archive = fmnist.datasets.Archive(
        "tiny-emnist", "tiny.zip", 1 << 20, stored_md5=hashlib.md5(blob).hexdigest(), members="gzip/"
    )
    entries = []
    for split, n in (("a", 120), ("b", 60)):
        files = tuple(
            FileInfo(f"tiny-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", part, kind, shape)
            for part, m in (("train", n), ("test", n // 3))
            for kind, shape in (("images", (m, 28, 28)), ("labels", (m,)))
        )
        entries.append(
            fmnist.Dataset(
                name=f"tiny-{split}",
                title="tiny",
                homepage="",
                license="",
                classes=("w", "x", "y", "z"),
                mirrors=(),
                files=files,
                torchvision_name="TinyEMNIST",
                archive=archive,
                transposed=True,
            )
        )
    return blob, arrays, entries


def _my_digits(tmp_path: Path, server: Server | None = None) -> tuple[Path, dict[str, bytes], dict[str, Any]]:
    """A dataset of the tests' own: 12x12 images in 3 classes, written as IDX .gz files and
    described in a TOML registry file."""
    rng = np.random.default_rng(5)
    arrays = {
        "digits-train-images.gz": rng.integers(0, 256, (300, 12, 12), dtype=np.uint8),
        "digits-train-labels.gz": np.repeat(np.arange(3, dtype=np.uint8), 100),
        "digits-test-images.gz": rng.integers(0, 256, (90, 12, 12), dtype=np.uint8),
        "digits-test-labels.gz": np.repeat(np.arange(3, dtype=np.uint8), 30),
    }
    blobs = {}
    for name, a in arrays.items():
        buf = io.BytesIO()
        fmnist.write_idx(buf, a, compress=True)
        blobs[name] = buf.getvalue()
    mirror = server.mirror("ok") if server else "https://example.invalid/digits/"
    files = "".join(
        f'[[dataset.files]]\nname = "{name}"\nsplit = "{name.split("-")[1]}"\nkind = "{name.split("-")[2][:-3]}"\n'
        f"shape = {list(arrays[name].shape)}\nstored_size = {len(blob)}\n"
        f'stored_md5 = "{hashlib.md5(blob).hexdigest()}"\n\n'
        for name, blob in blobs.items()
    )
    toml = (
        '[[dataset]]\nname = "my-digits"\ntitle = "My digits"\nlicense = "CC0"\n'
        f'classes = ["zero", "one", "two"]\nmirrors = ["{mirror}"]\ntorchvision_name = "MyDigits"\n\n' + files
    )
    path = tmp_path / "my.toml"
    path.write_text(toml)
    return path, blobs, arrays
