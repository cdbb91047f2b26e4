"""Packages import downward only: every robustpose import (module level or inside a
function) goes to a lower layer or stays in its own package.

The layers, lowest first, as docs/architecture.md draws them. A package may import any
package in a lower layer; packages in the same layer do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustpose"

#: lowest first; each entry is one layer (a set of sibling packages / top-level modules)
LAYERS: list[set[str]] = [
    {"utils"},
    {"geometry", "losses"},
    {"corruptions", "codecs"},
    {"data", "augment"},        # augment: pixel-only ops on crops (imports corruptions, utils)
    {"evaluation", "models"},
    {"reports", "config", "attacks"},  # attacks: losses, codecs, models
    {"assets"},
    {"training", "benchmarking"},
    {"commands"},
    {"cli", "__main__", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(module_path: Path) -> str:
    """The layer unit of a source file: its top-level package or module name."""
    rel = module_path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for robustpose/x.py
    units: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "robustpose" and len(parts) > 1:
                    units.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "robustpose":
                    continue
                if len(parts) > 1:
                    units.add(parts[1])
                else:  # from robustpose import x
                    units.update(alias.name for alias in node.names)
            elif node.level > depth:  # a relative import leaving the current package
                parts = (node.module or "").split(".")
                if node.level == depth + 1 and parts[0]:
                    units.add(parts[0])
                elif node.level == depth + 1:
                    units.update(alias.name for alias in node.names)
    return units


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer():
    units = {_unit(p) for p in _sources()}
    missing = sorted(units - set(RANK))
    assert not missing, f"packages without a layer in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_downward(path: Path):
    own = _unit(path)
    if path.name == "__main__.py":  # an entry point (python -m ...) sits on top
        rank = len(LAYERS)
    else:
        rank = RANK[own]
    upward = sorted(u for u in _imported_units(path)
                    if u != own and u in RANK and RANK[u] >= rank)
    assert not upward, f"{path.relative_to(PACKAGE)} ({own}) imports {upward}"
