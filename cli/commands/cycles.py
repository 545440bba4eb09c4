"""``clearchain cycle``: settlement cycles with multilateral netting (contracts/cycles.py).

An exchange reports T+N trades (``cycle submit``); they settle, netted per account and asset, when
the cycle of their settlement date closes. A clearing engineer reads the calendar and the open
cycles (``cycle list``), a cycle's report with gross, net and netting ratio per asset, or its
projected outcome while it is open (``cycle show``), its trades and failures (``cycle trades``), an
account's pending obligations (``cycle pending``) and one trade (``cycle status``).

Quantities and prices are typed in display units and converted exactly (cli/commands/tickets.py); a
cycle's DATE is its day number (``cycle list`` shows today's), or ``today`` / ``T+N``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cli.commands.plumbing import (
    echo_json,
    fields_text,
    json_option,
    session_options,
    table,
    time_text,
)
from cli.commands.session import Session, read_view, reading_command
from cli.commands.tickets import (
    compute_trade_id,
    exchange_option,
    given_trade_date,
    given_trade_id,
    submit_to_cycle,
    ticket_date,
    ticket_options,
)
from cli.inputs import InputError, quoted

CONTRACT = "cycles"


def resolve_date(session: Session, text: str) -> int:
    """A cycle date from ``D``, ``today`` or ``T+N`` (relative to the node's head time)."""
    spec = text.strip().lower()
    if spec.isascii() and spec.isdigit():  # str.isdigit alone takes "²" and "٣"
        return int(spec)
    if spec == "today" or spec.startswith("t+"):
        offset = 0 if spec == "today" else _digits(spec[2:], text)
        return int(read_view(session, CONTRACT, "cycles", limit=1)["today"]) + offset
    raise InputError("bad_date", f"date {quoted(text)}: expected a day number, today or T+N")


def _digits(text: str, original: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InputError("bad_date", f"date {quoted(original)}: expected T+N with N a whole number")
    return int(text)


def ratio_text(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def values_table(session: Session, values: list[dict[str, Any]]) -> str:
    rows = [
        (
            v["asset"],
            session.display(v["gross"], v["asset"]),
            session.display(v["net"], v["asset"]),
            ratio_text(v["netting_bps"]),
        )
        for v in values
    ]
    return table(["asset", "gross", "net", "netting saved"], rows, right=(1, 2, 3))


@click.group("cycle")
def cycle() -> None:
    """Settlement cycles: T+N trades netted and settled at the cycle's close."""


@cycle.command("submit")
@ticket_options(
    click.option("--tplus", type=click.IntRange(0, 30), default=1, show_default=True, help="Settle on T+N.")
)
@session_options
@json_option
def cycle_submit(
    buyer: str, seller: str, instrument: str, qty: str, price: str, tplus: int, trade_id: str | None,
    trade_date: str | None, exchange: str, node_url: str | None, keys_dir: Path, as_json: bool,
) -> None:  # fmt: skip
    """Report one trade for settlement on T+N; it joins the cycle of its settlement date."""
    day = ticket_date(given_trade_date(trade_date))  # bad input: nothing read or sent
    session = Session(node_url, keys_dir)
    trade_id = given_trade_id(trade_id) or compute_trade_id(
        exchange, buyer, seller, instrument, qty, price, time.time_ns()
    )
    submit_to_cycle(session, exchange, trade_id, buyer, seller, instrument, qty, price, tplus, day, as_json)


@cycle.command("list")
@click.option("--all", "show_all", is_flag=True, help="Closed cycles too (default: open ones).")
@click.option("--after", type=int, default=None, metavar="DATE", help="Start after this date (paging).")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@reading_command
def cycle_list(show_all: bool, after: int | None, limit: int, session: Session, as_json: bool) -> None:
    """Today's date and close time, and the open (or all) cycles by date."""
    doc = read_view(
        session, CONTRACT, "cycles", status="all" if show_all else "open", after=after, limit=limit
    )
    if as_json:
        echo_json(doc)
        return
    click.echo(f"today is cycle date {doc['today']}; its cycle closes {time_text(doc['today_close_at_ms'])} "
               f"(day {doc['day_ms']:,} ms, T+N up to {doc['tplus_max']})")  # fmt: skip
    rows = [
        (
            c["date"],
            c["status"],
            time_text(c["close_at_ms"]),
            c["trades"],
            c["settled"] if c["status"] == "closed" else "",
            c["failed"] if c["status"] == "closed" else "",
        )
        for c in doc["cycles"]
    ]
    click.echo(
        table(["date", "status", "closes", "trades", "settled", "failed"], rows, right=(0, 3, 4, 5))
        if rows
        else "no cycles"
    )
    if doc.get("next") is not None:
        click.echo(f"more: --after {doc['next']}")


@cycle.command("show")
@click.argument("date_text", metavar="DATE")
@reading_command
def cycle_show(date_text: str, session: Session, as_json: bool) -> None:
    """A cycle's report: gross, net and netting ratio per asset, trades settled and failed
    (an open cycle: its projected close at current balances)."""
    doc = read_view(session, CONTRACT, "cycle", date=resolve_date(session, date_text))
    if as_json:
        echo_json(doc)
        return
    pairs: list[tuple[str, Any]] = [
        ("cycle", doc["date"]), ("status", doc["status"]), ("closes", time_text(doc["close_at_ms"])),
        ("trades", doc["trades"]), ("opened at", f"height {doc['opened_height']}"),
    ]  # fmt: skip
    if doc["status"] == "closed":
        pairs += [
            ("settled", doc["settled"]),
            ("failed", doc["failed"]),
            ("closed at", f"height {doc['closed_height']}"),
        ]
    click.echo(fields_text(pairs))
    values = doc["values"] if doc["status"] == "closed" else doc["projected"]["values"]
    click.echo("" if doc["status"] == "closed" else "projected at current balances:")
    click.echo(values_table(session, values) if values else "nothing settles")
    failed = doc.get("projected", {}).get("failed", [])
    if failed:
        click.echo(
            table(
                ["would fail", "code", "short account"],
                [(f["trade_id"], f["code"], f["account"]) for f in failed],
            )
        )
    elif doc["failed"]:
        click.echo(f"failed trades: clearchain cycle trades {doc['date']} --status failed")


@cycle.command("trades")
@click.argument("date_text", metavar="DATE")
@click.option("--status", type=click.Choice(["pending", "settled", "failed"]), default=None)
@click.option("--after", type=int, default=None, metavar="SEQ", help="Start after this place in the cycle.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@reading_command
def cycle_trades(
    date_text: str, status: str | None, after: int | None, limit: int, session: Session, as_json: bool
) -> None:
    """The trades of a cycle in arrival order, with how each ended."""
    doc = read_view(
        session,
        CONTRACT,
        "trades",
        date=resolve_date(session, date_text),
        status=status,
        after=after,
        limit=limit,
    )
    if as_json:
        echo_json(doc)
        return
    rows = [
        (t["seq"], t["trade_id"], t["buyer"], t["seller"], t["instrument"], session.display(t["quantity"], t["instrument"]),
         session.display(t["consideration"], t["currency"]), t["status"], t["code"] or "", t["short_account"] or "")
        for t in doc["trades"]
    ]  # fmt: skip
    headers = [
        "seq",
        "trade",
        "buyer",
        "seller",
        "instrument",
        "qty",
        "consideration",
        "status",
        "code",
        "short account",
    ]
    click.echo(table(headers, rows, right=(0, 5, 6)) if rows else "no trades")
    if doc.get("next") is not None:
        click.echo(f"more: --after {doc['next']}")


@cycle.command("pending")
@click.argument("account")
@click.option("--after", default=None, metavar="KEY", help="Paging key printed by the previous page.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@reading_command
def cycle_pending(account: str, after: str | None, limit: int, session: Session, as_json: bool) -> None:
    """An account's trades waiting in open cycles, and what it owes or receives net per cycle."""
    doc = read_view(session, CONTRACT, "pending", account=account, after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    if not doc["trades"]:
        click.echo(f"{account} has no pending cycle trades")
        return
    rows = [
        (t["date"], t["trade_id"], t["side"], t["instrument"], session.display(t["quantity"], t["instrument"]),
         session.display(t["consideration"], t["currency"]), t["currency"])
        for t in doc["trades"]
    ]  # fmt: skip
    click.echo(
        table(
            ["date", "trade", "side", "instrument", "qty", "consideration", "currency"], rows, right=(0, 4, 5)
        )
    )
    click.echo("")
    net_rows = [
        (n["date"], n["asset"], session.display(n["net"], n["asset"], signed=True)) for n in doc["net"]
    ]
    click.echo(table(["date", "asset", "net (+ receives, - delivers/pays)"], net_rows, right=(0, 2)))
    if doc.get("next") is not None:
        click.echo(f"more (the net covers this page only): --after {doc['next']}")


@cycle.command("status")
@click.argument("trade_id", metavar="ID")
@exchange_option
@reading_command
def cycle_status(trade_id: str, exchange: str, session: Session, as_json: bool) -> None:
    """Where a T+N trade is: its cycle, and settled, failed (why) or pending."""
    doc = read_view(session, CONTRACT, "trade", exchange=exchange, trade_id=trade_id)
    if as_json:
        echo_json(doc)
        return
    why = ""
    if doc["status"] == "failed":
        why = f" ({doc['code']}" + (f", account {doc['short_account']})" if doc["short_account"] else ")")
    click.echo(
        f"trade {trade_id} ({exchange}): {doc['status']}{why} in cycle {doc['date']} (T+{doc['tplus']})"
    )


def register(main: click.Group) -> None:
    main.add_command(cycle)
