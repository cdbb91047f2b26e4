"""Packages import downward only: every robustpose import (module level or inside a
function) goes to a lower layer or stays in its own package.

The layers, lowest first, as docs/architecture.md draws them. A package may import any
package in a lower layer; packages in the same layer do not import each other. Inside a
package, modules import each other without a circle (issue 25): A imports B and B imports
A (directly or through others, at module level or inside a function) fails, a package's
``__init__`` counting as a module.
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
    {"commands", "api"},        # api: the typed robustpose.benchmark / attack / stability
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


# --- import circles inside a package ----------------------------------------------------

#: circles that existed when the check came (issue 25), each a set of modules; a circle
#: must lie inside one of them. Remove an entry with the circle it names.
KNOWN_CIRCLES: list[set[str]] = [
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The robustpose module that importing ``name`` runs: itself, else its nearest parent."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """Every robustpose module ``path`` imports (module level or inside a function);
    ``from P import x`` counts submodule ``P.x`` when it exists, else package ``P``."""
    me = _module_name(path)
    base = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_resolve(a.name, modules) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[:len(base) - node.level + 1]
                module = ".".join(head + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                target = sub if sub in modules else _resolve(module, modules)
                if target:
                    found.add(target)
    found.discard(me)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def import_circles(paths: list[Path]) -> list[set[str]]:
    """Strongly connected sets (> 1 module) of the import graph restricted to imports
    within one top-level package: every set is a circle A -> ... -> A."""
    modules = {_module_name(p): p for p in paths}
    graph = {m: {t for t in _module_imports(p, set(modules)) if _package(t) == _package(m)}
             for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circle_inside_a_package():
    new = [sorted(c) for c in import_circles(_sources())
           if not any(c <= known for known in KNOWN_CIRCLES)]
    assert not new, f"import circles inside a package: {new}"


def test_the_circle_check_sees_direct_and_function_level_circles(tmp_path, monkeypatch):
    """A fake package: a imports b at module level, b imports a inside a function; c is
    imported by a but imports nothing back."""
    root = tmp_path / "robustpose"
    (root / "pkg").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text("from robustpose.pkg import b\nfrom . import c\n")
    (root / "pkg" / "b.py").write_text("def f():\n    from robustpose.pkg.a import x\n")
    (root / "pkg" / "c.py").write_text("import os\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    paths = sorted(root.rglob("*.py"))
    assert import_circles(paths) == [{"robustpose.pkg.a", "robustpose.pkg.b"}]
    (root / "pkg" / "b.py").write_text("import os\n")
    assert import_circles(paths) == []
