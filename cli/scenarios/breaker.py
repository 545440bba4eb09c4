"""Circuit breakers: HOOLI rallies round after round until its median has moved more than the
breaker's share within the window, and halts; a trade in it is refused with instrument_halted.
Then STARK's issuer owes filings every few blocks: it files once on time, misses the next
deadline, and STARK halts by rule (a finding against the issuer's bond); a late filing clears the
overdue state, and the admin resumes both instruments (resuming is a human decision).

Deterministic with respect to block timing: the story halts and reopens HOOLI at its latest
recorded median (the first median after a resume is the rule's reference), and sets HOOLI's rule
window to its maximum for the rally, so the move is measured from that opening price however many
heartbeat blocks pass between the oracles' transactions; the rule is restored after the halt.
The on-time filing is judged by its own receipt. Re-runnable: a halted instrument is resumed
first and a leftover STARK obligation released; document hashes and trade ids carry the height;
balances are read before and after. At the end both instruments trade again and STARK has no obligation,
so later scenarios are unaffected.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cli.scenarios import ScenarioRun
from cli.trade_dates import today

TITLE = "a wild price move halts HOOLI; an overdue disclosure halts STARK; trades in them fail"
MOVER = "HOOLI"
FILER = "STARK"
ISSUER = "issuer-acme"
ORACLES = ("oracle-1", "oracle-2", "oracle-3")
FIRST_PRICE = 40_00  # USD cents per share, when HOOLI has no price yet
ROUNDS_MAX = 6
WINDOW_BLOCKS = 1_000_000  # the rule's maximum window: the reference stays the anchor
PERIOD_BLOCKS = 4
GRACE_BLOCKS = 2
BPS = 10_000


def _usd(cents: int | None) -> str:
    return "none" if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _status(s: ScenarioRun, iid: str) -> str:
    return str(s.view("breakers", "status", instrument=iid)["status"])


def _ensure_active(s: ScenarioRun, iid: str) -> None:
    if _status(s, iid) == "halted":
        s.send("admin", "instruments", "resume", [iid])
        s.echo(f"({iid} was halted by an earlier run: the admin resumes it first)")


def _oracle_param(s: ScenarioRun, name: str) -> int:
    for c in s.client.get("/contracts")["contracts"]:
        if c["name"] == "oracle":
            return int(c["params"][name]["value"])
    raise AssertionError("no oracle contract")


def _refused_trade(s: ScenarioRun, iid: str, price: int) -> None:
    before = s.balance("A-HOUSE", iid), s.balance("B-HOUSE", iid)
    ticket = [f"BRK-{iid}-{s.height}", "A-HOUSE", "B-HOUSE", iid, 1, price, today()]
    s.fails("instrument_halted", "xchg-alpha", "settlement", "settle", ticket)
    after = s.balance("A-HOUSE", iid), s.balance("B-HOUSE", iid)
    s.check(before == after, f"{iid} balances moved on a refused trade: {before} -> {after}")
    s.echo(f"  a trade in {iid} is refused: instrument_halted; nothing moved")


def _publish(s: ScenarioRun, oracle: str, price: int) -> list[tuple[str, str, dict[str, Any]]]:
    events = s.send(oracle, "oracle", "submit", [MOVER, price])
    s.check(not any(n == "oracle_out_of_band" for _, n, _ in events), f"{oracle} out of band at {price}")
    return events


def _open_at(s: ScenarioRun, base: int, move_bps: int) -> tuple[int, int] | None:
    """Make ``base`` the reference of the price rule, whatever the chain's history and however
    many blocks the story's transactions take; returns the admin's earlier rule override.

    The rule's window is set to its maximum for the story, so the reference is the anchor (the
    first median after a resume) however many heartbeat blocks pass between the oracles'
    transactions; with the default 60-block window a slow rally is measured from a reference
    that rises with it and never halts. The oracles publish ``base`` while HOOLI is halted, so
    the first median after the resume, ``base``, is the anchor."""
    rule = s.view("breakers", "status", instrument=MOVER)
    saved = (int(rule["window_blocks"]), int(rule["move_bps"])) if rule["rule_overridden"] else None
    s.send("admin", "breakers", "set_rule", [MOVER, WINDOW_BLOCKS, move_bps])
    s.send("admin", "instruments", "halt", [MOVER, "breaker scenario: reopening at a set price"])
    for oracle in ORACLES:
        _publish(s, oracle, base)
    s.send("admin", "instruments", "resume", [MOVER])
    return saved


def _price_move(s: ScenarioRun) -> None:
    _ensure_active(s, MOVER)
    rule = s.view("breakers", "status", instrument=MOVER)
    move_bps = int(rule["move_bps"])
    step_bps = min(move_bps * 6 // 10, _oracle_param(s, "band_bps") * 8 // 10)
    base = s.last_price(MOVER) or FIRST_PRICE
    saved = _open_at(s, base, move_bps)
    s.echo(
        f"{MOVER} halts on a move over {move_bps} bps from its reference; the oracles reopen it at {_usd(base)}"
    )
    s.echo(
        f"  (the admin sets the rule's window to {WINDOW_BLOCKS:,} blocks for the story, so only the move counts, not how many blocks pass)"
    )
    tripped: dict[str, Any] | None = None
    for k in range(1, ROUNDS_MAX + 1):
        price = base * (BPS + k * step_bps) // BPS
        for oracle in ORACLES:
            events = _publish(s, oracle, price)
            tripped = next((f for _, n, f in events if n == "breaker_tripped"), None)
            if tripped is not None:
                break
        s.echo(f"  round {k}: the oracles publish {_usd(price)}" + (": HALTED" if tripped else ""))
        if tripped is not None:
            moved = abs(tripped["price"] - tripped["reference"]) * BPS
            s.check(
                moved > tripped["move_bps"] * tripped["reference"],
                f"halted on a move within the rule: {tripped}",
            )
            break
    if saved is None:
        s.send("admin", "breakers", "clear_rule", [MOVER])
    else:
        s.send("admin", "breakers", "set_rule", [MOVER, *saved])
    s.check(tripped is not None and tripped["reason"] == "price_move", f"no halt after {ROUNDS_MAX} rounds")
    assert tripped is not None
    s.check(tripped["reference"] == base, f"the move was measured from {tripped['reference']}, not {base}")
    s.check(_status(s, MOVER) == "halted", f"{MOVER} is not halted")
    last = s.view("breakers", "status", instrument=MOVER)["last_halt"]
    s.echo(
        f"{MOVER} halted at height {last['height']}: median {_usd(last['price'])} vs reference {_usd(last['reference'])}"
    )
    _refused_trade(s, MOVER, tripped["price"])


def _overdue_disclosure(s: ScenarioRun) -> None:
    _ensure_active(s, FILER)
    if s.view("disclosure", "status", instrument=FILER)["obligation"] is not None:
        s.send("admin", "disclosure", "release", [FILER])
    s.send("admin", "disclosure", "register_issuer", [FILER, ISSUER])
    events = s.send("admin", "disclosure", "obligate", [FILER, PERIOD_BLOCKS, GRACE_BLOCKS])
    first = next(f for _, n, f in events if n == "disclosure_obligated")
    s.echo(
        f"{ISSUER} must file for {FILER} every {PERIOD_BLOCKS} blocks (+{GRACE_BLOCKS} grace): first due at {first['due']}"
    )
    report = hashlib.sha256(f"{FILER} interim report, height {s.height}".encode()).digest()
    events = s.send(ISSUER, "disclosure", "file", [FILER, report, "interim report"])
    filed = next(f for _, n, f in events if n == "disclosure_filed")
    s.echo(f"  {ISSUER} files on time (#{filed['seq']}): the next filing is due at {filed['next_due']}")
    s.fails(
        "not_issuer", "fund-mgr", "disclosure", "file", [FILER, hashlib.sha256(report).digest(), "not mine"]
    )
    # The filing's own receipt says whether it was on time; a status read a few (heartbeat)
    # blocks later would depend on how many blocks passed since.
    s.check(not filed["cured"] and filed["next_due"] is not None, f"the filing was not on time: {filed}")
    deadline = int(filed["next_due"]) + GRACE_BLOCKS
    s.echo(f"  ... and then files nothing; waiting for the deadline at height {deadline}")
    s.wait_height(deadline + 1)
    status = s.view("disclosure", "status", instrument=FILER)
    s.check(
        status["overdue"] and status["obligation"]["missed"] >= 1, f"not overdue after the deadline: {status}"
    )
    last = s.view("breakers", "status", instrument=FILER)["last_halt"]
    s.check(
        _status(s, FILER) == "halted" and last["reason"] == "disclosure_overdue",
        f"{FILER} after the deadline: {last}",
    )
    s.echo(
        f"{FILER} halted at height {last['height']}: disclosure_overdue; a missed_disclosure finding goes against {ISSUER}'s bond"
    )
    _refused_trade(s, FILER, 100_00)
    late = hashlib.sha256(f"{FILER} late report, height {s.height}".encode()).digest()
    events = s.send(ISSUER, "disclosure", "file", [FILER, late, "late report"])
    cured = next(f for _, n, f in events if n == "disclosure_filed")
    s.check(
        cured["cured"] and not s.view("disclosure", "status", instrument=FILER)["overdue"],
        f"late filing: {cured}",
    )
    s.check(_status(s, FILER) == "halted", f"{FILER} resumed by itself")
    s.echo(f"  a late filing clears the overdue state; {FILER} stays halted until the admin resumes it")
    s.send("admin", "disclosure", "release", [FILER])


def run(s: ScenarioRun) -> None:
    _price_move(s)
    _overdue_disclosure(s)
    for iid in (MOVER, FILER):
        s.send("admin", "instruments", "resume", [iid])
        s.check(_status(s, iid) == "active", f"{iid} did not resume")
    s.echo(f"the admin resumes {MOVER} and {FILER} and releases {FILER}'s obligation: both trade again")
