"""The README's example is a test: it runs as written, in a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
