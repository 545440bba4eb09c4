"""The SQLite baseline of ``clearchain bench`` settles real trades by settlement's rules.

Small runs; outcomes only (settled and failed counts, conservation, balances), never speed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.keys import KeyPair
from cli.bench.baseline import (
    bench_funding,
    get_asset_totals,
    get_balance,
    open_ledger,
    preload,
    run_baseline,
    settle_ticket,
    sign_tickets,
)
from cli.bench.executor import batch_tickets

USD = 10**12
ACME = 10**9


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn, journal_mode = open_ledger(tmp_path / "ledger.sqlite", "NORMAL")
    assert journal_mode == "wal"
    preload(conn, 4, bench_funding())
    yield conn
    conn.close()


def test_bench_funding_matches_executor_genesis() -> None:
    assert bench_funding() == {"USD": USD, "ACME": ACME}


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_run_settles_every_ticket_and_conserves(synchronous: str) -> None:
    tickets = batch_tickets(0, 500, 100)
    figures = run_baseline(tickets, 100, synchronous=synchronous)
    assert figures["trades"] == 500
    assert figures["settled"] + sum(figures["failed"].values()) == 500
    assert figures["settled"] == 500 and figures["failed"] == {}
    assert figures["conserved"] is True
    assert figures["synchronous"] == synchronous and figures["journal_mode"] == "wal"
    assert figures["sqlite_version"] == sqlite3.sqlite_version
    assert "verified" not in figures


def test_run_counts_repeated_tickets_as_duplicates() -> None:
    tickets = batch_tickets(0, 50, 20)
    figures = run_baseline(tickets + tickets[:10], 20)
    assert figures["settled"] == 50
    assert figures["failed"] == {"duplicate_trade_id": 10}
    assert figures["conserved"] is True


def test_verified_variant_checks_every_signature() -> None:
    tickets = batch_tickets(0, 200, 50)
    signed = sign_tickets(tickets, KeyPair.dev("x"))
    pub, sig, msg = signed[7]
    signed[7] = (pub, sig, msg + b"tampered")
    figures = run_baseline(tickets, 50, synchronous="NORMAL", verify=signed)
    assert figures["settled"] == 200 and figures["verify_signatures"] is False
    verified = figures["verified"]
    assert verified["verify_signatures"] is True
    assert verified["settled"] == 199 and verified["failed"] == {"bad_signature": 1}
    assert verified["conserved"] is True


def test_unknown_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        open_ledger(tmp_path / "ledger.sqlite", "SOMETIMES")


def test_verify_must_match_tickets() -> None:
    tickets = batch_tickets(0, 3, 10)
    with pytest.raises(ValueError, match="2 signatures for 3 tickets"):
        run_baseline(tickets, 10, verify=sign_tickets(tickets[:2], KeyPair.dev("x")))


def test_balances_after_equal_hand_computation(ledger: sqlite3.Connection) -> None:
    tickets = [
        ["T1", "BA-0", "BA-1", "ACME", 10, 150_00],  # BA-0 pays 150,000 cents for 10 ACME
        ["T2", "BA-1", "BA-2", "ACME", 3, 99_99],  # BA-1 pays 29,997
        ["T3", "BA-2", "BA-0", "ACME", 7, 1],  # BA-2 pays 7
    ]
    assert [settle_ticket(ledger, t) for t in tickets] == [None, None, None]
    expected = {
        ("BA-0", "USD"): USD - 150_000 + 7,
        ("BA-0", "ACME"): ACME + 10 - 7,
        ("BA-1", "USD"): USD + 150_000 - 29_997,
        ("BA-1", "ACME"): ACME - 10 + 3,
        ("BA-2", "USD"): USD + 29_997 - 7,
        ("BA-2", "ACME"): ACME - 3 + 7,
        ("BA-3", "USD"): USD,
        ("BA-3", "ACME"): ACME,
    }
    assert {key: get_balance(ledger, *key) for key in expected} == expected
    recorded = ledger.execute("SELECT trade_id, consideration FROM trade ORDER BY trade_id").fetchall()
    assert recorded == [("T1", 150_000), ("T2", 29_997), ("T3", 7)]


def _snapshot(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    balances = conn.execute("SELECT * FROM balance ORDER BY account, asset").fetchall()
    trades = conn.execute("SELECT * FROM trade ORDER BY trade_id").fetchall()
    return balances, trades


def test_duplicate_trade_id_fails_and_changes_nothing(ledger: sqlite3.Connection) -> None:
    assert settle_ticket(ledger, ["D1", "BA-0", "BA-1", "ACME", 5, 100_00]) is None
    before = _snapshot(ledger)
    assert settle_ticket(ledger, ["D1", "BA-2", "BA-3", "ACME", 1, 100_00]) == "duplicate_trade_id"
    assert _snapshot(ledger) == before
    assert not ledger.in_transaction


def test_short_seller_fails_and_changes_nothing(ledger: sqlite3.Connection) -> None:
    before = _snapshot(ledger)
    assert settle_ticket(ledger, ["S1", "BA-0", "BA-1", "ACME", ACME + 1, 1]) == "insufficient_securities"
    assert _snapshot(ledger) == before
    assert not ledger.in_transaction
    # A failed trade leaves no record, so the same id settles once the seller can deliver.
    assert settle_ticket(ledger, ["S1", "BA-0", "BA-1", "ACME", ACME, 1]) is None
    assert get_balance(ledger, "BA-1", "ACME") == 0


def test_short_buyer_fails_and_changes_nothing(ledger: sqlite3.Connection) -> None:
    before = _snapshot(ledger)
    assert settle_ticket(ledger, ["C1", "BA-0", "BA-1", "ACME", 2, USD // 2 + 1]) == "insufficient_cash"
    assert _snapshot(ledger) == before


@pytest.mark.parametrize(
    ("ticket", "code"),
    [
        (["X1", "BA-0", "BA-1", "ACME", 0, 100], "bad_quantity"),
        (["X2", "BA-0", "BA-1", "ACME", 1, -5], "bad_price"),
        (["X3", "BA-0", "BA-1", "NOPE", 1, 100], "unknown_instrument"),
        (["X4", "BA-0", "BA-0", "ACME", 1, 100], "same_account"),
        (["X5", "BA-9", "BA-1", "ACME", 1, 100], "insufficient_cash"),  # never funded
        (["X6", "BA-0", "BA-9", "ACME", 1, 100], "insufficient_securities"),
    ],
)
def test_bad_terms_fail_with_settlements_codes(
    ledger: sqlite3.Connection, ticket: list[object], code: str
) -> None:
    before = _snapshot(ledger)
    assert settle_ticket(ledger, ticket) == code
    assert _snapshot(ledger) == before


def test_credit_to_an_account_without_the_asset_creates_its_row(ledger: sqlite3.Connection) -> None:
    ledger.execute("DELETE FROM balance WHERE account = 'BA-3' AND asset = 'ACME'")
    totals = get_asset_totals(ledger)
    assert settle_ticket(ledger, ["N1", "BA-3", "BA-0", "ACME", 4, 25]) is None
    assert get_balance(ledger, "BA-3", "ACME") == 4
    assert get_asset_totals(ledger) == totals
