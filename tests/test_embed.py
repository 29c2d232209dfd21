"""The seed's pictures (``fmnist.embed``, ``fmnist embed``, ``fmnist projector``) on the real
Fashion-MNIST and a second dataset the tests register: shapes, determinism by the seed, the
cache, the legend's labels and colours read from the figure's objects, the GIF's frames, and
the projector's files as TensorBoard itself reads them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmnist
from fmnist import embedding

from .conftest import FLIPPED, free_port
from .test_cli import png_size
from .test_cli import run as cli


def test_each_method_gives_2d_points_reproducible_by_the_seed(data: dict[str, str]) -> None:
    (pca,) = fmnist.embed("fashion-mnist", method="pca", cache=False)
    assert pca.coords.shape == (10_000, 2) and pca.coords.dtype == np.float32 and np.isfinite(pca.coords).all()
    assert pca.labels.shape == (10_000,) and pca.classes[0] == "T-shirt/top"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("tsne", {"n_iter": 100, "early_exaggeration_iter": 50}),
        ("umap", {"n_neighbors": 10}),
    ]
    for method, params in cases:
        a, b = (fmnist.embed("fashion-mnist", method=method, limit=1200, cache=False, **params)[0] for _ in "ab")
        assert a.coords.shape == (1200, 2) and np.array_equal(a.coords, b.coords), method  # the same seed
        (c,) = fmnist.embed("fashion-mnist", method=method, limit=1200, cache=False, seed=1, **params)
        assert not np.array_equal(a.coords, c.coords), method  # another seed
        assert a.params == {**embedding.DEFAULTS[method], **params}
    # The embedding separates what is easy to separate: trousers (1) from bags (8), in the PCA.
    centre = [pca.coords[pca.labels == k].mean(axis=0) for k in range(10)]
    spread = np.mean([pca.coords[pca.labels == k].std(axis=0).mean() for k in range(10)])
    assert np.linalg.norm(centre[1] - centre[8]) > spread
    with pytest.raises(ValueError, match="unknown method 'lda'"):
        fmnist.embed("fashion-mnist", method="lda")
    with pytest.raises(ValueError, match=r"tsne has no parameter n_neighbors \(its parameters: perplexity"):
        fmnist.embed("fashion-mnist", method="tsne", n_neighbors=5)
    with pytest.raises(ValueError, match="only t-SNE is animated"):
        fmnist.embed("fashion-mnist", method="pca", animate_every=10)


def test_embeddings_are_computed_once_and_kept_under_the_data_root(data: dict[str, str]) -> None:
    (first,) = fmnist.embed("fashion-mnist", method="umap", limit=800)
    assert not first.cached and first.path is not None and first.path.is_file()
    assert first.path.parent == Path(data["FMNIST_HOME"]) / "embeddings" / "fashion-mnist"
    written = first.path.stat()
    (again,) = fmnist.embed("fashion-mnist", method="umap", limit=800)
    assert again.cached and again.path == first.path and np.array_equal(again.coords, first.coords)
    assert again.seconds == pytest.approx(first.seconds)  # the figure recorded with the coordinates
    assert (first.path.stat().st_ino, first.path.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    # Another parameter, seed or size is another embedding; cache=False leaves the cache be.
    (other,) = fmnist.embed("fashion-mnist", method="umap", limit=800, n_neighbors=5)
    assert not other.cached and other.path != first.path
    assert not fmnist.embed("fashion-mnist", method="umap", limit=800, seed=2)[0].cached
    assert not fmnist.embed("fashion-mnist", method="umap", limit=700)[0].cached
    files = sorted(first.path.parent.iterdir())
    assert not fmnist.embed("fashion-mnist", method="umap", limit=800, cache=False)[0].cached
    assert sorted(first.path.parent.iterdir()) == files and all(not f.name.startswith(".") for f in files)
    # A cache file cut short is computed again and replaced whole.
    first.path.write_bytes(first.path.read_bytes()[:100])
    (mended,) = fmnist.embed("fashion-mnist", method="umap", limit=800)
    assert not mended.cached and np.array_equal(mended.coords, first.coords)
    assert fmnist.embed("fashion-mnist", method="umap", limit=800)[0].cached


def _rgba(colour: Any) -> tuple[float, ...]:
    return tuple(round(float(c), 4) for c in np.ravel(colour)[:4])


def test_the_cache_serves_only_what_it_proves(data: dict[str, str]) -> None:
    # Other coordinates of the right shape (the digest recorded beside them no longer matches)
    # and a header claiming 2**40 float64 (more than the file holds: refused before allocating)
    # are computed again and replaced, never served.
    import io
    import zipfile

    (first,) = fmnist.embed("fashion-mnist", method="pca", limit=500)
    assert first.path is not None
    with np.load(first.path) as saved:
        arrays = {k: saved[k] for k in saved.files}
    other = io.BytesIO()
    np.savez(other, **{**arrays, "coords": arrays["coords"][::-1].copy()})
    first.path.write_bytes(other.getvalue())
    (again,) = fmnist.embed("fashion-mnist", method="pca", limit=500)
    assert not again.cached and np.array_equal(again.coords, first.coords)
    assert fmnist.embed("fashion-mnist", method="pca", limit=500)[0].cached  # the replaced file proves itself
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    npy = b"\x93NUMPY\x01\x00" + len(header + " " * (118 - len(header)) + "\n").to_bytes(2, "little")
    npy += (header + " " * (118 - len(header)) + "\n").encode()
    with zipfile.ZipFile(first.path, "w") as z:
        for name in ("coords", "seconds", "sha256"):
            z.writestr(name + ".npy", npy)
    (third,) = fmnist.embed("fashion-mnist", method="pca", limit=500)
    assert not third.cached and np.array_equal(third.coords, first.coords)


def test_every_dataset_is_had_before_anything_is_computed(tmp_path: Path, data: dict[str, str]) -> None:
    # Fashion-MNIST here, and a second dataset nowhere (its one mirror refuses connections): the
    # command fails before computing anything, naming the dataset it cannot have; no embedding
    # of Fashion-MNIST was computed (none is cached).
    desc = fmnist.datasets.to_dict(fmnist.datasets.FASHION_MNIST)
    desc.update(name="nowhere", aliases=[], mirrors=["http://127.0.0.1:1/"], torchvision_name="", keras_name="",
                debian_name="", repo_dir="")  # fmt: skip
    registry = tmp_path / "nowhere.json"
    registry.write_text(json.dumps({"dataset": [desc]}))
    env = {**data, "FMNIST_HOME": str(tmp_path / "root")}
    args = ("--registry", str(registry), "embed", "--datasets", "fashion-mnist,nowhere", "--method", "pca")
    out = cli(*args, "--out", str(tmp_path / "e.png"), env=env, cwd=tmp_path)
    assert out.returncode == 1 and "fmnist embed: nowhere: its test split cannot be had: " in out.stderr, out.stderr
    assert not (tmp_path / "root" / "embeddings").exists() and not (tmp_path / "e.png").exists()


def test_side_by_side_with_a_legend_of_the_class_names_in_the_same_colours(data: dict[str, str]) -> None:
    found = fmnist.embed(["fashion-mnist", FLIPPED], method="pca")
    assert [e.dataset for e in found] == ["fashion-mnist", FLIPPED] and [len(e.labels) for e in found] == [10_000, 1000]
    fig = embedding.figure(found)
    axes = fig.axes
    assert len(axes) == 2
    classes = list(fmnist.DATASETS["fashion-mnist"].classes)
    palette = []
    for ax, e in zip(axes, found):
        assert ax.get_title() == f"{e.dataset} test: PCA\nseed 0"
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == classes
        assert legend.get_title().get_text() == f"{len(e.labels):,} images"
        handles = [_rgba(h.get_facecolor()) for h in legend.legend_handles]
        points = [_rgba(c.get_facecolor()) for c in ax.collections]
        assert handles == points and len(set(points)) == 10  # one colour a class, the legend's own
        for k, c in enumerate(ax.collections):  # each class's points are its examples
            assert len(c.get_offsets()) == int((e.labels == k).sum())
        palette.append(points)
    assert palette[0] == palette[1]  # the same class, the same colour, in both panels
    (tsne,) = fmnist.embed("fashion-mnist", method="tsne", limit=500, n_iter=50, early_exaggeration_iter=25)
    title = embedding.figure([tsne]).axes[0].get_title()
    assert title == "fashion-mnist test: t-SNE\nperplexity=30.0, n_iter=50, early_exaggeration_iter=25, seed 0"
    with_thumbs = embedding.figure(found[:1], thumbnails=True)
    boxes = [a for a in with_thumbs.axes[0].artists if type(a).__name__ == "AnnotationBbox"]
    assert 20 < len(boxes) <= 13 * 13


def test_the_command_writes_png_and_svg_and_says_what_it_did(tmp_path: Path, data: dict[str, str]) -> None:
    out = cli("embed", "--datasets", f"fashion-mnist,{FLIPPED}", "--method", "pca", "--out", str(tmp_path / "e.png"),
              env=data, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "fashion-mnist test: pca of 10,000 images computed" in out.stdout
    assert f"{FLIPPED} test: pca of 1,000 images computed" in out.stdout
    width, height = png_size(tmp_path / "e.png", colour=6)
    assert (width, height) == (1672, 726)
    again = cli("embed", "--datasets", "fashion-mnist", "--method", "pca", "--out", str(tmp_path / "e.svg"),
                "--thumbnails", env=data, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "from the cache" in again.stdout, again.stderr
    svg = (tmp_path / "e.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and "Ankle boot" in svg and "<image" in svg
    for args, says in (
        (["--out", "e.jpg"], "the picture is PNG or SVG"),
        (["--method", "pca", "--animate", "a.gif"], "--animate records t-SNE's optimisation"),
        (["--datasets", "nope"], "unknown dataset 'nope'"),
        (["--method", "lda"], "invalid choice: 'lda'"),
    ):
        bad = cli("embed", *args, env=data, cwd=tmp_path)
        assert bad.returncode in (1, 2) and says in bad.stderr, (args, bad.stderr)


def test_the_animation_records_the_tsne_optimisation(tmp_path: Path, data: dict[str, str]) -> None:
    from PIL import Image

    out = cli("embed", "--datasets", "fashion-mnist", "--limit", "1000", "--out", str(tmp_path / "t.png"),
              "--animate", str(tmp_path / "t.gif"), "--every", "50", env=data, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "wrote " + str(tmp_path / "t.gif") + ": 15 frames, every 50 iterations" in out.stdout  # (250 + 500) / 50
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 15 and gif.size == (480, 480)
        assert gif.info["loop"] == 0
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:]))  # the points move every frame
    (moving,) = fmnist.embed("fashion-mnist", method="tsne", limit=1000, cache=False, animate_every=50)
    (still,) = fmnist.embed("fashion-mnist", method="tsne", limit=1000, cache=False)
    assert len(moving.frames) == 15  # the last frame is the result (openTSNE's callbacks move it a hair)
    assert np.abs(moving.frames[-1] - still.coords).max() < 0.01 * np.ptp(still.coords)
    assert np.abs(moving.frames[0] - still.coords).max() > 0.1 * np.ptp(still.coords)


def test_the_projector_files_as_tensorboard_reads_them(tmp_path: Path, data: dict[str, str]) -> None:
    folder = tmp_path / "projector"
    out = cli("projector", str(folder), env=data, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "Xtest.tsv",
        "Ytest.tsv",
        "projector_config.pbtxt",
        "sprite.png",
    ]
    images, labels = fmnist.load("fashion-mnist", "test")
    classes = fmnist.DATASETS["fashion-mnist"].classes
    assert (folder / "Ytest.tsv").read_text().splitlines() == [classes[k] for k in labels]
    assert np.array_equal(np.loadtxt(folder / "Xtest.tsv", dtype=np.uint8, max_rows=3), images[:3].reshape(3, -1))
    assert png_size(folder / "sprite.png") == (2800, 2800)  # 100 x 100 images of 28 x 28
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/data/plugin/projector"

    def get(path: str) -> bytes:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return bytes(r.read())

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                runs = json.loads(get("/runs"))
                break
            except OSError:
                assert board.poll() is None and time.monotonic() < deadline, board.stderr.read().decode()  # type: ignore[union-attr]
                time.sleep(0.5)
        assert runs == ["."]
        (info,) = json.loads(get("/info?run=."))["embeddings"]
        assert info["tensorName"] == "fashion-mnist test" and info["tensorShape"] == [10000, 784]
        assert info["sprite"] == {"imagePath": "sprite.png", "singleImageDim": [28, 28]}
        name = "fashion-mnist%20test"
        assert get(f"/metadata?run=.&name={name}&num_rows=5").decode().splitlines() == [classes[k] for k in labels[:5]]
        tensor = np.frombuffer(get(f"/tensor?run=.&name={name}&num_rows=2"), dtype="<f4").reshape(2, 784)
        assert np.array_equal(tensor, images[:2].reshape(2, -1).astype(np.float32))
        sprite = get(f"/sprite_image?run=.&name={name}")
        assert sprite == (folder / "sprite.png").read_bytes()
    finally:
        board.terminate()
        board.wait(30)


def test_bad_arguments_are_clear_errors(tmp_path: Path, data: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="no dataset to embed"):
        fmnist.embed([])
    with pytest.raises(ValueError, match="limit must be at least 2 examples, not 1"):
        fmnist.embed("fashion-mnist", limit=1)
    (pca,) = fmnist.embed("fashion-mnist", method="pca", limit=100)
    with pytest.raises(ValueError, match=r"x\.jpg: the picture is PNG or SVG"):
        embedding.draw([pca], tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="no frames: embed with method='tsne' and animate_every > 0"):
        embedding.animate(pca, tmp_path / "a.gif")
    assert not list(tmp_path.glob("*.jpg")) and not list(tmp_path.glob("*.gif"))
