"""The stubs name what the Rust module has, and the version is Cargo's. (mypy --strict over the package
and the tests, and stubtest of the stubs against the built module, run once as lint: scripts/test.)"""

from __future__ import annotations

import ast

import fmnist._core

from .conftest import REPO


def test_stub_names_match_the_extension_module() -> None:
    stub = ast.parse((REPO / "python" / "fmnist" / "_core.pyi").read_text())
    # Top-level names, and those under `if sys.platform ...` (map_idx: not on Windows).
    nodes = [n for top in stub.body for n in (top.body if isinstance(top, ast.If) else [top])]
    declared = {
        node.name if not isinstance(node, ast.AnnAssign) else node.target.id  # type: ignore[union-attr]
        for node in nodes
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AnnAssign))
    }
    public = {n for n in dir(fmnist._core) if not n.startswith("_") or n in ("__version__", "_panic")}
    assert declared == public


def test_version_comes_from_cargo() -> None:
    cargo = (REPO / "Cargo.toml").read_text()
    assert f'version = "{fmnist.__version__}"' in cargo
