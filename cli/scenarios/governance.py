"""Governance: the admin multisig changes a parameter, halts and resumes an instrument, and moves
a validator's power, each through a proposal; the power change reaches GET /validators at h + 2.

Re-runnable: it reads every value before changing it and restores what it changed (the
parameter, the instrument's status); the validator's power steps by one, up or down, so that
repeated runs keep it near where it was and the network keeps running for later scenarios.
"""

from __future__ import annotations

from typing import Any

from cli.scenarios import ScenarioRun
from cli.trade_dates import today

TITLE = "admins govern by proposal: a parameter, an instrument halt, a validator's power at h+2"
ADMIN = "admin"
PARAM = ("oracle", "staleness_blocks")
INSTRUMENT = "INITECH"


def _propose(
    s: ScenarioRun, *action: Any
) -> tuple[int, dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
    """Propose as the admin; returns (proposal id, tx status, events)."""
    status = s.submit(ADMIN, "governance", "propose", [list(action)])
    receipt = status["receipt"]
    s.check(receipt["ok"], f"proposal {action[0]} failed: {receipt['code']}: {receipt['message']}")
    events = [(c, n, dict(f)) for c, n, f in receipt["events"]]
    pid = next(f["id"] for _, n, f in events if n == "proposal_created")
    s.check(any(n == "proposal_executed" for _, n, _ in events), f"proposal {pid} did not execute")
    return pid, status, events


def _param(s: ScenarioRun) -> int:
    for p in s.client.get("/contracts")["contracts"]:
        if p["name"] == PARAM[0]:
            return int(p["params"][PARAM[1]]["value"])
    raise AssertionError("no oracle contract")


def _change_parameter(s: ScenarioRun) -> None:
    old = _param(s)
    new = old + 1 if old < 1_000 else old - 1
    pid, status, events = _propose(s, "set_param", *PARAM, new)
    change = next(f for _, n, f in events if n == "param_changed")
    s.check((change["old"], change["new"]) == (old, new), f"param_changed says {change}")
    s.check(_param(s) == new, f"{PARAM[0]}.{PARAM[1]} is {_param(s)}, expected {new}")
    s.echo(
        f"proposal {pid}: {PARAM[0]}.{PARAM[1]} {old} -> {new} at height {status['height']} (approvals required: 1 admin, itself 2-of-3 keys)"
    )
    s.fails("param_out_of_bounds", ADMIN, "governance", "propose", [["set_param", *PARAM, 0]])
    s.echo("  a value outside the agreed bounds is refused: param_out_of_bounds")
    _propose(s, "set_param", *PARAM, old)
    s.echo(f"  and set back to {old}")


def _halt_and_resume(s: ScenarioRun) -> None:
    record = {i["id"]: i for i in s.client.get("/instruments")["instruments"]}[INSTRUMENT]
    if record["status"] == "halted":
        _propose(s, "resume_instrument", INSTRUMENT)
    pid, st, _ = _propose(s, "halt_instrument", INSTRUMENT, "governance demo: pending announcement")
    halted = {i["id"]: i for i in s.client.get("/instruments")["instruments"]}[INSTRUMENT]["status"]
    s.check(halted == "halted", f"{INSTRUMENT} is {halted} after the halt")
    s.echo(f"proposal {pid}: {INSTRUMENT} halted at height {st['height']}")
    trade = [f"GOV-{s.height}", "A-C001", "B-C001", INSTRUMENT, 1, 1_00, today()]
    s.fails("instrument_halted", "xchg-alpha", "settlement", "settle", trade)
    s.echo("  a trade in it is refused: instrument_halted")
    pid, st, _ = _propose(s, "resume_instrument", INSTRUMENT)
    resumed = {i["id"]: i for i in s.client.get("/instruments")["instruments"]}[INSTRUMENT]["status"]
    s.check(resumed == "active", f"{INSTRUMENT} is {resumed} after the resume")
    s.echo(f"proposal {pid}: {INSTRUMENT} resumed at height {st['height']}")


def _validator_power(s: ScenarioRun) -> None:
    before = s.client.get("/validators")
    target = before["validators"][0]
    old = int(target["power"])
    new = old + 1 if old <= 10 else old - 1
    pid, status, events = _propose(s, "set_power", bytes.fromhex(target["pub_key"]), new)
    h = int(status["height"])
    scheduled = next(f for _, n, f in events if n == "validator_change_scheduled")
    s.check(
        scheduled["effective_height"] == h + 2,
        f"effective at {scheduled['effective_height']}, expected {h + 2}",
    )
    s.echo(
        f"proposal {pid}: {target['name'] or target['pub_key'][:16]} power {old} -> {new}, executed at height {h}, signs from {h + 2}"
    )
    header_h = s.client.get(f"/blocks/{h}")["header"]
    s.check(
        header_h["next_validators_hash"] == header_h["validators_hash"], f"block {h} already names a new set"
    )
    s.wait_height(h + 1)
    header_h1 = s.client.get(f"/blocks/{h + 1}")["header"]
    s.check(
        header_h1["next_validators_hash"] != header_h1["validators_hash"],
        f"block {h + 1}'s next_validators_hash does not change",
    )
    shown = {v["pub_key"]: v["power"] for v in s.client.get("/validators")["validators"]}
    s.check(
        shown[target["pub_key"]] == new,
        f"GET /validators shows power {shown[target['pub_key']]}, expected {new}",
    )
    s.echo(
        f"  block {h + 1}: next_validators_hash {header_h1['next_validators_hash'][:16]}... ; GET /validators shows power {new}"
    )
    s.wait_height(h + 2)
    header_h2 = s.client.get(f"/blocks/{h + 2}")["header"]
    s.check(
        header_h2["validators_hash"] == header_h1["next_validators_hash"],
        f"block {h + 2} is not signed by the new set",
    )
    s.echo(f"  block {h + 2}: validators_hash {header_h2['validators_hash'][:16]}... (the new set signs it)")


def run(s: ScenarioRun) -> None:
    _change_parameter(s)
    _halt_and_resume(s)
    _validator_power(s)
    done = s.view("governance", "history", limit="100")
    s.check(len(done["history"]) > 0, "the history view is empty")
    s.echo(
        f"governance history: {len(done['history'])} entries on the first page; last: {done['history'][-1]['text']}"
    )
