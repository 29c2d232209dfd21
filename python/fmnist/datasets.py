"""The dataset registry: which files make up each dataset, where they are published, and the
digests that prove a copy is the right one.

Every digest says what it covers: ``gz_*`` digests are of the compressed file as published
upstream; ``content_*`` digests are of the decompressed IDX bytes, which stay the same when a
mirror recompresses the archive (Debian does: its .gz bytes differ, its content does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FileInfo:
    """One published IDX file."""

    name: str  #: file name as published, e.g. "train-images-idx3-ubyte.gz"
    split: str  #: "train" or "test"
    kind: str  #: "images" or "labels"
    shape: tuple[int, ...]  #: the array it holds (uint8)
    gz_size: int | None = None  #: bytes of the published .gz
    gz_md5: str | None = None  #: MD5 of the published .gz bytes
    gz_sha256: str | None = None  #: SHA-256 of the published .gz bytes
    content_md5: str | None = None  #: MD5 of the decompressed IDX bytes
    content_sha256: str | None = None  #: SHA-256 of the decompressed IDX bytes

    @property
    def stem(self) -> str:
        """The decompressed file's name: "train-images-idx3-ubyte"."""
        return self.name[: -len(".gz")] if self.name.endswith(".gz") else self.name

    @property
    def content_size(self) -> int:
        """Bytes of the decompressed IDX file: header + uint8 payload."""
        n = 1
        for d in self.shape:
            n *= d
        return 4 + 4 * len(self.shape) + n


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

#: name -> Dataset. Fashion-MNIST first: it is the default everywhere.
DATASETS: dict[str, Dataset] = {d.name: d for d in (FASHION_MNIST, MNIST, KMNIST)}


def get(name: str) -> Dataset:
    """The dataset called ``name`` (or one of its aliases); ValueError naming the known ones."""
    key = name.lower()
    for d in DATASETS.values():
        if key == d.name or key in d.aliases:
            return d
    raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}")
