"""Turns benches/results.json (written by `pytest benches`) into the README's summary table, the
full tables of docs/benchmarks.md and the bar chart.

    python benches/report.py                  # print the tables
    python benches/report.py --update         # rewrite the README's summary, docs/benchmarks.md's
                                              # tables, docs/augment.md's (between their markers)
                                              # and docs/benchmarks.svg

Every number in those pages' tables comes from here, never typed.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

BASELINES = (
    "reference",
    "mnist_reader idiom",
    "numpy idiom",
    "torchvision + DataLoader",
    "torchvision.datasets.FashionMNIST",
    "fmnist.batches",
    "lzma.decompress + numpy",
    "zipfile.extractall, then read",
    "keras model.fit(x, y, batch_size)",
    "keras preprocessing layers",
    "fmnist.load",
)


#: The group of benches/test_augment.py, whose table docs/augment.md shows too.
AUGMENTED = "epoch of augmented batches"


def ordered(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """Groups in reading order: loading files, loading datasets, then batches."""
    rank = {"load ": 0, "load_data": 1, "epoch": 2}
    return sorted(results.items(), key=lambda kv: next((r for p, r in rank.items() if kv[0].startswith(p)), 3))


def table(results: dict[str, Any]) -> str:
    """Markdown tables, one per group: median, throughput, and the ratio to each baseline
    ("reference (no verification)" counts as the "reference" baseline)."""
    lines = []
    for group, rows in ordered(results):
        timed = {k: v for k, v in rows.items() if "median_s" in v}
        if not timed:
            for name, values in rows.items():
                lines.append(f"*{group}*, {name}: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
            lines.append("")
            continue
        bases = [name for b in BASELINES for name in timed if name.split(" (")[0] == b]
        lines.append(f"**{group}**\n")
        short = [b.split(" (")[0] for b in bases]
        heads = [f"vs {b if short.count(s) > 1 else s}" for b, s in zip(bases, short)]  # full name if ambiguous
        lines.append("| contender | median ms | MB/s | " + " | ".join(heads) + " |")
        lines.append("|---|---:|---:|" + "---:|" * len(bases))
        for name, v in sorted(timed.items(), key=lambda kv: kv[1]["median_s"]):
            ratios = " | ".join(_ratio(timed[b]["median_s"] / v["median_s"]) for b in bases)
            mbs = v["nbytes"] / v["median_s"] / 1e6
            lines.append(f"| {name} | {v['median_s'] * 1e3:.1f} | {mbs:.0f} | {ratios} |")
        lines.append("")
    return "\n".join(lines)


def _ratio(r: float) -> str:
    return f"{r:.2f}x" if r >= 0.01 else f"{r:.1e}x"  # a thousand times slower is not "0.00x"


def svg(results: dict[str, Any], title: str) -> str:
    """A horizontal bar chart of every timed group: bar length is throughput relative to the
    group's slowest contender, labelled with the median and the speed-up."""
    # The labels' column fits the longest name (12 px sans-serif: about 6.6 px a character),
    # so no label runs off the left edge.
    names = [name for _, rows in ordered(results) for name, v in rows.items() if "median_s" in v]
    bar_x = max(330, 18 + round(6.6 * max((len(n) for n in names), default=0)))
    bar_w, row_h, gap = 420, 22, 34
    width = bar_x + bar_w + 150
    y = 50
    parts = [f'<text x="10" y="24" font-size="16" font-weight="bold">{escape(title)}</text>']
    for group, rows in ordered(results):
        timed = {k: v for k, v in rows.items() if "median_s" in v}
        if not timed:
            continue
        slowest = max(v["median_s"] for v in timed.values())
        parts.append(f'<text x="10" y="{y}" font-size="13" font-weight="bold">{escape(group)}</text>')
        y += 8
        for name, v in sorted(timed.items(), key=lambda kv: kv[1]["median_s"]):
            speed = slowest / v["median_s"]
            length = bar_w * speed / max(slowest / t["median_s"] for t in timed.values())
            colour = "#1f77b4" if name.startswith("fmnist") else ("#999999" if name.startswith("floor") else "#ff7f0e")
            parts.append(f'<text x="{bar_x - 8}" y="{y + 15}" font-size="12" text-anchor="end">{escape(name)}</text>')
            parts.append(f'<rect x="{bar_x}" y="{y + 3}" width="{length:.1f}" height="{row_h - 6}" fill="{colour}"/>')
            parts.append(
                f'<text x="{bar_x + length + 6:.1f}" y="{y + 15}" font-size="12">'
                f"{v['median_s'] * 1e3:.1f} ms ({speed:.1f}x)</text>"
            )
            y += row_h
        y += gap
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>' + "".join(parts) + "</svg>\n"
    )


def summary(results: dict[str, Any]) -> str:
    """One row a task: fmnist's fastest contender against the task's first baseline."""
    lines = [
        "| task | fmnist | ms | baseline | ms | speed-up |",
        "|---|---|---:|---|---:|---:|",
    ]
    for group, rows in ordered(results):
        timed = {k: v for k, v in rows.items() if "median_s" in v}
        ours = {k: v for k, v in timed.items() if k.startswith("fmnist")}
        # An fmnist row that is also a baseline (fmnist.batches beside the torch loader, the
        # epoch without augmentation beside the augmented one) is the task's only fmnist row,
        # or not the task itself.
        own = {k: v for k, v in ours.items() if k.split(" (")[0] not in BASELINES}
        ours = own or ours
        others = [name for name in timed if not name.startswith("fmnist")]
        bases = [name for b in BASELINES for name in others if name.split(" (")[0] == b]
        if not ours or not bases:
            continue
        best = min(ours, key=lambda k: ours[k]["median_s"])
        base = bases[0]
        t, b = ours[best]["median_s"], timed[base]["median_s"]
        lines.append(f"| {group} | {best} | {t * 1e3:.1f} | {base} | {b * 1e3:.1f} | {_ratio(b / t)} |")
    return "\n".join(lines) + "\n"


ROOT = Path(__file__).resolve().parents[1]


def replace_between(path: Path, name: str, text: str) -> None:
    """Rewrites what stands between ``<!-- NAME: ... -->`` and ``<!-- end of NAME -->`` in path."""
    content = path.read_text()
    begin = f"<!-- {name}: benches/report.py --update writes this -->\n"
    end = f"<!-- end of {name} -->"
    if begin not in content or end not in content:
        raise SystemExit(f"{path}: no {begin.strip()} ... {end} markers")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + text + end + tail)
    print(f"{path}: {name} rewritten")


def main() -> int:
    args = sys.argv[1:]
    update = "--update" in args
    args = [a for a in args if a != "--update"]
    path = Path(args[0]) if args else Path(__file__).with_name("results.json")
    data = json.loads(path.read_text())
    machine = f"Machine: {data['machine']}, Python {data.get('python', '?')}, {data.get('versions', '')}".rstrip(", ")
    print(machine + "\n")
    print(table(data["results"]))
    print(summary(data["results"]))
    if update:
        replace_between(ROOT / "README.md", "benchmark summary", summary(data["results"]))
        replace_between(ROOT / "docs" / "benchmarks.md", "benchmark tables", f"{machine}\n\n{table(data['results'])}")
        augmented = {g: rows for g, rows in data["results"].items() if g.startswith(AUGMENTED)}
        if augmented:
            replace_between(ROOT / "docs" / "augment.md", "augmentation table", f"{machine}\n\n{table(augmented)}")
        title = "fmnist: median time per task, bar = speed relative to the slowest (longer is faster)"
        (ROOT / "docs" / "benchmarks.svg").write_text(svg(data["results"], title))
        print("docs/benchmarks.svg written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
