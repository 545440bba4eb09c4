"""The direction of imports (DESIGN.md): ``cli -> node -> chain``, ``contracts -> chain``,
``node -> contracts``; ``chain`` never imports ``node``, ``cli`` or a contract, ``contracts`` never
imports ``node`` or ``cli``; and no module of chain/, contracts/, node/ or cli/ takes part in an
import circle.

The graph is read from the syntax trees, not by importing: every ``import`` and ``from ... import``
anywhere in a module counts (module level, inside functions, under ``TYPE_CHECKING``), because a
circle hidden in a function or behind a type-checking guard is still two modules that cannot be
understood, tested or changed one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chain", "contracts", "node", "cli")
FORBIDDEN = {"chain": ("node", "cli", "contracts"), "contracts": ("node", "cli")}


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the four packages it imports (anywhere in its source)."""
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" for a in node.names]  # a submodule, or a name in base
            for target in targets:
                found = _resolve(target, known)
                if found is not None and found != module:
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_the_graph_sees_function_level_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "node.rpc" in graph["node.runtime"], "node/runtime.py imports node.rpc inside Node.start"
    assert "contracts.api" in graph["contracts"], "contracts/__init__.py imports inside a function"


def test_a_circle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circles(package: str) -> None:
    found = [c for c in cycles(import_graph()) if c[0].partition(".")[0] == package]
    assert not found, f"import circles: {found}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_direction_of_imports(package: str) -> None:
    graph = import_graph()
    wrong = sorted(
        f"{m} imports {t}"
        for m, targets in graph.items()
        if m.partition(".")[0] == package
        for t in targets
        if t.partition(".")[0] in FORBIDDEN[package]
    )
    assert not wrong, f"{package}/ must not import {', '.join(FORBIDDEN[package])}: {wrong}"
