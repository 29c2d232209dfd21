"""The README's example is a test: it runs as written, in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no python example under '## Example'"
    return match.group(1)


def test_readme_example_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "tiny-images-idx3-ubyte.gz: MD5 mismatch over the decompressed IDX content" in out.stdout


def test_readme_quick_start_has_the_two_commands() -> None:
    # The Quick start's two ```sh blocks, one command each: the main job, then the tests
    # (.ci/run runs the second verbatim).
    text = (REPO / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert [len(b.strip().splitlines()) for b in blocks] == [1, 1]
    main_job, tests = (b.strip() for b in blocks)
    assert main_job.startswith("python3 -m venv .venv") and "fmnist demo" in main_job
    assert tests == "scripts/test" and (REPO / "scripts" / "test").stat().st_mode & 0o111


def test_the_command_lines_page_covers_every_command_and_the_readme_every_prerequisite() -> None:
    # docs/cli.md, where the README sends readers for the command line, has a row for every
    # command `fmnist --help` lists (the benchmark's two too); the README names every
    # prerequisite scripts/test checks.
    import argparse

    from fmnist import cli

    page = (REPO / "docs" / "cli.md").read_text()
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = []
    for name, p in sub.choices.items():
        inner = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        names += [f"{name} {n}" for n in inner[0].choices] if inner else [name]
    assert len(names) == 11 and all(f"| `fmnist {n}" in page for n in names), names
    readme = (REPO / "README.md").read_text()
    script = (REPO / "scripts" / "test").read_text()
    checked = " ".join(re.findall(r'missing\+=\("([^"]+)"\)', script))
    named = {"shellcheck": "shellcheck", "chromium": "chromium", "a C compiler": "C compiler", "nightly": "nightly",
             "Python 3.9": "Python 3.9", "3.13": "Python 3.13", "venv": "venv", "Rust 1.88": "1.88",
             "10 GB of free disk": "GB of free disk"}  # fmt: skip
    for in_readme, in_script in named.items():
        assert in_readme in readme and in_script in checked, (in_readme, in_script)
    targets = re.search(r"cross=\(([^)]*)\)", script)
    assert targets and all(f"`{t}`" in readme for t in targets[1].split())


@pytest.mark.parametrize(
    ("need", "line"),
    [
        ("1000000", r"1000000 GB of free disk where target/ is, for the suites \(there are \d+ GB\)"),
        ("ten", r"FMNIST_SUITES_DISK_GB as a whole number of GB, not 'ten'"),
    ],
)
def test_scripts_test_refuses_at_once_a_disk_that_cannot_hold_the_suites(need: str, line: str) -> None:
    # A need no disk meets, or no need at all: the suites' step is refused among the
    # prerequisites, naming the need and what there is, before anything is written.
    before = sorted((REPO / "target").glob("*")) if (REPO / "target").is_dir() else []
    out = subprocess.run(
        [str(REPO / "scripts" / "test"), "suites"],
        env={**os.environ, "FMNIST_SUITES_DISK_GB": need},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "scripts/test: missing prerequisites" in out.stderr
    assert re.search(f"^  {line}$", out.stderr, re.M), out.stderr
    assert "=== " not in out.stdout  # no step began
    assert (sorted((REPO / "target").glob("*")) if (REPO / "target").is_dir() else []) == before
