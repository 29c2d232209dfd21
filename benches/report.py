"""Turns benches/results.json (written by `pytest benches`) into the README's markdown table.

    python benches/report.py            # print the table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BASELINES = ("reference", "mnist_reader idiom", "numpy idiom")


def table(results: dict) -> str:
    lines = []
    for group, rows in results.items():
        timed = {k: v for k, v in rows.items() if "median_s" in v}
        if not timed:
            for name, values in rows.items():
                lines.append(f"*{group}*, {name}: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
            lines.append("")
            continue
        bases = [b for b in BASELINES if b in timed]
        lines.append(f"**{group}**\n")
        lines.append("| contender | median ms | MB/s | " + " | ".join(f"vs {b}" for b in bases) + " |")
        lines.append("|---|---:|---:|" + "---:|" * len(bases))
        for name, v in sorted(timed.items(), key=lambda kv: kv[1]["median_s"]):
            ratios = " | ".join(f"{timed[b]['median_s'] / v['median_s']:.2f}x" for b in bases)
            mbs = v["nbytes"] / v["median_s"] / 1e6
            lines.append(f"| {name} | {v['median_s'] * 1e3:.1f} | {mbs:.0f} | {ratios} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.json")
    data = json.loads(path.read_text())
    print(f"Machine: {data['machine']}\n")
    print(table(data["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
