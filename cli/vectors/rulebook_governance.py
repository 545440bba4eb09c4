"""Rulebook script of governance: proposals that execute at once and by a second admin's
approval, a withdrawal, an expiry, a validator power change written by its task, and a code
upgrade whose activation ends the file (a node then stops for the new code: chain/ledger.py)."""

from __future__ import annotations

import hashlib

from chain.keys import KeyPair
from cli.localnet import devnet
from cli.vectors.rulebook_script import Recorder

ADMIN2 = KeyPair.dev("vectors/admin-2")
TTL = 5
NEW_ESCROW_CODE = hashlib.sha256(b"vectors/escrow v2").digest()


def governance() -> Recorder:
    r = Recorder()
    g = "governance"

    def as_admin2(name: str, method: str, args: list[object], expect: str = "ok") -> None:
        r.call(name, "admin-2", g, method, list(args), expect, keys=[ADMIN2])

    r.call(
        "propose: proposals live 5 blocks (executes at once)",
        "admin",
        g,
        "propose",
        [["set_param", g, "proposal_ttl_blocks", TTL]],
    )
    r.call(
        "propose: no such parameter",
        "admin",
        g,
        "propose",
        [["set_param", "oracle", "no_such_param", 1]],
        "unknown_param",
    )
    r.reject("propose: an unknown action", "admin", g, "propose", [["make_money", 1]], "bad_arguments")
    r.call(
        "setup: register admin-2",
        "admin",
        "membership",
        "register",
        ["admin-2", ["admin"], 1, [ADMIN2.public]],
    )
    r.call(
        "propose: two approvals from now on (executes at once)",
        "admin",
        g,
        "propose",
        [["set_param", g, "approvals_required", 2]],
    )
    validator = devnet.validator_key(3).public
    r.call("propose validator-3 at power 11 (open)", "admin", g, "propose", [["set_power", validator, 11]])
    r.call("approve: the proposer approved already", "admin", g, "approve", [3], "already_approved")
    as_admin2("approve by admin-2 executes the power change", "approve", [3])
    r.run_until(r.chain.height + 1, "the power change is written")
    r.call("propose a halt of STARK (open)", "admin", g, "propose", [["halt_instrument", "STARK", "review"]])
    as_admin2("withdraw: not the proposer", "withdraw", [4], "not_proposer")
    r.call("withdraw the halt", "admin", g, "withdraw", [4])
    r.call(
        "propose tplus_max 3 (left to expire)",
        "admin",
        g,
        "propose",
        [["set_param", "cycles", "tplus_max", 3]],
    )
    r.run_until(r.chain.height + TTL + 1, "proposals expire")
    as_admin2("approve: expired", "approve", [5], "proposal_closed")
    activation = r.chain.height + 12
    r.call(
        "propose an escrow code upgrade (open)",
        "admin",
        g,
        "propose",
        [["upgrade_code", "escrow", NEW_ESCROW_CODE, activation]],
    )
    as_admin2("approve by admin-2 schedules the upgrade", "approve", [6])
    r.run_until(activation, "the upgrade activates; the node must restart with the new code")
    return r


SCRIPTS = {"governance": (governance, "proposals, approvals, expiry, validator changes and a code upgrade")}
