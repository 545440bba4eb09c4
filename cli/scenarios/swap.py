"""Scenario ``swap``: the two halves of a hash-time-locked swap on one network.

First a lock that is claimed: member-a locks cash from A-C001 for B-C001 under the hash of a
secret; a wrong preimage and an early refund are refused; member-b claims with the secret, which
the chain then shows to anyone (the counterparty would use it on the other chain). Then a lock
that nobody claims: member-b locks ACME from B-C001 for A-C001 a few blocks ahead, and at the
timeout height the chain refunds it on its own. The two-chain atomic swap itself is
tests/test_swap_e2e.py.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from cli.scenarios import ScenarioRun

TITLE = "escrow: lock under a hash lock, claim with the preimage; an unclaimed lock refunds at its timeout"
CASH = 2_500_00  # USD 2,500.00
SHARES = 10  # ACME
CLAIM_BLOCKS = 1_000  # the claimed lock's timeout, blocks ahead
REFUND_BLOCKS = 3  # the refunded lock's timeout, blocks ahead (the story waits for it)


def run(s: ScenarioRun) -> None:
    claimed_leg(s)
    refunded_leg(s)


def lock(s: ScenarioRun, sender: str, terms: list[Any], blocks: int) -> int:
    """``escrow.lock(*terms, timeout)`` with the timeout ``blocks`` ahead of the lock's block
    (more notice if heartbeat blocks passed it first); returns the timeout height."""
    return s.send_ahead(sender, "escrow", "lock", lambda height: [*terms, height], blocks, "bad_timeout")[1]


def claimed_leg(s: ScenarioRun) -> None:
    secret = secrets.token_bytes(32)
    hashlock = hashlib.sha256(secret).digest()
    eid = f"SWAP-{s.height}-C"
    a0, b0 = s.balance("A-C001", "USD"), s.balance("B-C001", "USD")
    # The claim and the early refund must come before the timeout: it lies far enough ahead
    # that no run of heartbeat blocks between the three calls reaches it (nothing waits for it).
    timeout = lock(s, "member-a", [eid, "A-C001", "B-C001", "USD", CASH, hashlock], CLAIM_BLOCKS)
    s.echo(
        f"member-a locked USD 2,500.00 from A-C001 for B-C001 as {eid}, hash lock {hashlock.hex()[:16]}..., timeout {timeout}"
    )
    a1 = s.balance("A-C001", "USD")
    s.check(a1 == (a0[0] - CASH, a0[1] + CASH), f"A-C001 USD {a0} -> {a1}: the amount should move to locked")
    s.fails("bad_preimage", "member-b", "escrow", "claim", [eid, b"\x00" * 32])
    s.echo("a claim with the wrong preimage is refused (bad_preimage)")
    s.fails("escrow_not_expired", "member-a", "escrow", "refund", [eid])
    s.echo("member-a cannot take it back before the timeout (escrow_not_expired)")
    events = s.send("member-b", "escrow", "claim", [eid, secret])
    s.check(any(n == "escrow_claimed" for _, n, _ in events), f"no escrow_claimed event: {events}")
    doc = s.view("escrow", "get", id=eid)
    s.check(doc["status"] == "claimed" and doc["preimage"] == secret.hex(), f"escrow after claim: {doc}")
    s.echo(f"member-b claimed it with the secret; the chain now shows the preimage {doc['preimage'][:16]}...")
    a2, b2 = s.balance("A-C001", "USD"), s.balance("B-C001", "USD")
    s.check(a2 == (a0[0] - CASH, a0[1]), f"A-C001 USD {a0} -> {a2}")
    s.check(b2 == (b0[0] + CASH, b0[1]), f"B-C001 USD {b0} -> {b2}")
    s.echo("B-C001 received USD 2,500.00; A-C001's locked balance is back to what it was")


def refunded_leg(s: ScenarioRun) -> None:
    hashlock = hashlib.sha256(secrets.token_bytes(32)).digest()
    eid = f"SWAP-{s.height}-R"
    b0 = s.balance("B-C001", "ACME")
    timeout = lock(s, "member-b", [eid, "B-C001", "A-C001", "ACME", SHARES, hashlock], REFUND_BLOCKS)
    s.echo(
        f"member-b locked 10 ACME from B-C001 for A-C001 as {eid}, timeout height {timeout}; nobody claims it"
    )
    b1 = s.balance("B-C001", "ACME")
    s.check(b1 == (b0[0] - SHARES, b0[1] + SHARES), f"B-C001 ACME {b0} -> {b1}")
    s.wait_height(timeout)
    doc = s.view("escrow", "get", id=eid)
    s.check(
        doc["status"] == "refunded" and doc["closed_height"] == timeout, f"escrow after its timeout: {doc}"
    )
    b2 = s.balance("B-C001", "ACME")
    s.check(b2 == b0, f"B-C001 ACME {b0} -> {b2}: the lock should be refunded")
    s.echo(f"at height {timeout} the chain refunded it by itself: B-C001 has its 10 ACME back")
    s.fails("escrow_closed", "member-a", "escrow", "claim", [eid, b"\x00" * 32])
    s.echo("a claim after the refund is refused (escrow_closed)")
