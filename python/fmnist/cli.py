"""fmnist: Fashion-MNIST and any IDX dataset, fast and verified.

Exit codes: 0 success, 1 failure (data missing, corrupt or not downloadable), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import datasets, reference
from ._core import __version__
from .benchmark import cli as benchmark_cli
from .idx import read_idx, read_idx_many, write_idx, write_path
from .loaders import download, load, split_files
from .png import encode_png, sprite
from .resolve import Audit, DatasetNotFoundError, DownloadError, Policy, Source, data_root, default_root, resolve
from .sample import load_sample
from .splits import parse

# What a command reports as a failure (exit 1, one line): missing or bad data, failed downloads
# (OSError subclasses), malformed files and mismatched digests (ValueError subclasses), an array
# IDX cannot hold (TypeError), a file too large for memory, an extra not installed (ImportError).
FAILURES = (OSError, ValueError, TypeError, MemoryError, ImportError)


@contextlib.contextmanager
def _downloads_shown() -> Iterator[None]:
    """While a command may download: each mirror and attempt it waits on, and why one failed,
    on stderr as it happens (the ``fmnist.download`` logger), so a stalled mirror is no silence."""
    logger = logging.getLogger("fmnist.download")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fmnist: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _counts(labels: Any, classes: Sequence[str]) -> str:
    counts = np.bincount(labels, minlength=len(classes))
    return ", ".join(f"{c}={n}" for c, n in zip(classes, counts))


def cmd_info(args: argparse.Namespace) -> int:
    """Where each file is, proven now (the warm cache hashed, not trusted on its stamp)."""
    ds = datasets.get(args.dataset)
    print(f"{ds.title} ({ds.name}): {ds.homepage}")
    print(f"data root: {data_root(args.root)}  (cache {'on' if Policy().caching else 'off'})")
    found = resolve(ds, ds.files, Policy(root=args.root, audit=Audit()))
    failed = [j for j in found.judgments if j.source == Source.WARM_CACHE and not j.ok]
    for info in ds.files:
        got = found.files.get(info.name)
        for j in failed:
            if j.info.name == info.name:
                print(f"  {info.name}: warm cache {j.path} FAILED: {j.message}; the next load replaces it")
        if got is None:
            print(f"  {info.name}: NOT FOUND" + "".join(f"\n      rejected {j}" for j in found.rejected(info)))
            continue
        size = os.path.getsize(got.path)
        print(f"  {info.name}: {got.where} ({size:,} bytes) [{got.source}; verified by {got.proof}: {got.message}]")
        array = got.array
        counts = ""
        if info.kind == "labels":
            counts = f"; per class: {_counts(array if array.ndim == 1 else array[:, 0], ds.classes)}"
        print(f"      {array.shape} {array.dtype}{counts}")
    if found.missing:
        print(f"{len(found.missing)} file(s) missing: `fmnist download {ds.name}` fetches them", file=sys.stderr)
    if failed:
        print(f"{len(failed)} warm cache file(s) failed verification", file=sys.stderr)
    return 1 if found.missing or failed else 0


def cmd_download(args: argparse.Namespace) -> int:
    with _downloads_shown():
        folder = download(
            args.dataset, root=args.root, mirrors=args.mirror or None, timeout=args.timeout, splits=args.split
        )
    ds = datasets.get(args.dataset)
    wanted = None if args.split is None else {f.name for s in args.split for f in split_files(ds, s)}
    names = [info.name for info in ds.files if wanted is None or info.name in wanted]
    for name in [ds.archive.file] if ds.archive else names:
        print(folder / name)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Judges every copy found, the warm cache hashed too (an archive: each member read out of it);
    exit 1 if any copy fails or a file has none. A failing warm cache file is replaced by the
    next load."""
    ds = datasets.get(args.dataset)
    policy = Policy(root=args.root, audit=Audit(every_copy=True))
    found = resolve(ds, ds.files, policy)
    failures = 0
    for info in ds.files:
        judged = [j for j in found.judgments if j.info.name == info.name]
        if not judged:
            failures += 1
            print(f"{info.name}: MISSING (no copy found)")
        for j in judged:
            failures += not j.ok
            where = f"{j.path}:{j.member}" if j.member else str(j.path)
            print(
                f"{info.name}: {where} [{j.source}]: "
                + (f"OK ({j.proof}: {j.message})" if j.ok else f"FAILED: {j.message}")
            )
    if any(i.name not in found.files for i in ds.files):
        root = f" --root {args.root}" if args.root else ""
        print(
            f"to get the files missing or failing: fmnist download {ds.name}{root} (or point FMNIST_SEARCH_PATH at a"
            " folder holding them)"
        )
    return 1 if failures else 0


SAMPLE_OF = "fashion-mnist"  # the dataset the bundled sample comes from


def _dataset_or_sample(args: argparse.Namespace, split: str) -> tuple[Any, Any, str]:
    """(images, labels, description) of the full split if it is on the machine, else (for
    Fashion-MNIST only) the bundled sample."""
    if not getattr(args, "sample", False):
        try:
            images, labels = load(args.dataset, split, root=args.root, download=False)
            return images, labels, f"{args.dataset} {split} split"
        except DatasetNotFoundError:
            if args.dataset != SAMPLE_OF:
                raise
    elif args.dataset != SAMPLE_OF:
        raise ValueError(f"the bundled sample is of {SAMPLE_OF}, not {args.dataset}")
    images, labels = load_sample()
    return images, labels, "the bundled sample (100 test images per class)"


def cmd_sprite(args: argparse.Namespace) -> int:
    images, labels, what = _dataset_or_sample(args, args.split)
    ds = datasets.get(args.dataset)
    canvas = sprite(images, labels, classes=len(ds.classes), rows_per_class=3, columns=args.columns)
    Path(args.output).write_bytes(encode_png(canvas))
    print(f"wrote {args.output}: {canvas.shape[1]}x{canvas.shape[0]} PNG from {what}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    src, dst = str(args.source), str(args.dest)
    if src.endswith(".npy") == dst.endswith(".npy"):
        raise ValueError("convert goes between IDX and .npy: exactly one of SOURCE and DEST must end in .npy")
    if dst.endswith(".npy"):
        array, buffer = read_idx(src), io.BytesIO()
        np.save(buffer, array)
        write_path(Path(dst), buffer.getvalue())  # the same rule as write_idx's
    else:
        array = np.load(src, allow_pickle=False)
        write_idx(dst, array, compress="xz" if dst.endswith(".xz") else dst.endswith(".gz"))
    print(f"{src} -> {dst}: {array.shape} {array.dtype}")
    return 0


def _viz() -> Any:
    """The embedding module, or the one line that says what to install."""
    from . import embedding

    missing = [m for m in ("sklearn", "openTSNE", "umap", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{embedding.EXTRA} ({', '.join(missing)} not installed)")
    return embedding


def cmd_embed(args: argparse.Namespace) -> int:
    embedding = _viz()
    params = {k: v for k, v in (("perplexity", args.perplexity), ("n_neighbors", args.n_neighbors)) if v is not None}
    if args.animate and args.method != "tsne":
        raise ValueError(f"--animate records t-SNE's optimisation: use it with --method tsne, not {args.method}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--out {out}: the picture is PNG or SVG; name it .png or .svg")
    with _downloads_shown():
        found = embedding.embed(
            args.datasets, args.split, args.method, seed=args.seed, root=args.root, cache=not args.no_cache,
            limit=args.limit, **params,
        )  # fmt: skip
        for e in found:
            how = "from the cache" if e.cached else "computed"
            print(
                f"{e.dataset} {e.split}: {args.method} of {len(e.labels):,} images {how} ({e.seconds:.1f} s to compute)"
            )
        embedding.draw(found, out, thumbnails=args.thumbnails)
        print(f"wrote {out}")
        if args.animate:
            (moving,) = embedding.embed(
                args.datasets[0], args.split, "tsne", seed=args.seed, root=args.root, cache=False, limit=args.limit,
                animate_every=args.every, **params,
            )  # fmt: skip
            embedding.animate(moving, args.animate)
            print(f"wrote {args.animate}: {len(moving.frames)} frames, every {args.every} iterations")
    return 0


def cmd_projector(args: argparse.Namespace) -> int:
    from . import embedding

    with _downloads_shown():
        config = embedding.projector(args.folder, args.dataset, args.split, root=args.root)
    print(
        f"wrote {config.parent}: Xtest.tsv, Ytest.tsv, sprite.png, {config.name} (tensorboard --logdir {config.parent})"
    )
    return 0


def _median_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def cmd_bench(args: argparse.Namespace) -> int:
    ds = datasets.get(args.dataset)
    found = resolve(ds, ds.files, Policy(root=args.root, audit=Audit()))
    # What a load reads: the warm cache's files when all are there (verified now), else the
    # copies found. A member of an archive has no file of its own to time.
    provenance = [found.files[i.name] for i in ds.files if i.name in found.files]
    paths = [p.path for p in provenance if not p.member]
    where = ", ".join(sorted({f"{p.path.parent} ({p.source})" for p in provenance}))
    if len(paths) != len(ds.files):
        print(
            f"{ds.name}: the full dataset is not on this machine as IDX files (`fmnist info {ds.name}` says "
            "where it looked): timing the bundled sample files",
            file=sys.stderr,
        )
        sample_dir = Path(__file__).parent / "sample"
        paths = sorted(sample_dir.glob("*.gz"))
        where = f"the bundled sample in {sample_dir}"
    print(f"{ds.name} from {where}")
    nbytes = sum(a.nbytes for a in read_idx_many(paths))
    rows = [
        ("fmnist.read_idx_many", lambda: read_idx_many(paths)),
        ("fmnist.read_idx, one by one", lambda: [read_idx(p) for p in paths]),
        ("fmnist.reference (pure Python)", lambda: [reference.read_idx(p) for p in paths]),
    ]
    print(f"loading {len(paths)} files ({nbytes / 1e6:.1f} MB decompressed), median of {args.rounds}:")
    times = {name: _median_ms(fn, args.rounds) for name, fn in rows}
    base = times["fmnist.reference (pure Python)"]
    for name, ms in times.items():
        print(f"  {name:32} {ms:8.1f} ms  {nbytes / ms / 1e3:7.0f} MB/s  {base / ms:5.2f}x the reference")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    ds = datasets.get(args.dataset)
    print(f"fmnist demo: {ds.title}")
    files = list(ds.files)
    policy = Policy(root=args.root, download=not args.no_download, mirrors=args.mirror or None, timeout=args.timeout)
    try:
        t0 = time.perf_counter()
        with _downloads_shown():
            found = resolve(ds, files, policy)
            x_train, y_train, x_test, y_test = found.arrays()
        first = time.perf_counter() - t0
        for info in files:
            print(f"  {info.name}: {found.files[info.name]}")
        t0 = time.perf_counter()
        resolve(ds, files, Policy(root=args.root)).arrays()
        second = time.perf_counter() - t0
        print(
            f"first load {first * 1e3:.0f} ms; second load {second * 1e3:.1f} ms "
            f"({'warm cache' if Policy().caching else 'cache off: verified again'})"
        )
        splits = {"train": (x_train, y_train), "test": (x_test, y_test)}
        images, labels = x_test, y_test
    except (DatasetNotFoundError, DownloadError) as e:
        if ds.name != SAMPLE_OF:
            raise  # the bundled sample is Fashion-MNIST: nothing to fall back to
        reasons = "\n".join("    " + line for line in str(e).splitlines())
        print(f"The full dataset is not available here ({type(e).__name__}):\n{reasons}")
        print("FALLING BACK TO THE BUNDLED SAMPLE: 1,000 real test images (100 per class), not the dataset.")
        images, labels = load_sample()
        splits = {"sample": (images, labels)}
    for name, (x, y) in splits.items():
        print(f"  {name:6} images {x.shape} {x.dtype}, labels {y.shape} {y.dtype}; mean pixel {x.mean():.1f}")
        print(f"         per class: {_counts(y, ds.classes)}")
    canvas = sprite(images, labels, classes=len(ds.classes), columns=30)
    Path(args.output).write_bytes(encode_png(canvas))
    print(f"sprite: {args.output} ({canvas.shape[1]}x{canvas.shape[0]}, each class three rows)")
    return 0


def _dataset(text: str) -> str:
    """A dataset name or alias (as the Python API takes them), as its canonical name."""
    try:
        return datasets.get(text).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seconds(text: str) -> float:
    """A timeout, by the rule downloads apply (``Policy.check``)."""
    try:
        value = float(text)
        Policy(timeout=value).check(datasets.FASHION_MNIST)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, finite, not {text!r}") from e
    return value


def _split(text: str) -> str:
    """A split as ``fmnist.load`` takes it, sliced or not (``fmnist.splits``): checked as parsed."""
    try:
        parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


SPLIT_HELP = "a split, sliced or not: test, train[:90%%], train[-5000:]"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


TIMEOUT_HELP = "seconds a stalled connection is waited on before it is tried again (default 30; 3 tries a mirror)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmnist",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            f"Data root: --root, else $FMNIST_HOME, else the platform's cache folder (here {default_root()}).\n"
            "Environment: FMNIST_HOME (data root), FMNIST_SEARCH_PATH (folders searched for copies other\n"
            "loaders left, os.pathsep-separated), FMNIST_CACHE=0 (no warm cache), FMNIST_REGISTRY (TOML or\n"
            "JSON files of datasets you define, os.pathsep-separated)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fmnist {__version__}")
    parser.add_argument(
        "--registry",
        action="append",
        metavar="FILE",
        help="a TOML or JSON file of datasets to add to the registry (repeatable; also $FMNIST_REGISTRY)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str, dataset: bool = True) -> Any:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "--registry", action="append", metavar="FILE", help="a TOML or JSON file of datasets (repeatable)"
        )
        if dataset:
            p.add_argument(
                "dataset",
                nargs="?",
                default="fashion-mnist",
                type=_dataset,
                help=f"dataset name or alias: {', '.join(datasets.DATASETS)} (default: fashion-mnist)",
            )
            p.add_argument("--root", help="data root (default: $FMNIST_HOME, else the platform's cache folder)")
        p.set_defaults(run=run)
        return p

    command("info", cmd_info, "where each file is, its size, verification, shape and class counts")
    p = command("download", cmd_download, "download the dataset's files (verified) into the data root")
    p.add_argument("--mirror", action="append", metavar="URL", help="base URL to try (repeatable; default: registry)")
    p.add_argument("--timeout", type=_seconds, default=30.0, help=TIMEOUT_HELP)
    what = "only this split's files, whole (repeatable; a sliced split names its split; default: every split)"
    p.add_argument("--split", action="append", type=_split, help=what)
    command("verify", cmd_verify, "re-hash every copy of the dataset's files and report each")
    p = command("sprite", cmd_sprite, "write a PNG sprite: each class takes three rows")
    p.add_argument("-o", "--output", default="fmnist-sprite.png", help="PNG path (default: fmnist-sprite.png)")
    p.add_argument("--split", type=_split, default="test", help=f"{SPLIT_HELP} (default: test)")
    p.add_argument("--columns", type=_positive, default=30, help="images per row (default 30)")
    p.add_argument("--sample", action="store_true", help="use the bundled sample even if the dataset is here")
    what = "convert IDX (.gz, .xz or raw) to .npy, or .npy to IDX (.gz or .xz by DEST's name)"
    p = command("convert", cmd_convert, what, dataset=False)
    p.add_argument("source", type=Path)
    p.add_argument("dest", type=Path)
    p = command("bench", cmd_bench, "time loading on this machine: fmnist vs the pure-Python reference")
    p.add_argument("--rounds", type=_positive, default=5, help="timed rounds per contender (default 5)")
    p = command(
        "demo",
        cmd_demo,
        "find (or download) the dataset, verify, load with timings, summarise, "
        "write the sprite; falls back to the bundled sample, saying so",
    )
    p.add_argument("--no-download", action="store_true", help="use only copies already on this machine")
    p.add_argument("--mirror", action="append", metavar="URL", help="base URL to try (repeatable; default: registry)")
    p.add_argument("--timeout", type=_seconds, default=30.0, help=TIMEOUT_HELP)
    p.add_argument("-o", "--output", default="fmnist-sprite.png", help="sprite path (default: fmnist-sprite.png)")
    p = command("embed", cmd_embed, "a split in 2-D (PCA, t-SNE or UMAP), datasets side by side", dataset=False)
    p.add_argument("--datasets", type=benchmark_cli.names(_dataset), default=["fashion-mnist", "mnist"],
                   help="registered datasets, comma-separated (default: fashion-mnist,mnist)")  # fmt: skip
    p.add_argument("--split", type=_split, default="test", help=f"the split to embed: {SPLIT_HELP} (default: test)")
    p.add_argument("--method", choices=["pca", "tsne", "umap"], default="tsne", help="(default: tsne)")
    p.add_argument("--seed", type=int, default=0, help="makes the embedding reproducible (default 0)")
    p.add_argument("--perplexity", type=float, help="t-SNE's perplexity (default 30)")
    p.add_argument("--n-neighbors", type=_positive, help="UMAP's neighbours (default 15)")
    p.add_argument("--limit", type=_positive, help="only the first N examples of each split")
    p.add_argument("--out", default="fmnist-embedding.png", help="PNG or SVG (default: fmnist-embedding.png)")
    p.add_argument("--thumbnails", action="store_true", help="draw images over the points")
    p.add_argument("--animate", metavar="GIF", help="also record t-SNE's optimisation of the first dataset as a GIF")
    p.add_argument("--every", type=_positive, default=10, help="iterations between the GIF's frames (default 10)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embeddings' cache")
    p.add_argument("--root", help="data root (default: $FMNIST_HOME, else the platform's cache folder)")
    p = command("projector", cmd_projector, "the files of TensorBoard's projector for a split", dataset=False)
    p.add_argument("folder", type=Path, help="where to write them (tensorboard --logdir FOLDER)")
    p.add_argument("--dataset", type=_dataset, default="fashion-mnist", help="(default: fashion-mnist)")
    p.add_argument("--split", type=_split, default="test", help=f"{SPLIT_HELP} (default: test)")
    p.add_argument("--root", help="data root (default: $FMNIST_HOME, else the platform's cache folder)")
    benchmark_cli.add_commands(sub, _dataset)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Registry files first: the dataset argument is checked against the registry as it is parsed.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--registry", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    try:
        for path in known.registry:
            datasets.load_registry(path)
        datasets.load_env_registries()
    except (OSError, datasets.RegistryError) as e:
        print(f"fmnist: {e}", file=sys.stderr)
        return 1
    args = _parser().parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # here, not at exit: a broken pipe is then this handler's
        return code
    except BrokenPipeError:  # the reader went away (`fmnist demo | head -3`): a quiet end, as Unix tools'
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe ended
    except FAILURES as e:
        print(f"fmnist {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
