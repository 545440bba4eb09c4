"""Contracts own their state: every state key prefix is spelled once in the source tree.

A state prefix is a byte string that starts with a state namespace (a contract's name, or
``chain`` for the chain's own records) and a slash, such as ``b"accounts/bal/"``. The one place
it may be written is its declaration, a module-level constant (``BALANCE_PREFIX = b"..."``) in
``chain/`` or ``contracts/``; every reader (the API, balance proofs, reports, audit, the CLI)
builds keys with the owning module's key builders or imports the constant. The test walks the
syntax trees of chain/, contracts/, node/ and cli/ (docstrings excluded) and fails on a prefix
spelled twice, spelled outside its declaration, or spelled as text (``"accounts/bal/"``) by a
reader that should have used a key builder.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from contracts import default_registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chain", "contracts", "node", "cli")
DECLARING_PACKAGES = ("chain", "contracts")


def namespaces() -> set[str]:
    return {c.name for c in default_registry().contracts} | {"chain"}


def is_state_literal(value: bytes | str, spaces: set[str]) -> bool:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    head, slash, _ = text.partition("/")
    return bool(slash) and head in spaces


def docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def declarations(tree: ast.Module) -> dict[int, str]:
    """id of each bytes constant declared at module level (``NAME = b"..."``) -> NAME."""
    out = {}
    for stmt in tree.body:
        targets = (
            stmt.targets
            if isinstance(stmt, ast.Assign)
            else [stmt.target]
            if isinstance(stmt, ast.AnnAssign)
            else []
        )
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
            for target in targets:
                if isinstance(target, ast.Name):
                    out[id(value)] = target.id
    return out


def spellings() -> tuple[dict[bytes, list[str]], list[str]]:
    """Every state prefix literal -> where it is spelled; and the spellings that are not
    declarations (text literals, or bytes outside a declaration)."""
    spaces = namespaces()
    found: dict[bytes, list[str]] = defaultdict(list)
    undeclared = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(), rel)
            skip = docstring_nodes(tree)
            declared = declarations(tree) if package in DECLARING_PACKAGES else {}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Constant) or id(node) in skip:
                    continue
                value = node.value
                if not isinstance(value, bytes | str) or not is_state_literal(value, spaces):
                    continue
                if isinstance(value, str) and (" " in value or "<" in value):
                    continue  # prose in a message, not a key
                key = value if isinstance(value, bytes) else value.encode()
                where = f"{rel}:{node.lineno}"
                found[key].append(where)
                if id(node) not in declared:
                    undeclared.append(f"{where} spells {value!r}")
    return found, undeclared


def test_the_prefix_registry_is_not_empty() -> None:
    found, _ = spellings()
    for prefix in (b"accounts/acct/", b"accounts/bal/", b"instruments/", b"membership/participant/"):
        assert prefix in found, f"{prefix!r} is no longer declared: is the scan still looking?"


def test_every_state_prefix_is_spelled_once() -> None:
    found, _ = spellings()
    twice = {k.decode(): v for k, v in found.items() if len(v) > 1}
    assert not twice, f"state prefixes spelled more than once (use the owner's key builders): {twice}"


def test_every_state_prefix_is_a_declaration_of_its_owner() -> None:
    _, undeclared = spellings()
    assert not undeclared, (
        "state prefixes spelled outside a module-level constant of chain/ or contracts/: "
        + "; ".join(undeclared)
    )
