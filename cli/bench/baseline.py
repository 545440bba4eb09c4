"""The database baseline for ``clearchain bench``: the same trades settled by one SQLite ledger.

Issue 7 asks the network benchmark to put the chain's throughput beside what a clearing house
would build without a chain: a single-process SQLite ledger (WAL mode) that settles each trade
ticket in its own ACID transaction. This module builds that ledger fresh in a temporary folder,
preloads the bench accounts (``BA-<i>``, funded as in ``cli.bench.executor.bench_genesis``),
and times one transaction per ticket:

    BEGIN IMMEDIATE; refuse a duplicate trade id; read the buyer's cash and the seller's
    securities, refuse (ROLLBACK) if either is short; move cash buyer -> seller and securities
    seller -> buyer (four balance rows); record the trade; COMMIT.

The rules and failure codes are settlement's (contracts/settlement.py) where they apply, with
the consideration from contracts/money.py. An account the ledger never funded holds nothing, so
a ticket naming one fails as short rather than ``unknown_account`` (there is no account table to
tell the two apart). With ``verify``, a second run on a fresh database first checks each
ticket's Ed25519 signature through ``chain.keys.verify_signature``: a clearing house that
authenticates every signed instruction; a bad one fails with ``bad_signature``.

Figures are returned and printed; nothing here is asserted about speed.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from chain.encoding import encode
from chain.keys import KeyPair, verify_signature
from chain.limits import AMOUNT_MAX
from cli.bench.executor import BENCH_FUNDING, batch_tickets
from contracts.money import consideration

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

# The one instrument the bench trades: (settlement currency, decimals), as in the dev genesis.
INSTRUMENTS: dict[str, tuple[str, int]] = {"ACME": ("USD", 0)}

SignedTicket = tuple[bytes, bytes, bytes]  # (public key, signature, message)

SCHEMA = f"""
CREATE TABLE balance (
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount BETWEEN 0 AND {AMOUNT_MAX}),
    PRIMARY KEY (account, asset)
) STRICT, WITHOUT ROWID;
CREATE TABLE trade (
    trade_id TEXT PRIMARY KEY,
    buyer TEXT NOT NULL,
    seller TEXT NOT NULL,
    instrument TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price INTEGER NOT NULL,
    consideration INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"""

# Credits are upserts, so that a credit to an account holding none of the asset yet creates its
# row instead of vanishing in an UPDATE that matches nothing. Debits hit rows just read.
SQL_TRADE_EXISTS = "SELECT 1 FROM trade WHERE trade_id = ?"
SQL_BALANCE = "SELECT amount FROM balance WHERE account = ? AND asset = ?"
SQL_DEBIT = "UPDATE balance SET amount = amount - ? WHERE account = ? AND asset = ?"
SQL_CREDIT = (
    "INSERT INTO balance (account, asset, amount) VALUES (?, ?, ?) "
    "ON CONFLICT (account, asset) DO UPDATE SET amount = amount + excluded.amount"
)
SQL_RECORD_TRADE = "INSERT INTO trade VALUES (?, ?, ?, ?, ?, ?, ?)"


def bench_funding() -> dict[str, int]:
    """What each bench account holds at genesis, per asset, read from the executor bench's
    genesis so that both benches start from the same balances."""
    return dict(BENCH_FUNDING)


def open_ledger(path: Path, synchronous: str) -> tuple[sqlite3.Connection, str]:
    """A fresh ledger database at ``path``: (connection, journal mode SQLite reports).

    The connection is in autocommit mode so that each trade's BEGIN/COMMIT is ours alone.
    """
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous}")
    conn = sqlite3.connect(path, isolation_level=None)
    journal_mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.executescript(SCHEMA)
    return conn, journal_mode


def preload(conn: sqlite3.Connection, account_count: int, funding: dict[str, int]) -> None:
    """Fund ``BA-0`` .. ``BA-<account_count - 1>`` in one transaction (not timed)."""
    rows = ((f"BA-{i}", asset, amount) for i in range(account_count) for asset, amount in funding.items())
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO balance VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")


def get_asset_totals(conn: sqlite3.Connection) -> dict[str, int]:
    """The sum of every asset over all accounts; settlement must leave each unchanged."""
    return dict(
        conn.execute("SELECT asset, SUM(amount) FROM balance GROUP BY asset ORDER BY asset").fetchall()
    )


def get_balance(conn: sqlite3.Connection, account: str, asset: str) -> int:
    """What ``account`` holds of ``asset`` (0 if it never held any)."""
    row = conn.execute(SQL_BALANCE, (account, asset)).fetchone()
    return 0 if row is None else int(row[0])


def compute_terms(ticket: Sequence[Any]) -> tuple[str | None, int]:
    """(failure code or None, consideration) of a ticket's terms, checked without the database,
    in settlement's order (contracts.settlement.check_terms)."""
    _, buyer, seller, instrument, quantity, price = ticket[:6]  # the trade date is not checked here
    if quantity <= 0:
        return "bad_quantity", 0
    if price <= 0:
        return "bad_price", 0
    if instrument not in INSTRUMENTS:
        return "unknown_instrument", 0
    if buyer == seller:
        return "same_account", 0
    cash = consideration(quantity, price, INSTRUMENTS[instrument][1])
    if cash > AMOUNT_MAX:
        return "amount_overflow", 0
    if cash == 0:
        return "zero_consideration", 0
    return None, cash


def _settle_in_transaction(conn: sqlite3.Connection, ticket: Sequence[Any], cash: int) -> str | None:
    """Inside an open transaction: refuse (code) or move both legs and record the trade (None)."""
    trade_id, buyer, seller, instrument, quantity, price = ticket[:6]
    if conn.execute(SQL_TRADE_EXISTS, (trade_id,)).fetchone() is not None:
        return "duplicate_trade_id"
    currency = INSTRUMENTS[instrument][0]
    if get_balance(conn, seller, instrument) < quantity:
        return "insufficient_securities"
    if get_balance(conn, buyer, currency) < cash:
        return "insufficient_cash"
    conn.execute(SQL_DEBIT, (quantity, seller, instrument))
    conn.execute(SQL_CREDIT, (buyer, instrument, quantity))
    conn.execute(SQL_DEBIT, (cash, buyer, currency))
    conn.execute(SQL_CREDIT, (seller, currency, cash))
    conn.execute(SQL_RECORD_TRADE, (trade_id, buyer, seller, instrument, quantity, price, cash))
    return None


def settle_ticket(conn: sqlite3.Connection, ticket: Sequence[Any]) -> str | None:
    """Settle one ticket in its own transaction: None if it settled, else its failure code (and
    the database is as before). A constraint the checks should have prevented (an amount past
    its bounds) rolls back and raises: that is a bug, not a refusal."""
    code, cash = compute_terms(ticket)
    if code is not None:
        return code
    conn.execute("BEGIN IMMEDIATE")
    try:
        code = _settle_in_transaction(conn, ticket, cash)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("ROLLBACK" if code is not None else "COMMIT")
    return code


def sign_tickets(tickets: Sequence[Sequence[Any]], key: KeyPair) -> list[SignedTicket]:
    """(public key, signature, message) per ticket, the message being the ticket's canonical
    encoding: the signed instructions the verifying variant authenticates. Not timed."""
    signed = []
    for ticket in tickets:
        message = encode(list(ticket))
        signed.append((key.public, key.sign(message), message))
    return signed


def _settle_all(
    conn: sqlite3.Connection, tickets: Sequence[Sequence[Any]], verify: Sequence[SignedTicket] | None
) -> Counter[str]:
    """The timed loop: failures by code."""
    failed: Counter[str] = Counter()
    for i, ticket in enumerate(tickets):
        if verify is not None and not verify_signature(*verify[i]):
            failed["bad_signature"] += 1
            continue
        code = settle_ticket(conn, ticket)
        if code is not None:
            failed[code] += 1
    return failed


def run_once(
    tickets: Sequence[Sequence[Any]],
    account_count: int,
    synchronous: str,
    verify: Sequence[SignedTicket] | None,
) -> dict[str, Any]:
    """One run on a fresh database in a temporary folder, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="clearchain-baseline-"))
    try:
        conn, journal_mode = open_ledger(workdir / "ledger.sqlite", synchronous)
        try:
            preload(conn, account_count, bench_funding())
            totals_before = get_asset_totals(conn)
            start, cpu_start = time.perf_counter(), time.process_time()
            failed = _settle_all(conn, tickets, verify)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            conserved = get_asset_totals(conn) == totals_before
        finally:
            conn.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    trades = len(tickets)
    return {
        "trades": trades,
        "accounts": account_count,
        "settled": trades - sum(failed.values()),
        "failed": dict(sorted(failed.items())),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "trades_per_s": round(trades / seconds) if seconds > 0 else None,
        "trades_per_cpu_s": round(trades / cpu_seconds) if cpu_seconds > 0 else None,
        "synchronous": synchronous,
        "journal_mode": journal_mode,
        "sqlite_version": sqlite3.sqlite_version,
        "verify_signatures": verify is not None,
        "conserved": conserved,
    }


def run_baseline(
    tickets: list[list[Any]],
    accounts: int,
    *,
    synchronous: str = "FULL",
    verify: list[tuple[bytes, bytes, bytes]] | None = None,
) -> dict[str, Any]:
    """Settle ``tickets`` on a fresh SQLite ledger of ``accounts`` funded accounts, one ACID
    transaction per ticket, and return the figures of that run.

    With ``verify`` (one (public key, signature, message) per ticket), a second run on another
    fresh database verifies each signature before its transaction; its figures are under
    ``"verified"``, so both variants come from the same call and the same tickets.
    """
    if verify is not None and len(verify) != len(tickets):
        raise ValueError(f"verify holds {len(verify)} signatures for {len(tickets)} tickets")
    figures = run_once(tickets, accounts, synchronous.upper(), None)
    if verify is not None:
        figures["verified"] = run_once(tickets, accounts, synchronous.upper(), verify)
    return figures


def describe(figures: dict[str, Any]) -> str:
    """One line of a run's figures."""
    failed = ", ".join(f"{code} {n:,}" for code, n in figures["failed"].items()) or "none"
    label = "verified + SQLite" if figures["verify_signatures"] else "SQLite"
    return (
        f"{label} (synchronous={figures['synchronous']}, journal={figures['journal_mode']}): "
        f"{figures['settled']:,}/{figures['trades']:,} settled in {figures['seconds']:.2f} s = "
        f"{figures['trades_per_s']:,} trades/s, {figures['trades_per_cpu_s']:,} per CPU second; "
        f"failed: {failed}; conserved: {figures['conserved']}"
    )


@click.command()
@click.option("--trades", default=10_000, show_default=True, help="trade tickets to settle")
@click.option("--accounts", "account_count", default=10_000, show_default=True, help="funded accounts")
@click.option(
    "--synchronous",
    default="FULL",
    show_default=True,
    type=click.Choice(SYNCHRONOUS_MODES, case_sensitive=False),
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="also run the variant that verifies a signature per ticket",
)
def main(trades: int, account_count: int, synchronous: str, verify: bool) -> None:
    """Print the SQLite baseline's figures for the executor bench's trade tickets."""
    tickets = batch_tickets(0, trades, account_count)
    signed = sign_tickets(tickets, KeyPair.dev("x")) if verify else None
    figures = run_baseline(tickets, account_count, synchronous=synchronous, verify=signed)
    click.echo(f"SQLite {figures['sqlite_version']}; {trades:,} tickets over {account_count:,} accounts")
    click.echo(describe(figures))
    if "verified" in figures:
        click.echo(describe(figures["verified"]))


if __name__ == "__main__":
    main()
