"""The generated parts of docs/ (method argument schemas, contract parameters) are what the code
renders: `make docs` rewrites them after a schema or a parameter changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import docgen
from contracts import default_registry
from contracts.schema import Id, Int, ListOf, Optional, Record, Text


def test_committed_docs_are_what_the_code_renders() -> None:
    assert docgen.differences() == []


def test_every_method_and_parameter_is_in_the_docs() -> None:
    registry = default_registry()
    contracts_md = docgen.committed((docgen.DOCS / "CONTRACTS.md").read_text(), "schemas")
    for contract, name, params in registry.methods():
        section = contracts_md.split(f"### {contract}\n", 1)[1].split("\n### ", 1)[0]
        assert f"| `{name}` |" in section, (contract, name)
        for arg, _ in params:
            assert f"| `{arg}` |" in section, (contract, name, arg)
    protocol_md = docgen.committed((docgen.DOCS / "PROTOCOL.md").read_text(), "params")
    for declaring in registry.contracts:
        for name in declaring.PARAMS:
            assert f"| {declaring.name} | `{name}` |" in protocol_md


def test_a_stale_part_is_found_and_rewritten(tmp_path: Path) -> None:
    for part in docgen.PARTS:
        path = tmp_path / part.doc
        text = path.read_text() if path.exists() else (docgen.DOCS / part.doc).read_text()
        path.write_text(docgen.replaced(text, part.marker, "stale\n"))
    every = [f"{p.doc}:{p.marker}" for p in docgen.PARTS]
    assert docgen.differences(tmp_path) == every
    assert docgen.write(tmp_path) == every
    assert docgen.differences(tmp_path) == []
    assert docgen.write(tmp_path) == []


@pytest.mark.parametrize(
    "schema, text",
    [
        (Int(1, 2**62), "Int 1..2^62"),
        (Int(-(2**63), 2**63 - 1), "Int -2^63..2^63-1"),
        (Int(0, 1_000), "Int 0..1,000"),
        (Text(256), "Text <=256 chars"),
        (Optional(Id()), "Optional(Id)"),
        (
            ListOf(Record((("a", Id()), ("b", Int(0, 9)))), max_items=5, min_items=1),
            "List[1..5] of [a: Id, b: Int 0..9]",
        ),
    ],
)
def test_describe(schema: object, text: str) -> None:
    assert docgen.describe(schema) == text


def test_an_unknown_schema_type_is_refused_not_guessed() -> None:
    @dataclass(frozen=True)
    class Mystery:
        pass

    with pytest.raises(TypeError, match="Mystery"):
        docgen.describe(Mystery())


def test_markers_missing_is_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        docgen.committed("no markers here", "schemas")


def test_event_fields_come_in_emission_order() -> None:
    source = """
def f(ctx):
    ctx.emit("b_event", z=1, a=2)
    ctx.view("x").emit("a_event", only=1)
    ctx.emit("b_event", z=1, a=2)
    ctx.emit("b_event", a=2)
"""
    assert docgen.event_signatures(source, "m.py") == [
        ("a_event", ("only",)),
        ("b_event", ("z", "a")),
        ("b_event", ("a",)),
    ]


@pytest.mark.parametrize("call", ["ctx.emit(name, a=1)", 'ctx.emit("e", **fields)'])
def test_an_emit_the_docs_cannot_describe_is_refused(call: str) -> None:
    with pytest.raises(ValueError, match="m.py:2"):
        docgen.event_signatures(f"def f(ctx, name, fields):\n    {call}\n", "m.py")


def test_every_documented_event_signature_is_the_codes() -> None:
    """Event signatures written by hand elsewhere in CONTRACTS.md, ``name(field, ...)``, agree
    with the generated table (the code's emission order)."""
    import re

    text = (docgen.DOCS / "CONTRACTS.md").read_text()
    table = docgen.committed(text, "events")
    code: dict[str, set[tuple[str, ...]]] = {}
    for line in table.splitlines()[2:]:
        _, event, fields = (c.strip() for c in line.strip("|").split("|"))
        code.setdefault(event.strip("`"), set()).add(tuple(f.strip("` ") for f in fields.split(",")))
    for name, fields in re.findall(r"`([a-z_]+)\(([a-z_, ]*)\)`", text):
        if name in code:
            assert tuple(f.strip() for f in fields.split(",")) in code[name], name


def test_the_task_table_lists_every_task() -> None:
    """docs/PROTOCOL.md section 12 names every task of the registry, with its payload."""
    table = docgen.committed((docgen.DOCS / "PROTOCOL.md").read_text(), "tasks")
    rows = {
        tuple(c.strip().strip("`") for c in line.strip("|").split("|")[:2]) for line in table.splitlines()[2:]
    }
    assert rows == set(default_registry().tasks())
