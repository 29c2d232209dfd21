"""fmnist.Augment against torchvision's own transforms: the same distributions of flips, crop
offsets over the (2*pad+1)^2 positions, erased area, aspect ratio and position (two-sample
tests with fixed seeds, so each either passes or fails on every run), and fmnist.torch.loader's
augment= through set_epoch. Needs torch and torchvision (collected where they are installed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torchvision import transforms  # type: ignore[import-untyped]

import fmnist
from fmnist.torch import loader

from .conftest import REPO

N = 20000  # draws per side: a 1% difference in a flip rate is 2 standard errors
H = W = 28


def chi2_sf(x: float, k: int) -> float:
    """P(chi-square with k degrees of freedom > x), by Wilson and Hilferty's cube-root normal
    approximation (good to about 1e-3 in the tail for k >= 3, plenty for a threshold of 1e-4)."""
    z = ((x / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def same_distribution(a: npt.NDArray[Any], b: npt.NDArray[Any], what: str) -> float:
    """Two-sample chi-square test that categorical samples a and b share a distribution; cells
    with fewer than 10 counts between them are pooled. Returns the p-value, asserting > 1e-4."""
    cats, inverse = np.unique(np.concatenate([a, b]), return_inverse=True, axis=0)
    inverse = inverse.reshape(-1)
    ca = np.bincount(inverse[: len(a)], minlength=len(cats)).astype(float)
    cb = np.bincount(inverse[len(a) :], minlength=len(cats)).astype(float)
    rare = ca + cb < 10
    if rare.any():
        ca = np.append(ca[~rare], ca[rare].sum())
        cb = np.append(cb[~rare], cb[rare].sum())
    na, nb = ca.sum(), cb.sum()
    stat = float(np.sum((ca * math.sqrt(nb / na) - cb * math.sqrt(na / nb)) ** 2 / (ca + cb)))
    k = len(ca) - 1
    p = chi2_sf(stat, k) if k > 0 else 1.0
    assert p > 1e-4, f"{what}: chi-square {stat:.1f} on {k} degrees of freedom, p = {p:.2g}"
    return p


def same_rate(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_], what: str) -> None:
    pa, pb = a.mean(), b.mean()
    pooled = (a.sum() + b.sum()) / (len(a) + len(b))
    z = (pa - pb) / math.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
    assert abs(z) < 4, f"{what}: {pa:.4f} against torchvision's {pb:.4f} (z = {z:.1f})"


def test_crop_offsets_match_torchvisions_random_crop() -> None:
    pad = 4
    # Each pixel holds its own position (+1, so that padding is 0): the crop's centre says where
    # the crop sits.
    img = torch.arange(1, H * W + 1, dtype=torch.float32).reshape(1, H, W)
    crop = transforms.RandomCrop(H, padding=pad)
    torch.manual_seed(0)
    centre = np.array([int(crop(img)[0, H // 2, W // 2]) - 1 for _ in range(N)])
    theirs = np.stack([centre // W - H // 2 + pad, centre % W - W // 2 + pad], axis=1)
    ours = fmnist.Augment(pad=pad).draws(np.arange(N), seed=0).crop
    assert theirs.min() == ours.min() == 0 and theirs.max() == ours.max() == 2 * pad
    assert len(np.unique(ours, axis=0)) == len(np.unique(theirs, axis=0)) == (2 * pad + 1) ** 2
    same_distribution(ours, theirs, "crop offsets")


def test_flip_rate_matches_torchvisions_random_horizontal_flip() -> None:
    img = torch.arange(W, dtype=torch.float32).reshape(1, 1, W)
    flip = transforms.RandomHorizontalFlip(0.3)
    torch.manual_seed(1)
    theirs = np.array([bool(flip(img)[0, 0, 0] == W - 1) for _ in range(N)])
    ours = fmnist.Augment(hflip=0.3).draws(np.arange(N), seed=1).flip
    same_rate(ours, theirs, "flip rate")
    assert abs(ours.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / N)


@pytest.mark.parametrize("scale,ratio", [((0.02, 0.33), (0.3, 3.3)), ((0.1, 0.6), (0.5, 4.0))])
def test_erasing_matches_torchvisions_random_erasing(scale: tuple[float, float], ratio: tuple[float, float]) -> None:
    erase = transforms.RandomErasing(p=0.5, scale=scale, ratio=ratio, value=0)
    ones = torch.ones(1, H, W)
    torch.manual_seed(2)
    boxes = []
    for _ in range(N):
        zero = (erase(ones)[0] == 0).numpy()
        rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
        boxes.append((rows[0], cols[0], len(rows), len(cols)) if len(rows) else (0, 0, 0, 0))
    theirs = np.array(boxes)
    ours = fmnist.Augment(erase=0.5, scale=scale, ratio=ratio).draws(np.arange(N), seed=2).erase
    erased_ours, erased_theirs = ours[:, 2] * ours[:, 3] > 0, theirs[:, 2] * theirs[:, 3] > 0
    same_rate(erased_ours, erased_theirs, "erased share")  # p, less the ten tries that all miss
    o, t = ours[erased_ours], theirs[erased_theirs]

    # The erased area as a share of the image, in tenths of the scale's range; the aspect ratio
    # in ten log-uniform steps; the rectangle itself; where it sits, relative to where it may.
    def area(b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.floor((b[:, 2] * b[:, 3] / (H * W) - scale[0]) / (scale[1] - scale[0]) * 10).astype(np.int64)

    def aspect(b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        log_ratio: npt.NDArray[np.float64] = np.log(b[:, 2] / b[:, 3])
        return np.floor(log_ratio / math.log(ratio[1] / ratio[0]) * 10).astype(np.int64)

    def where(b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.stack([b[:, 0] * 4 // (H - b[:, 2] + 1), b[:, 1] * 4 // (W - b[:, 3] + 1)], axis=1).astype(np.int64)

    same_distribution(area(o), area(t), "erased area")
    same_distribution(aspect(o), aspect(t), "aspect ratio")
    same_distribution(o[:, 2:], t[:, 2:], "erased height and width")
    same_distribution(where(o), where(t), "erased position")
    assert (o[:, 0] + o[:, 2] <= H).all() and (o[:, 1] + o[:, 3] <= W).all()


def test_the_loader_passes_augment_through_and_set_epoch_changes_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y = np.arange(64)
    aug = fmnist.Augment(pad=2, hflip=0.5, erase=0.5)
    it = loader(x, y, 32, seed=9, augment=aug, mean=0.5, std=0.5)
    epochs = []
    for epoch in (3, 4):
        it.set_epoch(epoch)
        got = torch.cat([xb for xb, _ in it]).numpy()
        want = np.concatenate(
            [
                xb
                for xb, _ in fmnist.batches(
                    x, y, 32, seed=9, epoch=epoch, dtype="float32", mean=0.5, std=0.5, augment=aug
                )
            ]
        )
        np.testing.assert_array_equal(got, want)
        epochs.append(got)
    assert not np.array_equal(epochs[0], epochs[1])
    with pytest.raises(TypeError, match="augment must be an fmnist.Augment or None"):
        loader(x, y, 32, augment={"pad": 2})  # type: ignore[arg-type]


def test_the_training_example_short_form_learns_on_both_pipelines(tmp_path: Path, present: dict[str, str]) -> None:
    # CI's form of examples/train.py: one epoch on 4,096 examples, both pipelines, bounded in time.
    env = present
    out = tmp_path / "train.json"
    cmd = [sys.executable, str(REPO / "examples" / "train.py"), "--epochs", "1", "--limit", "4096"]
    cmd += ["--test-limit", "1000", "--all-losses", "--json", str(out), "--torchvision-root", str(tmp_path / "tv")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {r["pipeline"]: r for r in json.loads(out.read_text())["runs"]}
    assert set(runs) == {"fmnist", "torchvision"}
    for name, run in runs.items():
        assert run["parameters"] < 100_000
        (epoch,) = run["epochs"]
        losses = np.array(epoch["losses"])
        assert len(losses) == 4096 // 128
        assert losses[-8:].mean() < 0.75 * losses[:8].mean(), (name, losses)  # the loss falls
        assert 0 <= epoch["waiting_share"] < 1 and epoch["test_accuracy"] > 0.3
    assert f"{runs['fmnist']['parameters']:,} parameters" in done.stdout
