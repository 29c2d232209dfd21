"""The dataset registry: which files make up each dataset, where they are published, and the
digests that prove a copy is the right one.

Every digest says what it covers: ``gz_*`` digests are of the compressed file as published
upstream (a .gz, or for QMNIST's nist split an .xz); ``content_*`` digests are of the
decompressed IDX bytes, which stay the same when a mirror recompresses the archive (Debian
does: its .gz bytes differ, its content does not).

Datasets users define are described the same way (``Dataset``, ``FileInfo``), in Python or in
a TOML or JSON file (``load_registry``, ``$FMNIST_REGISTRY``), and registered with ``register``,
as the built-in ones are.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _core
from .errors import Error

#: The splits of the MNIST layout (a dataset may have others: ``Dataset.splits``).
SPLITS = ("train", "test")


@dataclass(frozen=True)
class FileInfo:
    """One published IDX file."""

    name: str  #: file name as published, e.g. "train-images-idx3-ubyte.gz"
    split: str  #: "train", "test", or another of the dataset's splits
    kind: str  #: "images" or "labels"
    shape: tuple[int, ...]  #: the array it holds
    gz_size: int | None = None  #: bytes of the published .gz
    gz_md5: str | None = None  #: MD5 of the published .gz bytes
    gz_sha256: str | None = None  #: SHA-256 of the published .gz bytes
    content_md5: str | None = None  #: MD5 of the decompressed IDX bytes
    content_sha256: str | None = None  #: SHA-256 of the decompressed IDX bytes
    dtype: str = "uint8"  #: numpy name of the element type (QMNIST's labels are int32)

    @property
    def stem(self) -> str:
        """The decompressed file's name: "train-images-idx3-ubyte"."""
        for suffix in (".gz", ".xz"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def content_size(self) -> int:
        """Bytes of the decompressed IDX file: header + payload (the engine's rule)."""
        header, payload = _core.idx_size(self.dtype, list(self.shape))
        return int(header + payload)


@dataclass(frozen=True)
class Archive:
    """A zip that holds a dataset's IDX files (EMNIST's ``gzip.zip``, all six of its datasets in
    one): downloaded once, verified by its MD5, and read member by member, never extracted."""

    name: str  #: file name as published, e.g. "gzip.zip"
    md5: str  #: MD5 of the archive as published
    folder: str  #: its folder under the data root, shared by the datasets in it, e.g. "emnist"
    members: str  #: the folder of the IDX files inside the archive, e.g. "gzip/"
    max_size: int  #: the most bytes a mirror may send for it
    #: where torchvision keeps it, relative to its root (torchvision extracts it there too)
    torchvision_dir: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset in the MNIST layout: four IDX files, two splits."""

    name: str
    title: str
    homepage: str
    license: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]  #: base URLs, tried in order
    files: tuple[FileInfo, ...]
    #: where other loaders keep it: torchvision's class name (``<root>/<name>/raw/``), keras's
    #: folder under its datasets folder, the name of Debian's folder under /usr/share/datasets
    torchvision_name: str = ""
    keras_name: str = ""
    debian_name: str = ""
    #: keras's single-file form (``<keras datasets folder>/<file>``: an .npz of x_train, y_train,
    #: x_test, y_test) and the SHA-256 keras's source publishes for it
    keras_npz: str = ""
    keras_npz_sha256: str = ""
    #: where the dataset's own repository keeps the files, relative to a clone
    repo_dir: str = ""
    aliases: tuple[str, ...] = field(default=())
    #: names of the label columns, when labels are rows (QMNIST); column 0 is the class
    label_columns: tuple[str, ...] = field(default=())
    #: splits that are slices of another, as torchvision names them: name -> (split, start, stop)
    slices: Mapping[str, tuple[str, int, int | None]] = field(default_factory=dict)
    #: the archive the files are members of (EMNIST); None: each file is published on its own
    archive: Archive | None = None
    #: the images are stored transposed (EMNIST): ``load(..., upright=True)`` turns them
    transposed: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names, in registry order (slices not included)."""
        return tuple(dict.fromkeys(f.split for f in self.files))

    def file(self, split: str, kind: str) -> FileInfo:
        for f in self.files:
            if f.split == split and f.kind == kind:
                return f
        raise KeyError((split, kind))


def _files(
    sizes: Mapping[str, tuple[int | None, str | None, str | None, str | None, str | None]],
) -> tuple[FileInfo, ...]:
    shapes = {"train": 60000, "t10k": 10000}
    out = []
    for name, (gz_size, gz_md5, gz_sha256, content_md5, content_sha256) in sizes.items():
        prefix, kind = name.split("-")[:2]
        n = shapes[prefix]
        out.append(
            FileInfo(
                name=name,
                split="train" if prefix == "train" else "test",
                kind=kind,
                shape=(n, 28, 28) if kind == "images" else (n,),
                gz_size=gz_size,
                gz_md5=gz_md5,
                gz_sha256=gz_sha256,
                content_md5=content_md5,
                content_sha256=content_sha256,
            )
        )
    return tuple(out)


FASHION_MNIST = Dataset(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando Research)",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    license="MIT, Copyright (c) 2017 Zalando SE",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    # .gz MD5: the dataset README. .gz SHA-256: as torchvision-ruby, tfds-style checksum lists
    # and others publish them beside that MD5. Content digests: shared/data/fashion-mnist/SOURCE.md.
    files=_files(
        {
            "train-images-idx3-ubyte.gz": (
                26421880,
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            "train-labels-idx1-ubyte.gz": (
                29515,
                "25c81989df183df01b3e8a0aad5dffbe",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "9018921c3c673c538a1fc5bad174d6f9",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            "t10k-images-idx3-ubyte.gz": (
                4422102,
                "bef4ecab320f06d8554ea6380940ec79",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "8181f5470baa50b63fa0f6fddb340f0a",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                5148,
                "bb300cfdad3c16e7a12a480ee83cd310",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "15d484375f8d13e6eb1aabb0c3f46965",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        }
    ),
    torchvision_name="FashionMNIST",
    keras_name="fashion-mnist",
    debian_name="fashion-mnist",
    repo_dir="data/fashion",
    aliases=("fashion_mnist", "fashionmnist", "fmnist", "fashion"),
)

MNIST = Dataset(
    name="mnist",
    title="MNIST (LeCun, Cortes, Burges)",
    homepage="http://yann.lecun.com/exdb/mnist/",
    license="CC BY-SA 3.0 (as distributed by its mirrors)",
    classes=tuple(str(d) for d in range(10)),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    # .gz MD5: torchvision; .gz SHA-256 and sizes: tensorflow-datasets' checksum list. Content
    # MD5 (of the decompressed files): as several independent projects list them for the
    # uncompressed IDX files (one list beside Fashion-MNIST's content MD5s, which match
    # SOURCE.md): a decompressed or recompressed copy is verified by them.
    files=_files(
        {
            "train-images-idx3-ubyte.gz": (
                9912422,
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "6bbc9ace898e44ae57da46a324031adb",
                None,
            ),
            "train-labels-idx1-ubyte.gz": (
                28881,
                "d53e105ee54ea40749a09fcbcd1e9432",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "a25bea736e30d166cdddb491f175f624",
                None,
            ),
            "t10k-images-idx3-ubyte.gz": (
                1648877,
                "9fb629c4189551a2d022fa330f9573f3",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "2646ac647ad5339dbf082846283269ea",
                None,
            ),
            "t10k-labels-idx1-ubyte.gz": (
                4542,
                "ec29112dd5afa0611ce80d1b7f02629c",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "27ae3e4e09519cfbb04c329615203637",
                None,
            ),
        }
    ),
    torchvision_name="MNIST",
    # keras.datasets.mnist: one file, `<keras datasets folder>/mnist.npz`; SHA-256 from keras's source.
    keras_npz="mnist.npz",
    keras_npz_sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
)

KMNIST = Dataset(
    name="kmnist",
    title="Kuzushiji-MNIST (ROIS-DS Center for Open Data in the Humanities)",
    homepage="https://github.com/rois-codh/kmnist",
    license="CC BY-SA 4.0",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    mirrors=(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    # .gz MD5: torchvision; .gz SHA-256: torchvision-ruby. No content digest is published: a
    # decompressed copy is accepted when its content equals a verified .gz's (see loaders.Store).
    files=_files(
        {
            "train-images-idx3-ubyte.gz": (
                None,
                "bdb82020997e1d708af4cf47b453dcf7",
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                None,
                None,
            ),
            "train-labels-idx1-ubyte.gz": (
                None,
                "e144d726b3acfaa3e44228e80efcd344",
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                None,
                None,
            ),
            "t10k-images-idx3-ubyte.gz": (
                None,
                "5c965bf0a639b31b8f53240b1b52f4d7",
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                None,
                None,
            ),
            "t10k-labels-idx1-ubyte.gz": (
                None,
                "7320c461ea6c1c855c0b718fb2a4b134",
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
                None,
                None,
            ),
        }
    ),
    torchvision_name="KMNIST",
    aliases=("kuzushiji-mnist",),
)

_QMNIST_RAW = "https://raw.githubusercontent.com/facebookresearch/qmnist/master/"

QMNIST = Dataset(
    name="qmnist",
    title="QMNIST (Yadav and Bottou, Facebook AI Research)",
    homepage="https://github.com/facebookresearch/qmnist",
    license="BSD-style (QMNIST repository LICENSE)",
    classes=tuple(str(d) for d in range(10)),
    mirrors=(_QMNIST_RAW,),
    # Compressed-file MD5s: torchvision's QMNIST resources (0.29.2, read from its source); they
    # verify shared/data/qmnist/'s label files, whose content SHA-256s are established from those.
    files=(
        FileInfo(
            "qmnist-train-images-idx3-ubyte.gz",
            "train",
            "images",
            (60000, 28, 28),
            gz_md5="ed72d4157d28c017586c42bc6afe6370",
        ),
        FileInfo(
            "qmnist-train-labels-idx2-int.gz",
            "train",
            "labels",
            (60000, 8),
            gz_size=463024,
            gz_md5="0058f8dd561b90ffdd0f734c6a30e5e4",
            content_sha256="bb1b6e1ec7b04fd5696f1ed50b5f58f8ef195118edd5c93c81783df9740b8ac5",
            dtype="int32",
        ),
        FileInfo(
            "qmnist-test-images-idx3-ubyte.gz",
            "test",
            "images",
            (60000, 28, 28),
            gz_md5="1394631089c404de565df7b7aeaf9412",
        ),
        FileInfo(
            "qmnist-test-labels-idx2-int.gz",
            "test",
            "labels",
            (60000, 8),
            gz_size=526800,
            gz_md5="5b5b05890a5e13444e108efe57b788aa",
            content_sha256="92d0ccb8c25f9c6534270fb4be7e1d24a1c6d315edfc8a638bfbd31c70f362dd",
            dtype="int32",
        ),
        FileInfo(
            "xnist-images-idx3-ubyte.xz", "nist", "images", (402953, 28, 28), gz_md5="7f124b3b8ab81486c9d8c2749c17f834"
        ),
        FileInfo(
            "xnist-labels-idx2-int.xz",
            "nist",
            "labels",
            (402953, 8),
            gz_md5="5ed0e788978e45d4a8bd4b7caec3d79d",
            dtype="int32",
        ),
    ),
    torchvision_name="QMNIST",
    # The QMNIST README's eight columns.
    label_columns=(
        "class",
        "nist_hsf_series",
        "nist_writer_id",
        "writer_digit_index",
        "nist_class_code",
        "nist_digit_index",
        "duplicate",
        "unused",
    ),
    # torchvision's `what`: test10k is MNIST's test set, test50k the rest of QMNIST's test split.
    slices={"test10k": ("test", 0, 10000), "test50k": ("test", 10000, None)},
)

_EMNIST = Archive(
    name="gzip.zip",
    # torchvision's EMNIST.md5 (0.29.2 source); the archive is 535 MiB.
    md5="58c8d27c78d21e728a6bc7b3cc06412e",
    folder="emnist",
    members="gzip/",
    max_size=600 << 20,
    torchvision_dir="EMNIST/raw",
)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_MERGED = set("cijklmopsuvwxyz")
_ALL = sorted(set("0123456789" + _LETTERS + _LETTERS.upper()))
#: split -> (training examples, test examples, class names as torchvision gives them)
_EMNIST_SPLITS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "byclass": (697932, 116323, tuple(_ALL)),
    "bymerge": (697932, 116323, tuple(c for c in _ALL if c not in _MERGED)),
    "balanced": (112800, 18800, tuple(c for c in _ALL if c not in _MERGED)),
    "letters": (124800, 20800, ("N/A", *_LETTERS)),  # labels 1-26; 0 is never used
    "digits": (240000, 40000, tuple("0123456789")),
    "mnist": (60000, 10000, tuple("0123456789")),
}


def _emnist(split: str) -> Dataset:
    n_train, n_test, classes = _EMNIST_SPLITS[split]
    files = tuple(
        FileInfo(f"emnist-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", part, kind, shape)
        for part, n in (("train", n_train), ("test", n_test))
        for kind, shape in (("images", (n, 28, 28)), ("labels", (n,)))
    )
    return Dataset(
        name=f"emnist-{split}",
        title=f"EMNIST {split} (Cohen, Afshar, Tapson, van Schaik; NIST)",
        homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
        license="NIST (public domain in the United States)",
        classes=classes,
        mirrors=("https://biometrics.nist.gov/cs_links/EMNIST/",),
        files=files,
        torchvision_name="EMNIST",
        archive=_EMNIST,
        transposed=True,
    )


#: name -> Dataset: the registry. Fashion-MNIST first: it is the default everywhere. The
#: built-in datasets are registered below by ``register``, as datasets users define are.
DATASETS: dict[str, Dataset] = {}


def get(name: str) -> Dataset:
    """The dataset called ``name`` (or one of its aliases); ValueError naming the known ones.
    The files of ``$FMNIST_REGISTRY`` are registered first (once)."""
    load_env_registries()
    key = name.lower()
    for d in DATASETS.values():
        if key == d.name or key in d.aliases:
            return d
    raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}")


# --- datasets users define ------------------------------------------------------------------

#: What a dataset or file name may be: it becomes a folder or file name and part of a URL.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
#: The element types IDX holds, by numpy name: the engine's table.
_DTYPES = tuple(name for code, name, _ in _core.ELEMENT_TYPES if code is not None)
_HEX = {"md5": 32, "sha256": 64, "content_md5": 32, "content_sha256": 64}
#: file-description keys (as in a registry file) -> FileInfo fields
_FILE_KEYS = {
    "name": "name",
    "split": "split",
    "kind": "kind",
    "shape": "shape",
    "dtype": "dtype",
    "size": "gz_size",
    "md5": "gz_md5",
    "sha256": "gz_sha256",
    "content_md5": "content_md5",
    "content_sha256": "content_sha256",
}
_DATASET_KEYS = (
    "name",
    "title",
    "homepage",
    "license",
    "classes",
    "mirrors",
    "files",
    "torchvision_name",
    "keras_name",
    "debian_name",
    "keras_npz",
    "keras_npz_sha256",
    "repo_dir",
    "aliases",
    "label_columns",
    "slices",
    "archive",
    "transposed",
)


class RegistryError(Error, ValueError):
    """A dataset description that cannot be used: the message names its source and the problem."""


def _problems(ds: Dataset) -> list[str]:
    """Everything wrong with a dataset description (empty when it can be registered)."""
    out = []
    for what, value in [("name", ds.name), *(("alias", a) for a in ds.aliases)]:
        if not _SAFE_NAME.fullmatch(value) or ".." in value:
            out.append(f"{what} {value!r} must be letters, digits, '.', '_', '+' or '-' (it names a folder)")
    if ds.archive is not None:
        a = ds.archive
        if (
            not _SAFE_NAME.fullmatch(a.name)
            or not _SAFE_NAME.fullmatch(a.folder)
            or not re.fullmatch("[0-9a-f]{32}", a.md5)
        ):
            out.append(f"archive: name and folder must be plain names and md5 32 lowercase hex digits ({a!r})")
    for what, value in (("torchvision_name", ds.torchvision_name), ("keras_name", ds.keras_name)):
        if value and not _SAFE_NAME.fullmatch(value):
            out.append(f"{what} {value!r} must be a plain folder name")
    if not ds.classes or not all(isinstance(c, str) and c for c in ds.classes):
        out.append("classes must be a non-empty list of names")
    for url in ds.mirrors:
        if not (isinstance(url, str) and url.startswith(("http://", "https://", "file://")) and url.endswith("/")):
            out.append(f"mirror {url!r} must be an http://, https:// or file:// base URL ending in '/'")
    if not ds.files:
        out.append("no files")
    for f in ds.files:
        where = f"file {f.name!r}"
        if not _SAFE_NAME.fullmatch(f.name) or ".." in f.name:
            out.append(f"{where}: the name must be a plain file name")
        if f.kind not in ("images", "labels"):
            out.append(f"{where}: kind must be 'images' or 'labels', not {f.kind!r}")
        if f.dtype not in _DTYPES:
            out.append(f"{where}: dtype must be one of {', '.join(_DTYPES)}, not {f.dtype!r}")
        if not f.shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in f.shape):
            out.append(f"{where}: shape must be a list of positive sizes, not {list(f.shape)!r}")
        if not (f.gz_md5 or f.gz_sha256 or f.content_md5 or f.content_sha256 or ds.archive):
            out.append(f"{where}: no digest (md5, sha256, content_md5 or content_sha256): nothing could verify it")
        for key, field_name in (
            ("md5", "gz_md5"),
            ("sha256", "gz_sha256"),
            ("content_md5", "content_md5"),
            ("content_sha256", "content_sha256"),
        ):
            value = getattr(f, field_name)
            if value is not None and not re.fullmatch(f"[0-9a-f]{{{_HEX[key]}}}", value):
                out.append(f"{where}: {key} must be {_HEX[key]} lowercase hex digits, not {value!r}")
        if f.gz_size is not None and (isinstance(f.gz_size, bool) or not isinstance(f.gz_size, int) or f.gz_size < 1):
            out.append(f"{where}: size must be a positive number of bytes, not {f.gz_size!r}")
    for split in dict.fromkeys(f.split for f in ds.files):
        kinds = sorted(f.kind for f in ds.files if f.split == split)
        if kinds != ["images", "labels"]:
            out.append(f"split {split!r} must have one images file and one labels file, has {kinds}")
            continue
        images, labels = ds.file(split, "images"), ds.file(split, "labels")
        if images.shape[:1] != labels.shape[:1]:
            out.append(f"split {split!r}: {images.shape[0]} images but {labels.shape[0]} labels")
    for name, (split, _, _) in ds.slices.items():
        if split not in ds.splits or name in ds.splits:
            out.append(f"slice {name!r} must cut one of the splits {list(ds.splits)}, not {split!r}")
    return out


def register(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Adds ``dataset`` to the registry, after which ``load``, ``load_data``, ``download``,
    discovery, the warm cache, the command line and ``fmnist.torch`` serve it as they serve the
    built-in datasets (which are registered the same way). Registering an equal description
    again does nothing; a different one under a taken name (or alias) is refused unless
    ``replace``. Raises ``RegistryError`` naming every problem of a bad description."""
    problems = _problems(dataset)
    if problems:
        raise RegistryError(f"dataset {dataset.name!r}: " + "; ".join(problems))
    if DATASETS.get(dataset.name) == dataset:
        return dataset
    taken = {
        n: d.name for d in DATASETS.values() for n in (d.name, *d.aliases) if d.name != dataset.name or not replace
    }
    clash = [n for n in (dataset.name, *dataset.aliases) if n in taken]
    if clash:
        raise RegistryError(
            f"dataset {dataset.name!r}: {clash[0]!r} already names the registered dataset {taken[clash[0]]!r} "
            "(pass replace=True to redefine it)"
        )
    DATASETS[dataset.name] = dataset
    return dataset


def from_dict(description: Mapping[str, Any], source: str = "<dict>") -> Dataset:
    """A ``Dataset`` from its description as a registry file holds it (see ``load_registry``)."""
    where = f"{source}: dataset {description.get('name', '?')!r}"
    unknown = sorted(set(description) - set(_DATASET_KEYS))
    if unknown:
        raise RegistryError(f"{where}: unknown key(s) {unknown}; known: {', '.join(_DATASET_KEYS)}")
    missing = [k for k in ("name", "classes", "files") if k not in description]
    if missing:
        raise RegistryError(f"{where}: missing {', '.join(missing)}")
    files = []
    for f in description["files"]:
        if not isinstance(f, Mapping):
            raise RegistryError(f"{where}: each file must be a table/object, not {f!r}")
        bad = sorted(set(f) - set(_FILE_KEYS))
        if bad or not {"name", "split", "kind", "shape"} <= set(f):
            raise RegistryError(
                f"{where}: file {f.get('name', '?')!r} needs name, split, kind and shape"
                + (f"; unknown key(s) {bad}, known: {', '.join(_FILE_KEYS)}" if bad else "")
            )
        values = {_FILE_KEYS[k]: v for k, v in f.items()}
        values["shape"] = tuple(values["shape"]) if isinstance(values["shape"], (list, tuple)) else values["shape"]
        files.append(FileInfo(**values))
    text = {k: str(description.get(k, "")) for k in ("title", "homepage", "license")}
    slices = {
        k: (v[0], int(v[1]), None if len(v) < 3 or v[2] is None else int(v[2]))
        for k, v in description.get("slices", {}).items()
    }
    try:
        return Dataset(
            name=str(description["name"]),
            title=text["title"] or str(description["name"]),
            homepage=text["homepage"],
            license=text["license"],
            classes=tuple(description["classes"]),
            mirrors=tuple(description.get("mirrors", ())),
            files=tuple(files),
            torchvision_name=str(description.get("torchvision_name", "")),
            keras_name=str(description.get("keras_name", "")),
            debian_name=str(description.get("debian_name", "")),
            keras_npz=str(description.get("keras_npz", "")),
            keras_npz_sha256=str(description.get("keras_npz_sha256", "")),
            repo_dir=str(description.get("repo_dir", "")),
            aliases=tuple(description.get("aliases", ())),
            label_columns=tuple(description.get("label_columns", ())),
            slices=slices,
            archive=Archive(**description["archive"]) if "archive" in description else None,
            transposed=bool(description.get("transposed", False)),
        )
    except TypeError as e:
        raise RegistryError(f"{where}: {e}") from None


def to_dict(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as a registry file describes it (``from_dict`` gives it back)."""
    out: dict[str, Any] = {k: getattr(dataset, k) for k in ("name", "title", "homepage", "license")}
    out["classes"] = list(dataset.classes)
    out["mirrors"] = list(dataset.mirrors)
    for k in ("torchvision_name", "keras_name", "debian_name", "keras_npz", "keras_npz_sha256", "repo_dir"):
        if getattr(dataset, k):
            out[k] = getattr(dataset, k)
    for k in ("aliases", "label_columns"):
        if getattr(dataset, k):
            out[k] = list(getattr(dataset, k))
    if dataset.slices:
        out["slices"] = {k: list(v) for k, v in dataset.slices.items()}
    if dataset.archive is not None:
        out["archive"] = {k: getattr(dataset.archive, k) for k in dataset.archive.__dataclass_fields__}
    if dataset.transposed:
        out["transposed"] = True
    out["files"] = []
    for f in dataset.files:
        entry = {key: getattr(f, field_name) for key, field_name in _FILE_KEYS.items()}
        entry["shape"] = list(f.shape)
        out["files"].append({k: v for k, v in entry.items() if v is not None})
    return out


#: The largest registry file read: the built-in registry of ten datasets is a few KiB.
REGISTRY_MAX_BYTES = 1 << 20


def _read_registry_file(path: str) -> bytes:
    """The bytes of a registry file: a regular file of at most ``REGISTRY_MAX_BYTES``. It is
    opened without blocking (a FIFO would wait for a writer) and judged by ``fstat`` before a
    byte is read; a file that grows while it is read is refused too."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError(f"{path}: not a regular file; a registry is a TOML or JSON file")
        raw = f.read(REGISTRY_MAX_BYTES + 1)
    if len(raw) > REGISTRY_MAX_BYTES:
        raise RegistryError(f"{path}: over {REGISTRY_MAX_BYTES} bytes; a registry file is at most 1 MiB")
    return raw


def load_registry(path: str | os.PathLike[str], *, replace: bool = False) -> list[Dataset]:
    """Registers the datasets a TOML (``.toml``) or JSON file describes: a list ``dataset`` of
    tables, each as ``to_dict`` writes one (name, title, homepage, license, classes, mirrors,
    files: name, split, kind, shape, dtype, size, md5, sha256, content_md5, content_sha256).
    Returns them; ``RegistryError`` names the file and the problem."""
    path = os.fspath(path)
    try:
        raw = _read_registry_file(path)
        if path.endswith(".toml"):
            if sys.version_info >= (3, 11):
                import tomllib
            else:
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except OSError:
        raise
    except ValueError as e:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        raise RegistryError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {e}") from None
    entries = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{path}: expected a non-empty list 'dataset' of dataset descriptions")
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise RegistryError(f"{path}: each dataset must be a table/object")
        ds = from_dict(entry, path)
        try:
            out.append(register(ds, replace=replace))
        except RegistryError as e:
            raise RegistryError(f"{path}: {e}") from None
    return out


_loaded_from_env: set[str] = set()


def load_env_registries() -> None:
    """Registers the files of ``$FMNIST_REGISTRY`` (os.pathsep-separated), once each."""
    for path in os.environ.get("FMNIST_REGISTRY", "").split(os.pathsep):
        if path and path not in _loaded_from_env:
            load_registry(path)
            _loaded_from_env.add(path)


for _builtin in (FASHION_MNIST, MNIST, KMNIST, QMNIST, *(_emnist(s) for s in _EMNIST_SPLITS)):
    register(_builtin)
