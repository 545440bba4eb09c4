"""Vectors of the rulebook: every method of every contract and every task, with the pre-state
root, the call, the post-state root and the receipt, failures included (docs/CONTRACTS.md).

One file per contract, ``contracts/<contract>.json``, made by that contract's script (the
``rulebook_*`` modules) on its own chain from the development genesis, plus
``contracts/genesis.json``, the state they all start from. docs/vectors/RULEBOOK.md says how
to read and use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cli.vectors.rulebook_script import Recorder, genesis_doc

Script = Callable[[], Recorder]


def scripts() -> dict[str, tuple[Script, str]]:
    """Contract name -> (its script, what the file covers)."""
    from cli.vectors import (
        rulebook_flows,
        rulebook_funds,
        rulebook_governance,
        rulebook_issuers,
        rulebook_margin,
        rulebook_registry,
    )

    found: dict[str, tuple[Script, str]] = {}
    for module in (
        rulebook_registry,
        rulebook_flows,
        rulebook_margin,
        rulebook_issuers,
        rulebook_funds,
        rulebook_governance,
    ):
        clash = found.keys() & module.SCRIPTS.keys()
        if clash:
            raise ValueError(f"two scripts for {sorted(clash)}")
        found.update(module.SCRIPTS)
    return found


def contract_doc(contract: str, script: Script, about: str) -> dict[str, Any]:
    recorder = script()
    return {
        "about": f"contracts.{contract}: {about}. One block per case (rejected cases make none).",
        "contract": contract,
        "starts_from": "genesis",
        "cases": recorder.cases,
    }


def files() -> dict[str, Any]:
    """File name -> JSON document."""
    out: dict[str, Any] = {"contracts/genesis.json": genesis_doc()}
    for contract, (script, about) in sorted(scripts().items()):
        out[f"contracts/{contract}.json"] = contract_doc(contract, script, about)
    return out
