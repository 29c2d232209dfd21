"""The drop-in loaders: ``load``, ``load_data`` (keras's form), ``download``, ``load_mnist``
(mnist_reader's form), their arguments, and what they log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist

from .conftest import FILES
from .httpserver import Server
from .resolving import final_files


def test_download_into_an_empty_root_then_load(env: Path, server: Server, expected: dict[str, Any]) -> None:
    folder = fmnist.download(mirrors=[server.mirror("ok")])
    assert folder == env / "fashion-mnist"
    assert final_files(folder) == sorted(FILES)
    assert all(server.hits[("ok", f)] == 1 for f in FILES)
    (x, y), (xt, yt) = fmnist.load_data(download=False)
    assert np.array_equal(x, expected[FILES[0]]) and np.array_equal(yt, expected[FILES[3]])


def test_load_downloads_what_is_missing(env: Path, server: Server) -> None:
    images, labels = fmnist.load(split="test", mirrors=[server.mirror("ok")])
    assert images.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
    assert server.hits[("ok", "t10k-images-idx3-ubyte.gz")] == 1 and server.hits[("ok", FILES[0])] == 0


def test_load_mnist_has_the_mnist_reader_form(data_dir: Path, expected: dict[str, Any]) -> None:
    images, labels = fmnist.load_mnist(data_dir, kind="t10k")
    assert images.shape == (10000, 784) and images.dtype == np.uint8 and labels.shape == (10000,)
    assert np.array_equal(images, expected["t10k-images-idx3-ubyte.gz"].reshape(10000, 784))
    with pytest.raises(FileNotFoundError):
        fmnist.load_mnist(data_dir, kind="validation")


def test_load_data_has_the_keras_form(env: Path, server: Server) -> None:
    (x_train, y_train), (x_test, y_test) = fmnist.load_data(mirrors=[server.mirror("ok")])
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"mirrors": []}, ValueError, "mirrors is empty"),
        ({"mirrors": "http://127.0.0.1:1/"}, TypeError, "list of base URLs, not a single str"),
        ({"mirrors": ["ftp://example/"]}, ValueError, "http://, https:// or file://"),
        ({"retries": 0}, ValueError, "retries must be an int >= 1"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a positive number of seconds, finite, not inf"),
        ({"splits": ["validation"]}, ValueError, "split 'validation': fashion-mnist has the splits 'train' or 'test'"),
        ({"splits": []}, ValueError, "splits must be None \\(all\\) or a non-empty list of splits"),
        (
            {"splits": "train"},
            ValueError,
            "splits must be None \\(all\\) or a non-empty list of splits .*, not 'train'",
        ),
    ],
)
def test_download_arguments_are_checked_before_any_network(
    env: Path, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        fmnist.download(**kwargs)
    assert not (env / "fashion-mnist").exists() or not any((env / "fashion-mnist").iterdir())
    if "mirrors" in kwargs:
        with pytest.raises(error, match=message):
            fmnist.load(mirrors=kwargs["mirrors"], download=True, cache=False)


def test_an_archive_downloads_whole(env: Path) -> None:
    # EMNIST's splits share one gzip.zip: asking for some of its files is refused, before any network.
    with pytest.raises(ValueError, match="emnist-digits is published as one archive: it downloads whole"):
        fmnist.download("emnist-digits", splits=["train"], mirrors=["http://127.0.0.1:1/"])
    assert not env.exists() or not any(env.rglob("*"))  # nothing written


def test_other_surprising_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes must be an int from 0"):
        fmnist.read_idx(b"\x00\x00\x08\x01\x00\x00\x00\x00", max_bytes=2**64)
    x, y = np.zeros((4, 2), np.uint8), np.zeros(4)
    with pytest.raises(ValueError, match="world_size must be an int"):
        fmnist.batches(x, y, 2, world_size=True)
    with pytest.raises(ValueError, match="rank must be an int"):
        fmnist.batches(x, y, 2, rank=False, world_size=2)


def test_what_happens_is_logged_to_the_fmnist_logger(
    env: Path, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fmnist"):
        fmnist.load(split="test", mirrors=[server.mirror("404"), server.mirror("ok")])
    messages = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "fmnist"]
    assert any("t10k-images-idx3-ubyte.gz" in m and "404" in m and "next mirror" in m for m in messages)
    assert any(
        m.startswith("t10k-images-idx3-ubyte.gz: ") and "[download; " in m and ": downloaded, " in m for m in messages
    )
    assert any(m.startswith("t10k-labels-idx1-ubyte.gz: cached as") for m in messages)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="fmnist"):
        fmnist.load(split="test")
    assert any("warm cache" in r.getMessage() for r in caplog.records)
