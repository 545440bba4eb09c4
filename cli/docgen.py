"""The generated parts of docs/: every method's argument schema and every event's fields in
emission order (docs/CONTRACTS.md), and every contract parameter with its default and bounds
(docs/PROTOCOL.md section 11), rendered from the registry the node runs and from the contracts'
source, so the rulebook an outsider implements from cannot drift from the code.

Each part lives between two markers, ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; the text
between them is exactly what this module renders. ``python -m cli.docgen --write`` (``make docs``)
rewrites them; ``--check`` (and tests/test_docgen.py) lists the parts that differ.

A schema type this module does not know is an error, not a guess: a new type in
contracts/schema.py (or a contract's own) must be described here before the docs can be written.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import default_registry
from contracts.api import Registry
from contracts.bonds import BlockHash
from contracts.governance import ACTIONS, ActionSchema
from contracts.params import Param
from contracts.schema import Bool, Bytes, Id, Int, ListOf, OneOf, Optional, Record, Text

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _number(n: int) -> str:
    """An integer bound as people read it: 2^62, 2^63-1, -2^63, or 1,000,000."""
    for k in range(16, 65):
        if n == 2**k:
            return f"2^{k}"
        if n == 2**k - 1:
            return f"2^{k}-1"
        if n == -(2**k):
            return f"-2^{k}"
        if n == -(2**k - 1):
            return f"-(2^{k}-1)"
    return f"{n:,}"


def describe(schema: Any) -> str:
    """One schema as text: ``Int 1..2^62``, ``Id``, ``Text <=256``, ``Bytes[32]``,
    ``List[1..1,000] of ...``, ``Optional(...)``, ``Enum(a | b)``, ``[field: type, ...]``.
    Raises TypeError for a schema type it does not know."""
    kind = type(schema)
    if kind is Int:
        return f"Int {_number(schema.min)}..{_number(schema.max)}"
    if kind is Id:
        return "Id"
    if kind is Text:
        return f"Text <={schema.max_chars:,} chars"
    if kind is Bytes:
        return f"Bytes[{schema.size}]"
    if kind is Bool:
        return "Bool"
    if kind is OneOf:
        return "Enum(" + " | ".join(schema.choices) + ")"
    if kind is Optional:
        return f"Optional({describe(schema.inner)})"
    if kind is ListOf:
        return f"List[{_number(schema.min_items)}..{_number(schema.max_items)}] of {describe(schema.item)}"
    if kind is Record:
        return "[" + ", ".join(f"{name}: {describe(t)}" for name, t in schema.fields) + "]"
    if kind is BlockHash:
        return "Bytes[32] or Bytes[0] (nil vote)"
    if kind is ActionSchema:
        return "Action (`[action, *args]`, the actions below)"
    raise TypeError(f"docgen cannot describe schema type {kind.__name__}; add it to cli/docgen.py")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_schemas(registry: Registry) -> str:
    """One table per contract (registry order): each method's positional arguments, in order."""
    by_contract: dict[str, list[tuple[str, tuple[tuple[str, Any], ...]]]] = {}
    for contract, name, params in registry.methods():
        by_contract.setdefault(contract, []).append((name, params))
    out: list[str] = []
    for contract in (c.name for c in registry.contracts):
        methods = by_contract.get(contract)
        if not methods:
            continue
        out += [f"### {contract}", "", "| method | # | argument | schema |", "|---|---|---|---|"]
        for name, params in methods:
            if not params:
                out.append(f"| `{name}` | | (none) | |")
            for i, (arg, schema) in enumerate(params):
                shown = f"`{name}`" if i == 0 else ""
                out.append(f"| {shown} | {i} | `{arg}` | {_cell(describe(schema))} |")
        out.append("")
        if contract == "governance":
            out += ["Governance actions (`propose`'s `action` argument):", ""]
            out += ["| action | arguments |", "|---|---|"]
            for action, record in ACTIONS.items():
                args = ", ".join(f"`{n}`: {describe(t)}" for n, t in record.fields)
                out.append(f"| `{action}` | {_cell(args)} |")
            out.append("")
    return "\n".join(out)


def render_params(registry: Registry) -> str:
    """Every declared contract parameter, as genesis writes it: ``<contract>/param/<name>``."""
    out = ["| contract | parameter | default | min | max | meaning |", "|---|---|---|---|---|---|"]
    for contract in registry.contracts:
        declared: dict[str, Param] = contract.PARAMS
        for name in sorted(declared):
            p = declared[name]
            row = [contract.name, f"`{name}`", _number(p.default), _number(p.min), _number(p.max), p.doc]
            out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(out) + "\n"


def event_signatures(source: str, where: str) -> list[tuple[str, tuple[str, ...]]]:
    """(event name, field names in emission order) of every ``.emit("name", field=...)`` call in
    ``source``, in source order, each distinct signature once. Raises ValueError for an emit
    whose name or fields are not literal (docs could not say what it emits)."""
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "emit":
            continue
        first = node.args[0] if len(node.args) == 1 else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            raise ValueError(f"{where}:{node.lineno}: an emit whose event name is not a literal")
        if any(k.arg is None for k in node.keywords):
            raise ValueError(f"{where}:{node.lineno}: an emit with **fields")
        found.append((node.lineno, first.value, tuple(str(k.arg) for k in node.keywords)))
    out: list[tuple[str, tuple[str, ...]]] = []
    for _, name, fields in sorted(found):
        if (name, fields) not in out:
            out.append((name, fields))
    return sorted(out, key=lambda s: s[0])  # stable: variants of one event in source order


def render_events(registry: Registry) -> str:
    """Per contract module (registry order), each event it emits with its fields in order."""
    out = ["| module | event | fields, in order |", "|---|---|---|"]
    for contract in registry.contracts:
        path = type(contract).source_path()
        for name, fields in event_signatures(path.read_text(), path.name):
            shown = ", ".join(f"`{f}`" for f in fields) or "(none)"
            out.append(f"| {path.stem} | `{name}` | {shown} |")
    return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class Part:
    marker: str
    doc: str  # file name under docs/
    render: Callable[[Registry], str]


PARTS = (
    Part("schemas", "CONTRACTS.md", render_schemas),
    Part("events", "CONTRACTS.md", render_events),
    Part("params", "PROTOCOL.md", render_params),
)


def _bounds(text: str, marker: str) -> tuple[int, int]:
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the markers of {marker!r} are missing or out of order")
    return start + len(begin), stop


def committed(text: str, marker: str) -> str:
    """The text between ``marker``'s begin and end markers."""
    start, stop = _bounds(text, marker)
    return text[start:stop]


def replaced(text: str, marker: str, body: str) -> str:
    start, stop = _bounds(text, marker)
    return text[:start] + body + text[stop:]


def differences(docs: Path = DOCS) -> list[str]:
    """The parts whose committed text is not what the code renders (``doc:marker``)."""
    registry = default_registry()
    return [
        f"{p.doc}:{p.marker}"
        for p in PARTS
        if committed((docs / p.doc).read_text(), p.marker) != p.render(registry)
    ]


def write(docs: Path = DOCS) -> list[str]:
    """Rewrite every part in place; returns those that changed."""
    registry = default_registry()
    changed = []
    for p in PARTS:
        path = docs / p.doc
        text = path.read_text()
        new = replaced(text, p.marker, p.render(registry))
        if new != text:
            path.write_text(new)
            changed.append(f"{p.doc}:{p.marker}")
    return changed


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        for name in write():
            print(f"rewrote {name}")
        return 0
    if argv == ["--check"]:
        stale = differences()
        for name in stale:
            print(f"stale: {name} (run `make docs`)")
        return 1 if stale else 0
    print("usage: python -m cli.docgen --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
