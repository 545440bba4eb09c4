"""docs/vectors/ is what the code produces: regenerate every file and compare (`make vectors`
rewrites them after a rule changes)."""

from __future__ import annotations

from pathlib import Path

from cli.vectors import build_all, differences

VECTORS = Path(__file__).resolve().parent.parent / "docs" / "vectors"


def test_committed_vectors_are_what_the_code_produces() -> None:
    assert differences(VECTORS) == []


def test_vectors_are_deterministic() -> None:
    assert build_all() == build_all()
