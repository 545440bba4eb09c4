"""Vectors of the protocol's primitives: canonical encoding, key policies, tx and block hashes,
commit certificates, state-tree proofs (docs/PROTOCOL.md §1-10)."""

from __future__ import annotations

from typing import Any


def files() -> dict[str, Any]:
    """File name -> JSON document."""
    return {}
