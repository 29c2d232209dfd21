"""The registry: the built-in datasets, registry files users write (TOML or JSON, checked whole,
naming the file, the dataset and the field), names and aliases, and a dataset of the tests' own
loaded, downloaded and cached like the built-in ones."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist.datasets import DATASETS

from .httpserver import Server
from .resolving import _my_digits
from .test_real_data import REAL


def test_registry_knows_the_built_in_datasets_with_labelled_digests() -> None:
    emnist = [f"emnist-{s}" for s in ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")]
    assert list(DATASETS) == ["fashion-mnist", "mnist", "kmnist", "qmnist", *emnist]
    assert fmnist.DATASETS is DATASETS
    fm = DATASETS["fashion-mnist"]
    assert fm.classes == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    for ds in DATASETS.values():
        assert len(ds.files) == 2 * len(ds.splits) and (ds.archive or ds).mirrors and len(ds.classes) >= 10
        if ds.archive:  # EMNIST: one verified archive holds the files
            assert ds.archive.stored_md5 == "58c8d27c78d21e728a6bc7b3cc06412e" and ds.transposed
            continue
        for f in ds.files:  # QMNIST's are published with MD5s only (torchvision's)
            assert f.stored_md5 and len(f.stored_md5) == 32
            assert ds.name == "qmnist" or len(f.stored_sha256 or "") == 64
    assert DATASETS["emnist-letters"].classes[:3] == ("N/A", "a", "b")  # labels start at 1
    assert len(DATASETS["emnist-byclass"].classes) == 62 and len(DATASETS["emnist-balanced"].classes) == 47
    for f in fm.files:  # content digests as SOURCE.md gives them; .gz MD5 as the dataset README does
        assert (f.content_size, f.content_md5, f.content_sha256) == REAL[f.name][1:]
    assert fm.file("train", "images").stored_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    with pytest.raises(
        ValueError, match="unknown dataset 'cifar'.*fashion-mnist, mnist, kmnist, qmnist, emnist-byclass"
    ):
        fmnist.load("cifar")
    with pytest.raises(ValueError, match="split 'validation': fashion-mnist has the splits 'train' or 'test'"):
        fmnist.load(split="validation")


def _bad_description(change: Any) -> dict[str, Any]:
    """my-digits as a registry file holds it (with an archive of its own), changed by ``change``."""
    ds = fmnist.datasets.to_dict(fmnist.datasets.FASHION_MNIST)
    ds.update(name="my-digits", aliases=["mydigits"], torchvision_name="MyDigits")
    data = {"dataset": [ds], "archive": [{"name": "my-zip", "file": "a.zip", "max_size": 1000, "stored_md5": "0" * 32}]}
    change(data, ds, ds["files"][0])
    return data


REGISTRY_FAULTS: dict[str, tuple[Any, str]] = {
    "files=5": (lambda d, ds, f: ds.update(files=5), "files: must be a non-empty list"),
    "shape=5": (lambda d, ds, f: f.update(shape=5), r"files\[0\].*\.shape: must be a list of 1 to"),
    "shape=[]": (lambda d, ds, f: f.update(shape=[]), r"\.shape: must be a list of 1 to"),
    "numeric name": (lambda d, ds, f: ds.update(name=5), "name: must be one folder or file name .*, not int 5"),
    "numeric md5": (lambda d, ds, f: f.update(stored_md5=5), r"\.stored_md5: must be 32 lowercase hex digits"),
    "aliases=[1]": (
        lambda d, ds, f: ds.update(aliases=[1]),
        r"aliases\[0\]: must be one folder or file name .*, not int 1",
    ),
    "kind=[images]": (lambda d, ds, f: f.update(kind=["images"]), r"\.kind: must be 'images' or 'labels'"),
    "slices=[]": (lambda d, ds, f: ds.update(slices=[]), "slices: must be a table"),
    "bad slice": (lambda d, ds, f: ds.update(slices={"x": ["train", 5, 2]}), "slices.x: start and stop must cut"),
    "slice of nothing": (lambda d, ds, f: ds.update(slices={"x": ["nope", 0, 2]}), "slices.x: must be"),
    "debian_name path": (
        lambda d, ds, f: ds.update(debian_name="../../etc"),
        "debian_name: must be empty or one folder or file name .*, not str '../../etc'",
    ),
    "repo_dir path": (
        lambda d, ds, f: ds.update(repo_dir="/etc"),
        "repo_dir: must be a relative path of plain folder names, not str '/etc'",
    ),
    "keras_npz path": (
        lambda d, ds, f: ds.update(keras_npz="../shadow"),
        "keras_npz: must be empty or one folder or file name .*, not str '../shadow'",
    ),
    "torchvision_name path": (
        lambda d, ds, f: ds.update(torchvision_name="a/b"),
        "torchvision_name: must be empty or one folder .*'a/b'",
    ),
    "max_size=big": (lambda d, ds, f: d["archive"][0].update(max_size="big"), "max_size: must be a positive whole"),
    "transposed=no": (lambda d, ds, f: ds.update(transposed="no"), "transposed: must be true or false"),
    "named like an archive": (
        lambda d, ds, f: ds.update(name="my-zip"),
        "name: 'my-zip' also names its archive 'my-zip'",
    ),
    "named like the built-ins' archive": (
        lambda d, ds, f: ds.update(name="EMNIST"),
        "folder of the registered archive",
    ),
    "stems collide": (
        lambda d, ds, f: (f.update(name="imgs.gz"), ds["files"][2].update(name="imgs.xz")),
        "'imgs.gz' and 'imgs.xz' have the same cache name 'imgs'",
    ),
    "names collide": (lambda d, ds, f: ds["files"][2].update(name=f["name"]), "have the same file name"),
    "alias taken": (lambda d, ds, f: ds.update(aliases=["Fashion"]), "'Fashion' already names the registered"),
    "unknown archive": (lambda d, ds, f: ds.update(archive="nope"), "archive: must name an archive"),
    "archive members path": (
        lambda d, ds, f: d["archive"][0].update(members="../"),
        "members: must be a relative path of plain folder names ending in '/', not str '../'",
    ),
    "an unknown spelling": (lambda d, ds, f: f.update(md5="0" * 32), r"unknown key\(s\) \['md5'\]"),
    "unknown key": (lambda d, ds, f: ds.update(licence="CC0"), "unknown key"),
    "no classes": (lambda d, ds, f: ds.update(classes=[]), "classes: must be a non-empty list"),
    "no files key": (lambda d, ds, f: ds.pop("files"), "'files' is a required property"),
    "slice named as a split": (
        lambda d, ds, f: ds.update(slices={"test": ["train", 0, 5]}),
        r"slices.test: must be \[split, start, stop\] of one of the splits \['train', 'test'\], named otherwise",
    ),
    "npz without its digest": (
        lambda d, ds, f: ds.update(keras_npz="digits.npz", keras_npz_sha256=""),
        "keras_npz_sha256: must be given with keras_npz",
    ),
    "bad mirror": (
        lambda d, ds, f: ds.update(mirrors=["ftp://x/"]),
        r"mirrors\[0\]: must be an http://, https:// or file:// base URL .*, not str 'ftp://x/'",
    ),
}


@pytest.mark.parametrize("fault", list(REGISTRY_FAULTS))
def test_registry_files_are_checked_whole_naming_the_file_dataset_and_field(
    tmp_path: Path, registered: None, fault: str
) -> None:
    change, message = REGISTRY_FAULTS[fault]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad_description(change)))
    before = (dict(DATASETS), dict(fmnist.datasets.ARCHIVES))
    with pytest.raises(fmnist.RegistryError, match=message) as e:
        fmnist.load_registry(path)
    assert str(path) in str(e.value)
    assert ": dataset " in str(e.value) or ": archive " in str(e.value)  # and which one
    assert (DATASETS, fmnist.datasets.ARCHIVES) == before  # nothing of the file registered


def test_names_are_case_insensitive_and_a_bad_env_registry_breaks_nothing_else(
    tmp_path: Path, registered: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = _bad_description(lambda d, ds, f: ds.update(name="My-Digits", aliases=[]))
    (tmp_path / "good.json").write_text(json.dumps(good))
    (ds,) = fmnist.load_registry(tmp_path / "good.json")
    assert fmnist.datasets.get("my-digits") is ds and fmnist.datasets.get("MY-DIGITS") is ds
    with pytest.raises(fmnist.RegistryError, match="'MY-digits' already names the registered dataset 'My-Digits'"):
        fmnist.register(replace(ds, name="MY-digits", title="other"))
    # One bad file in $FMNIST_REGISTRY: logged, named when its dataset is asked for, and the rest
    # (the built-in datasets, a good file after it) still load.
    (tmp_path / "bad.json").write_text(json.dumps(_bad_description(lambda d, ds, f: f.update(shape=5))))
    other = _bad_description(lambda d, ds, f: ds.update(name="other-digits", aliases=[]))
    del other["archive"]
    (tmp_path / "other.json").write_text(json.dumps(other))
    monkeypatch.setenv("FMNIST_REGISTRY", os.pathsep.join(str(tmp_path / n) for n in ("bad.json", "other.json")))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert fmnist.datasets.get("fashion-mnist").name == "fashion-mnist"
        assert fmnist.datasets.get("other-digits").name == "other-digits"
        with pytest.raises(
            ValueError, match=r"(?s)unknown dataset 'my-digits-2'.*refused from \$FMNIST_REGISTRY: .*bad.json"
        ):
            fmnist.datasets.get("my-digits-2")
    assert any("bad.json" in r.getMessage() and "shape" in r.getMessage() for r in caplog.records)


def test_the_built_in_datasets_are_a_registry_file_in_the_package() -> None:
    archives, found = fmnist.datasets.parse_registry(fmnist.datasets.BUILTIN)
    assert [d.name for d in found] == list(DATASETS)[: len(found)] and found == list(DATASETS.values())[: len(found)]
    assert [a.name for a in archives] == ["emnist"] and DATASETS["emnist-letters"].archive == archives[0]
    assert fmnist.datasets.BUILTIN.stat().st_size < fmnist.datasets.REGISTRY_MAX_BYTES
    text = fmnist.datasets.BUILTIN.read_text()
    assert '"stored_md5"' in text and '"gz_' not in text and '"md5"' not in text  # field names say what they cover


def test_the_schema_is_a_valid_json_schema_holding_the_engines_idx_facts() -> None:
    jsonschema = pytest.importorskip("jsonschema")  # a dependency of fmnist's: always here
    schema = json.loads(fmnist.datasets.SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    file = schema["$defs"]["file"]["properties"]
    assert file["dtype"]["enum"] == [n for code, n, _ in fmnist._core.ELEMENT_TYPES if code is not None]
    assert file["shape"]["maxItems"] == 64 >= fmnist._core.MAX_NDIM  # numpy 2's; numpy 1's 32 is checked in Python
    # As an editor or another tool reads it (lists as lists): the built-in file's entries pass.
    builtin = json.loads(fmnist.datasets.BUILTIN.read_text())
    for entry in builtin["dataset"]:
        jsonschema.validate(entry, schema)
    for entry in builtin["archive"]:
        jsonschema.validate(entry, {**schema, "$ref": "#/$defs/archive"})


def test_a_registry_file_of_300_000_bad_values_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps(_bad_description(lambda d, ds, f: ds.update(classes=[1] * 300_000))))
    with pytest.raises(fmnist.RegistryError) as e:
        fmnist.load_registry(path)
    message = str(e.value)
    assert "classes[0]: must be a non-empty string, not int 1" in message and message.endswith(
        "and more (the first are named)"
    )
    assert message.count("classes[") == fmnist.datasets.MOST_PROBLEMS


def test_descriptions_made_in_python_pass_the_same_checks_and_every_problem_is_named(registered: None) -> None:
    ds = replace(to_python("my-digits"), aliases=())
    bad_file = replace(ds.files[0], shape=[60000, 28, 28], stored_md5="X")  # type: ignore[arg-type]  # a list, not a tuple
    with pytest.raises(fmnist.RegistryError) as e:
        fmnist.register(replace(ds, classes=("a", ""), files=(bad_file, *ds.files[1:]), transposed="no"))  # type: ignore[arg-type]
    for problem in (
        "dataset 'my-digits': ",
        "classes[1]: must be a non-empty string, not str ''",
        "files[0] ('train-images-idx3-ubyte.gz').shape: must be a list of 1 to 64 positive sizes, not list [60000",
        "files[0] ('train-images-idx3-ubyte.gz').stored_md5: must be 32 lowercase hex digits, not str 'X'",
        "transposed: must be true or false, not str 'no'",
    ):
        assert problem in str(e.value)
    deep = replace(ds.files[0], shape=(1,) * (fmnist._core.MAX_NDIM + 1))  # more than this numpy holds
    with pytest.raises(fmnist.RegistryError, match=r"files\[0\] \('train-images-idx3-ubyte.gz'\)\.shape: "):
        fmnist.register(replace(ds, files=(deep, *ds.files[1:])))
    with pytest.raises(fmnist.RegistryError, match="archive: must be an fmnist.datasets.Archive, not str 'emnist'"):
        fmnist.register(replace(ds, archive="emnist"))  # type: ignore[arg-type]
    unproven = replace(ds.files[0], stored_md5=None, stored_sha256=None, content_md5=None, content_sha256=None)
    with pytest.raises(fmnist.RegistryError, match=r"files\[0\] .*: no digest .*: nothing could verify it"):
        fmnist.register(replace(ds, files=(unproven, *ds.files[1:])))
    assert "my-digits" not in DATASETS
    assert fmnist.register(ds) is ds and DATASETS["my-digits"] is ds


def to_python(name: str) -> fmnist.Dataset:
    """Fashion-MNIST described anew under ``name``, with no folder of another loader's."""
    fm = DATASETS["fashion-mnist"]
    return replace(fm, name=name, torchvision_name="", keras_name="", debian_name="", repo_dir="", keras_npz="")


def test_registry_files_are_read_only_when_regular_and_small(tmp_path: Path) -> None:
    # A FIFO would block a plain open() until a writer came; /dev/zero would be read until
    # memory ran out; a huge file is refused after reading at most 1 MiB and a byte.
    fifo = tmp_path / "registry.toml"
    big = tmp_path / "big.json"
    big.write_bytes(b" " * ((1 << 20) + 1))
    cases = [(big, "over 1048576 bytes")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        cases += [(fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file")]
    for path, message in cases:
        with pytest.raises(fmnist.RegistryError, match=message) as e:
            fmnist.load_registry(path)
        assert str(path) in str(e.value)


def test_every_built_in_dataset_is_expressible_as_a_registry_file(tmp_path: Path) -> None:
    for ds in DATASETS.values():
        path = tmp_path / f"{ds.name}.json"
        path.write_text(json.dumps({"dataset": [fmnist.datasets.to_dict(ds)]}))
        assert fmnist.load_registry(path) == [ds]  # the same description: registering it is a no-op


def test_registry_api_misuse_is_a_clear_error(tmp_path: Path, registered: None) -> None:
    with pytest.raises(TypeError, match="a dataset name is a str, not int"):
        fmnist.datasets.get(5)  # type: ignore[arg-type]
    with pytest.raises(fmnist.RegistryError, match=r"register\(\) takes an fmnist.Dataset, not dict"):
        fmnist.register({"name": "x"})  # type: ignore[arg-type]
    base = _bad_description(lambda d, ds, f: None)
    cases = [
        ({**base, "extra": []}, "a registry holds the lists 'dataset' and \\(optionally\\) 'archive', nothing else"),
        ({**base, "archive": {"name": "x"}}, "'archive' must be a list of archive descriptions"),
        ({**base, "archive": base["archive"] * 2}, "two archives have the same name"),
        ({**base, "dataset": []}, "expected a non-empty list 'dataset'"),
    ]
    for data, message in cases:
        path = tmp_path / "r.json"
        path.write_text(json.dumps(data))
        with pytest.raises(fmnist.RegistryError, match=message) as e:
            fmnist.load_registry(path)
        assert str(path) in str(e.value)
    with pytest.raises(fmnist.RegistryError, match=r"register_archive\(\) takes an fmnist.datasets.Archive, not dict"):
        fmnist.datasets.register_archive({"name": "x"})  # type: ignore[arg-type]
    unproven = fmnist.datasets.Archive("my-zip", "a.zip", 10)
    with pytest.raises(fmnist.RegistryError, match="archive 'my-zip': no digest \\(stored_md5, stored_sha256\\)"):
        fmnist.datasets.register_archive(unproven)
    taken = fmnist.datasets.Archive("fashion-mnist", "a.zip", 10, stored_md5="0" * 32)
    with pytest.raises(
        fmnist.RegistryError, match="its folder name is taken by the registered dataset 'fashion-mnist'"
    ):
        fmnist.datasets.register_archive(taken)


def test_a_dataset_users_define_loads_downloads_and_caches_like_the_built_ins(
    env: Path, tmp_path: Path, registered: None
) -> None:
    with Server({}) as server:
        path, blobs, arrays = _my_digits(tmp_path, server)
        server.files.update(blobs)
        (ds,) = fmnist.load_registry(path)
        assert ds.name == "my-digits" and fmnist.DATASETS["my-digits"] is ds
        (x, y), (xt, yt) = fmnist.load_data("my-digits")  # downloaded from the registry's mirror
        assert np.array_equal(x, arrays["digits-train-images.gz"]) and np.array_equal(
            yt, arrays["digits-test-labels.gz"]
        )
        assert sorted(p.name for p in (env / "my-digits").glob("*.gz")) == sorted(blobs)
    # Warm (the server is gone): mapped from the cache.
    x2, _ = fmnist.load("my-digits", "train")
    assert np.array_equal(x2, x) and not x2.flags.owndata
    # Registering it again is a no-op; a different description under its name is refused.
    fmnist.load_registry(path)
    with pytest.raises(fmnist.RegistryError, match="already names the registered dataset 'my-digits'"):
        fmnist.register(replace(ds, title="other"))
