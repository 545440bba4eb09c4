"""Trade tickets as ``trade submit`` and ``cycle submit`` type them: the ticket's options, its
conversion from display units to minor units, its default trade id, and reporting a T+N ticket to
its netting cycle (``cycles.submit``). Both command families use this module, so neither imports
the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

from chain.limits import PRICE_MAX, QUANTITY_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import echo_json, time_text
from cli.commands.session import Session, send_call
from cli.inputs import parse_id
from cli.trade_dates import parse_trade_date, today

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_EXCHANGE = "xchg-alpha"
CYCLES = "cycles"


def exchange_option(f: F) -> F:
    return click.option(
        "--exchange", default=DEFAULT_EXCHANGE, show_default=True, metavar="PARTICIPANT",
        help="The exchange that reports (and signs) the trade; trade ids are scoped by it.",
    )(f)  # fmt: skip


def ticket_options(settles: Callable[[F], F]) -> Callable[[F], F]:
    """The options of one ticket (``--buyer`` .. ``--price``, ``--trade-id``, ``--trade-date``,
    ``--exchange``), with
    ``settles``, the option that says when it settles, after the price."""
    options: list[Callable[[Any], Any]] = [
        click.option("--buyer", required=True, metavar="ACCOUNT", help="The buyer's clearing account (pays cash)."),
        click.option("--seller", required=True, metavar="ACCOUNT", help="The seller's clearing account (delivers)."),
        click.option("--instrument", required=True, metavar="ID"),
        click.option("--qty", required=True, help="Quantity in units of the instrument, e.g. 1.5."),
        click.option("--price", required=True, help="Cash per one unit of the instrument, e.g. 182.50."),
        settles,
        click.option(
            "--trade-id", default=None,
            help="Default: T- and a hash of the ticket and the current time. Given, it must be a valid id.",
        ),
        click.option(
            "--trade-date", default=None, metavar="YYYY-MM-DD",
            help="The trade's date (UTC). Default: today by this machine's clock. The chain accepts "
            "dates from settlement.trade_id_days days ago to tomorrow.",
        ),
        exchange_option,
    ]  # fmt: skip

    def decorate(f: F) -> F:
        for option in reversed(options):  # as if written top to bottom above the function
            f = option(f)
        return f

    return decorate


def given_trade_id(text: str | None) -> str | None:
    """``--trade-id`` as typed: None when the option was not given (the command makes one up),
    else a valid id. An empty or invalid id given explicitly (an unset shell variable in a retry
    script) is refused with InputError ``bad_id``: silently generating one would turn off the
    retry safety the id exists for."""
    return None if text is None else parse_id(text, "trade id")


def given_trade_date(text: str | None) -> int | None:
    """``--trade-date`` as typed, as a day number; None when not given. Raises InputError
    ``bad_date``."""
    return None if text is None else parse_trade_date(text)


def ticket_date(given: int | None) -> int:
    """The trade date a ticket carries: the one given, else today (UTC, the local clock)."""
    return today() if given is None else given


def make_ticket(
    session: Session,
    trade_id: str,
    buyer: str,
    seller: str,
    instrument: str,
    qty: str,
    price: str,
    trade_date: int,
) -> list[Any]:
    """A ticket in minor units from display strings. Raises InputError ``bad_id``, CliError
    ``unknown_instrument``, AmountError ``bad_amount``.

    A cash instrument is not refused here (the chain fails it with ``instrument_is_cash``); its
    price is read with its own decimals.
    """
    for what, value in (("trade id", trade_id), ("buyer", buyer), ("seller", seller)):
        parse_id(value, what)
    ins = session.instrument(instrument)
    quantity = parse_amount(qty, int(ins["decimals"]), QUANTITY_MAX, "quantity")
    price_decimals = session.decimals(ins["currency"]) if ins.get("currency") else int(ins["decimals"])
    return [
        trade_id,
        buyer,
        seller,
        instrument,
        quantity,
        parse_amount(price, price_decimals, PRICE_MAX, "price"),
        trade_date,
    ]


def compute_trade_id(
    exchange: str, buyer: str, seller: str, instrument: str, qty: str, price: str, time_ns: int
) -> str:
    """A trade id from the ticket's content and the time it was typed: ``T-`` and 20 hex digits."""
    text = "|".join((exchange, buyer, seller, instrument, qty, price, str(time_ns)))
    return "T-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def submit_to_cycle(
    session: Session, exchange: str, trade_id: str, buyer: str, seller: str, instrument: str, qty: str, price: str,
    tplus: int, trade_date: int, as_json: bool,
) -> None:  # fmt: skip
    """Send ``cycles.submit`` for one ticket and print where it settles (also ``trade submit
    --settlement T+N``)."""
    args = [*make_ticket(session, trade_id, buyer, seller, instrument, qty, price, trade_date), tplus]
    status, events = send_call(session, exchange, CYCLES, "submit", args)
    accepted = next(f for _, name, f in events if name == "trade_accepted")
    if as_json:
        echo_json({"exchange": exchange, "trade_id": trade_id, "accepted": accepted, "tx": status})
        return
    currency = session.instrument(instrument).get("currency") or instrument
    click.echo(
        f"accepted {trade_id}: {buyer} buys {session.display(args[4], instrument)} {instrument} from {seller} "
        f"for {currency} {session.display(int(accepted['consideration']), currency)} on T+{tplus}: cycle "
        f"{accepted['date']}, closes {time_text(int(accepted['close_at_ms']))} (height {status['height']})"
    )
