"""The seed's pictures: a split embedded in 2-D (PCA, t-SNE, UMAP), datasets side by side, an
animation of the t-SNE optimisation, and the files of TensorBoard's projector
(``pip install 'fmnist[viz]'``: scikit-learn, openTSNE, umap-learn, matplotlib).

Embeddings are computed once: saved under the data root (``embeddings/``) keyed by the dataset,
split, method, its parameters, the seed, the libraries' versions and the data's own digest, so
drawing again is instant and ``seed`` makes them reproducible.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import idx
from .png import encode_png

METHODS = ("pca", "tsne", "umap")

#: Each method's parameters and their defaults (openTSNE's and umap-learn's own defaults).
DEFAULTS: dict[str, dict[str, Any]] = {
    "pca": {},
    "tsne": {"perplexity": 30.0, "n_iter": 500, "early_exaggeration_iter": 250},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
}

EXTRA = "fmnist embed needs scikit-learn, openTSNE, umap-learn and matplotlib: pip install 'fmnist[viz]'"


@dataclass(frozen=True)
class Embedding:
    """One split of one dataset in 2-D."""

    dataset: str
    split: str
    method: str
    params: dict[str, Any]  #: every parameter, defaults included
    seed: int
    coords: npt.NDArray[np.float32] = field(repr=False)  #: (N, 2)
    labels: npt.NDArray[Any] = field(repr=False)  #: (N,)
    classes: tuple[str, ...]
    versions: dict[str, str]
    seconds: float  #: to compute it (when it was computed; the cached figure otherwise)
    cached: bool  #: read from the cache rather than computed now
    path: Path | None = None  #: its cache file
    frames: list[npt.NDArray[np.float32]] = field(default_factory=list, repr=False)  #: t-SNE's, with animate
    every: int = 0  #: the iterations between frames
    root: Any = field(default=None, repr=False)  #: the data root its images came from (for thumbnails)

    @property
    def title(self) -> str:
        """Two lines: the dataset, split and method; the parameters and the seed."""
        method = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[self.method]
        shown = [f"{k}={v}" for k, v in self.params.items()] + [f"seed {self.seed}"]
        return f"{self.dataset} {self.split}: {method}\n{', '.join(shown)}"


def _versions(method: str) -> dict[str, str]:
    import sklearn

    from . import __version__

    found = {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "fmnist": __version__}
    if method == "tsne":
        import openTSNE

        found["openTSNE"] = openTSNE.__version__
    elif method == "umap":
        import umap

        found["umap-learn"] = umap.__version__
    return found


def _check(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
    unknown = sorted(set(params) - set(DEFAULTS[method]))
    if unknown:
        known = ", ".join(DEFAULTS[method]) or "none"
        raise ValueError(f"{method} has no parameter {', '.join(unknown)} (its parameters: {known})")
    return {**DEFAULTS[method], **params}


def _compute(
    x: npt.NDArray[np.float32], method: str, params: dict[str, Any], seed: int, every: int
) -> tuple[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
    frames: list[npt.NDArray[np.float32]] = []
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32), frames
    if method == "tsne":
        from openTSNE import TSNE

        def keep(iteration: int, error: float, embedding: Any) -> None:
            frames.append(np.array(embedding, dtype=np.float32))

        tsne = TSNE(
            n_components=2,
            random_state=seed,
            n_jobs=1,  # openTSNE's result depends on its thread count; one makes the seed enough
            callbacks=keep if every else None,
            callbacks_every_iters=every or 50,
            **params,
        )
        return np.asarray(tsne.fit(x), dtype=np.float32), frames
    import umap

    # A seeded UMAP runs on one thread (umap-learn's rule); n_jobs=1 says so rather than warning.
    model = umap.UMAP(n_components=2, random_state=seed, n_jobs=1, **params)
    return model.fit_transform(x).astype(np.float32), frames


def embed(
    datasets: str | Sequence[str] = ("fashion-mnist", "mnist"),
    split: str = "test",
    method: str = "pca",
    *,
    seed: int = 0,
    root: Any = None,
    cache: bool = True,
    limit: int | None = None,
    animate_every: int = 0,
    **params: Any,
) -> list[Embedding]:
    """Each dataset's ``split`` embedded in 2-D by ``method`` (``pca``, ``tsne``, ``umap``, with
    ``params``: ``perplexity``, ``n_iter``, ``early_exaggeration_iter`` for t-SNE;
    ``n_neighbors``, ``min_dist`` for UMAP), seeded by ``seed``. ``limit``: the first N examples
    only. From the cache under the data root when it holds the same embedding (``cache=False``
    neither reads nor writes it). ``animate_every``: keep t-SNE's embedding every so many
    iterations in ``frames`` (computed anew, for ``animate``)."""
    from .datasets import get
    from .resolve import data_root

    names = [datasets] if isinstance(datasets, str) else list(datasets)
    if not names:
        raise ValueError("no dataset to embed")
    full = _check(method, params)
    if animate_every and method != "tsne":
        raise ValueError(f"only t-SNE is animated, not {method}")
    if limit is not None and limit < 2:
        raise ValueError(f"limit must be at least 2 examples, not {limit}")
    # Every dataset is had first (its warm cache mapped, or found, verified, downloaded): a missing
    # one fails now, naming itself, not after minutes spent on the others.
    loaded = [(ds, *_had(ds.name, split, root)) for ds in (get(n) for n in names)]
    out = []
    for ds, images, labels in loaded:
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        versions = _versions(method)
        digest = hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()
        key = json.dumps([ds.name, split, method, full, seed, versions, digest, len(labels)], sort_keys=True)
        folder = data_root(root) / "embeddings" / ds.name
        path = folder / f"{split}-{method}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        saved = _cached(path, len(labels)) if cache and not animate_every else None
        if saved is not None:
            coords, seconds = saved
            out.append(Embedding(ds.name, split, method, full, seed, coords, labels, ds.classes,
                                 versions, seconds, True, path, root=root))  # fmt: skip
            continue
        x = images.reshape(len(images), -1).astype(np.float32)
        x /= 255
        t = time.perf_counter()
        coords, frames = _compute(x, method, full, seed, animate_every)
        coords, seconds = np.ascontiguousarray(coords, dtype=np.float32), time.perf_counter() - t
        if cache:
            sha = np.frombuffer(hashlib.sha256(np.ascontiguousarray(coords).data).digest(), np.uint8)
            _save(path, coords=coords, seconds=np.float64(seconds), sha256=sha)
        out.append(Embedding(ds.name, split, method, full, seed, coords, labels, ds.classes, versions, seconds,
                             False, path if cache else None, frames, animate_every, root))  # fmt: skip
    return out


def _had(name: str, split: str, root: Any) -> tuple[Any, Any]:
    """A dataset's split, or an error that names the dataset (a download's names only files)."""
    from .loaders import load
    from .resolve import DatasetNotFoundError

    try:
        return load(name, split, root=root)
    except OSError as e:
        if isinstance(e, DatasetNotFoundError) and str(e).startswith(f"{name}:"):
            raise
        raise DatasetNotFoundError(f"{name}: its {split} split cannot be had: {e}") from e


#: What a cache file holds: each array's shape (-1: the examples) and dtype.
_SAVED: dict[str, tuple[tuple[int, ...], str]] = {
    "coords": ((-1, 2), "<f4"),
    "seconds": ((), "<f8"),
    "sha256": ((32,), "|u1"),
}


def _cached(path: Path, n: int) -> tuple[Any, float] | None:
    """The coordinates and the seconds they took, from the cache file at ``path`` when it proves
    them: each array's header is the one expected (shape, dtype) before a byte of it is read, so
    no header can make it allocate what the file does not hold, and the coordinates' SHA-256 is
    the one recorded beside them. None for anything else (missing, cut short, changed): computed
    again and replaced. No pickle is ever read."""
    fmt = np.lib.format
    try:
        if not path.is_file() or path.stat().st_size > n * 8 + (1 << 16):
            return None
        arrays = {}
        with zipfile.ZipFile(path) as z:
            for name, (shape, dtype) in _SAVED.items():
                want = tuple(n if d == -1 else d for d in shape)
                with z.open(name + ".npy") as f:
                    version = fmt.read_magic(f)
                    header = fmt.read_array_header_1_0(f) if version == (1, 0) else fmt.read_array_header_2_0(f)
                    if header != (want, False, np.dtype(dtype)):
                        return None
                    size = math.prod(want) * np.dtype(dtype).itemsize
                    raw = f.read(size + 1)
                if len(raw) != size:
                    return None
                arrays[name] = np.frombuffer(raw, dtype).reshape(want)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    coords = arrays["coords"].copy()
    if hashlib.sha256(coords.data).digest() != arrays["sha256"].tobytes():
        return None
    return coords, float(arrays["seconds"])


def _save(path: Path, **arrays: Any) -> None:
    import io

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    idx.write(Path(path), [buffer.getvalue()])


# --- pictures -----------------------------------------------------------------------------------


def figure(embeddings: Sequence[Embedding], *, thumbnails: bool = False, size: float = 6.0) -> Any:
    """The embeddings side by side, one colour per class (the same class, the same colour, in
    every panel), a legend of the class names in each, titled with the dataset, method and
    parameters; optionally thumbnails of images over their points. A matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(embeddings), figsize=((size + 1.6) * len(embeddings), size + 0.6), squeeze=False, layout="constrained"
    )
    for ax, e in zip(axes[0], embeddings):
        colours = _colours(len(e.classes))
        for k, name in enumerate(e.classes):
            mine = e.labels == k
            ax.scatter(e.coords[mine, 0], e.coords[mine, 1], s=2, color=colours[k], label=name, rasterized=True)
        if thumbnails:
            _thumbnails(ax, e)
        ax.set_title(e.title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        # Beside the panel, not over it: no point is hidden behind the legend.
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, markerscale=4, frameon=False)
        legend.set_title(f"{len(e.labels):,} images", prop={"size": 8})
    return fig


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n)]


def _thumbnails(ax: Any, e: Embedding, cells: int = 13) -> None:
    """One image per occupied cell of a cells x cells grid over the embedding: the example nearest
    the cell's centre, drawn over the points."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from .loaders import load

    images, _ = load(e.dataset, e.split, root=e.root)
    lo, hi = e.coords.min(axis=0), e.coords.max(axis=0)
    cell = np.floor((e.coords - lo) / np.maximum(hi - lo, 1e-9) * (cells - 1e-9)).astype(int)
    centre = lo + (cell + 0.5) * (hi - lo) / cells
    distance = np.linalg.norm(e.coords - centre, axis=1)
    order = np.lexsort((distance, cell[:, 1], cell[:, 0]))
    first = np.ones(len(order), bool)
    first[1:] = np.any(np.diff(cell[order], axis=0) != 0, axis=1)
    for i in order[first]:
        box = OffsetImage(255 - images[i], cmap="gray", zoom=0.55)
        ax.add_artist(AnnotationBbox(box, e.coords[i], frameon=False, pad=0))


def draw(embeddings: Sequence[Embedding], out: Path | str, *, thumbnails: bool = False) -> Path:
    """``figure(...)`` saved as PNG or SVG (by ``out``'s suffix)."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"{out}: the picture is PNG or SVG; name it .png or .svg")
    import matplotlib.pyplot as plt

    fig = figure(embeddings, thumbnails=thumbnails)
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


def animate(e: Embedding, out: Path | str, *, size: int = 480, duration_ms: int = 120) -> Path:
    """The t-SNE optimisation of ``e`` (its ``frames``) as a looping GIF, as the seed's
    animated embedding: one frame per recorded iteration, the last held."""
    import matplotlib.pyplot as plt
    from PIL import Image

    if not e.frames:
        raise ValueError("no frames: embed with method='tsne' and animate_every > 0")
    out = Path(out)
    colours = np.array(_colours(len(e.classes)))[e.labels.astype(int)]
    pictures = []
    for n, frame in enumerate(e.frames):
        fig = plt.figure(figsize=(size / 80, size / 80), dpi=80)
        ax = fig.add_axes((0, 0, 1, 0.93))
        ax.scatter(frame[:, 0], frame[:, 1], s=1, c=colours)
        ax.set_axis_off()
        fig.suptitle(f"{e.dataset} {e.split}: t-SNE, iteration {(n + 1) * e.every}", fontsize=9)
        fig.canvas.draw()
        pictures.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).quantize(64))
        plt.close(fig)
    durations = [duration_ms] * (len(pictures) - 1) + [duration_ms * 10]
    pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return out


# --- TensorBoard's projector --------------------------------------------------------------------


def projector(folder: Path | str, dataset: str = "fashion-mnist", split: str = "test", *, root: Any = None) -> Path:
    """What the seed's ``visualization/project_zalando.py`` wrote for TensorBoard's projector,
    into ``folder``: the images as a tensor (``Xtest.tsv``, one row of pixels per example), the
    class names (``Ytest.tsv``), the sprite (every example at 28x28 in order, inverted as the
    seed's, ``sprite.png``) and ``projector_config.pbtxt``, all paths relative to ``folder``
    (``tensorboard --logdir folder``). Returns the config's path."""
    from .datasets import get
    from .loaders import load

    ds = get(dataset)
    images, labels = load(ds.name, split, root=root)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape[:3]
    side = int(np.ceil(np.sqrt(n)))
    grid = np.full((side * h, side * w), 255, np.uint8)  # unused cells: white
    for i in range(n):
        r, c = divmod(i, side)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = 255 - images[i]
    tensor = ds.name + " " + split
    files = {
        "Xtest.tsv": "".join("\t".join(map(str, row)) + "\n" for row in images.reshape(n, -1).tolist()).encode(),
        "Ytest.tsv": "".join(ds.classes[int(k)] + "\n" for k in labels).encode(),
        "sprite.png": encode_png(grid),
        "projector_config.pbtxt": (
            "embeddings {\n"
            f'  tensor_name: "{tensor}"\n'
            '  tensor_path: "Xtest.tsv"\n'
            '  metadata_path: "Ytest.tsv"\n'
            "  sprite {\n"
            '    image_path: "sprite.png"\n'
            f"    single_image_dim: {w}\n"
            f"    single_image_dim: {h}\n"
            "  }\n"
            "}\n"
        ).encode(),
    }
    for name, blob in files.items():
        idx.write(folder / name, [blob])
    return folder / "projector_config.pbtxt"
