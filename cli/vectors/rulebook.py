"""Vectors of the rulebook: every method of every contract and every task, with the pre-state
root, the call, the post-state root and the receipt, failures included (docs/CONTRACTS.md)."""

from __future__ import annotations

from typing import Any


def files() -> dict[str, Any]:
    """File name -> JSON document."""
    return {}
