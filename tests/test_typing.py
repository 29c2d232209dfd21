"""The stubs describe the Rust module as it is, and the package and its tests type-check strictly."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import fmnist._core

from .conftest import REPO


def test_stub_names_match_the_extension_module() -> None:
    stub = ast.parse((REPO / "python" / "fmnist" / "_core.pyi").read_text())
    # Top-level names, and those under `if sys.platform ...` (map_file: not on Windows).
    nodes = [n for top in stub.body for n in (top.body if isinstance(top, ast.If) else [top])]
    declared = {
        node.name if not isinstance(node, ast.AnnAssign) else node.target.id  # type: ignore[union-attr]
        for node in nodes
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AnnAssign))
    }
    public = {n for n in dir(fmnist._core) if not n.startswith("_") or n == "__version__"}
    assert declared == public


def test_version_comes_from_cargo() -> None:
    cargo = (REPO / "Cargo.toml").read_text()
    assert f'version = "{fmnist.__version__}"' in cargo


def test_mypy_strict() -> None:
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "python/fmnist", "tests"]
    if importlib.util.find_spec("torch") is None:
        # Typed against torch's own annotations, so only where torch is installed (scripts/test
        # installs it in one of its suites, which checks these two files too).
        command += ["--exclude", r"(fmnist/torch\.py|tests/test_torch\.py)$"]
    out = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(REPO / "python")},
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_stubs_match_the_extension_module_exactly(tmp_path: Path) -> None:
    # stubtest imports the installed fmnist._core and compares every name, signature and class
    # property with the _core.pyi installed beside it (python/fmnist/_core.pyi, packaged).
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fmnist._core", "--mypy-config-file", os.devnull],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
