"""``clearchain corporate dividend | split | cancel | show | list | entitlements``: corporate
actions (contracts/corporate_actions.py) through a node's API.

The issuer announces; the chain takes the record at the record height and pays or applies it by
itself. Cash amounts (a dividend per share, a split's reference price) are display decimals of
the instrument's currency, converted exactly with its decimals; ``--in-blocks N`` puts the
record height N blocks after the node's head when the command runs.
"""

from __future__ import annotations

import re
from typing import Any

import click

from chain.limits import PRICE_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import CliError, echo_json, fields_text, table, where
from cli.commands.session import Session, read_view, reading_command, send_call, signing_command

CONTRACT = "corporate_actions"
IN_BLOCKS_DEFAULT = 5
_RATIO = re.compile(r"([0-9]{1,4}):([0-9]{1,4})", re.ASCII)
_CASH_FIELDS = ("rate", "funded", "locked", "entitled", "paid", "returned", "dust")


def _record_height(session: Session, record_height: int | None, in_blocks: int | None) -> int:
    if record_height is not None and in_blocks is not None:
        raise CliError("bad_arguments", "give --record-height or --in-blocks, not both")
    if record_height is not None:
        return record_height
    return int(session.get("/status")["height"]) + (in_blocks or IN_BLOCKS_DEFAULT)


def _currency(session: Session, instrument: str) -> str:
    currency = session.instrument(instrument).get("currency")
    if not currency:
        raise CliError("instrument_is_cash", f"{instrument} is cash; it has no corporate actions")
    return str(currency)


def _announced(
    as_json: bool, status: dict[str, Any], events: list[tuple[str, str, dict[str, Any]]], what: str
) -> None:
    fields = next((f for c, n, f in events if c == CONTRACT and n == "corporate_action_announced"), {})
    if as_json:
        echo_json({"id": fields.get("id"), "height": status["height"], "tx": status["hash"], "event": fields})
        return
    click.echo(
        f"corporate action {fields.get('id')}: {what}, record at height {fields.get('record_height')} "
        f"({where(status)})"
    )


def _record_options(f: Any) -> Any:
    f = click.option(
        "--in-blocks",
        type=click.IntRange(2),
        default=None,
        help=f"Record this many blocks after the head [default: {IN_BLOCKS_DEFAULT}].",
    )(f)
    return click.option(
        "--record-height",
        type=click.IntRange(1),
        default=None,
        help="The record height (holders at the end of that block are entitled).",
    )(f)


@click.group()
def corporate() -> None:
    """Corporate actions: cash dividends and stock splits for the holders of record."""


@corporate.command("dividend")
@click.option("--instrument", required=True, help="The security, e.g. ACME.")
@click.option(
    "--amount", required=True, help="Cash per whole unit, in display units of its currency, e.g. 0.25."
)
@click.option(
    "--payer",
    required=True,
    metavar="ACCOUNT",
    help="The issuer's account that pays (the total is locked now).",
)
@_record_options
@signing_command(required=True, help_text="The instrument's registered issuer.")
def dividend_cmd(instrument: str, amount: str, payer: str, record_height: int | None, in_blocks: int | None,
                 signer: str, session: Session, as_json: bool) -> None:  # fmt: skip
    """Announce a cash dividend of AMOUNT per unit of INSTRUMENT to its holders of record."""
    currency = _currency(session, instrument)
    units = parse_amount(amount, session.decimals(currency), PRICE_MAX, "amount")
    height = _record_height(session, record_height, in_blocks)
    status, events = send_call(
        session, signer, CONTRACT, "announce_dividend", [instrument, units, height, payer]
    )
    _announced(
        as_json, status, events, f"dividend of {currency} {session.display(units, currency)} per {instrument}"
    )


def parse_ratio(text: str) -> tuple[int, int]:
    """``"3:2"`` -> (3, 2). Raises CliError ``bad_ratio``."""
    match = _RATIO.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise CliError("bad_ratio", f"ratio {text!r}: expected NEW:OLD, e.g. 2:1 or 1:10")
    return int(match.group(1)), int(match.group(2))


@corporate.command("split")
@click.option("--instrument", required=True, help="The security, e.g. ACME.")
@click.option("--ratio", required=True, help="NEW:OLD units, e.g. 2:1, 3:2, or 1:10 (a reverse split).")
@click.option(
    "--reference-price",
    default=None,
    help="Cash in lieu of fractions, per whole pre-split unit (display units).",
)
@click.option(
    "--payer", required=True, metavar="ACCOUNT", help="The issuer's account that pays cash in lieu."
)
@_record_options
@signing_command(required=True, help_text="The instrument's registered issuer.")
def split_cmd(instrument: str, ratio: str, reference_price: str | None, payer: str, record_height: int | None,
              in_blocks: int | None, signer: str, session: Session, as_json: bool) -> None:  # fmt: skip
    """Announce a NEW:OLD split of INSTRUMENT for its holders of record."""
    num, den = parse_ratio(ratio)
    currency = _currency(session, instrument)
    price = (
        0
        if reference_price is None
        else parse_amount(reference_price, session.decimals(currency), PRICE_MAX, "reference price")
    )
    height = _record_height(session, record_height, in_blocks)
    status, events = send_call(
        session, signer, CONTRACT, "announce_split", [instrument, num, den, height, price, payer]
    )
    _announced(as_json, status, events, f"{num}:{den} split of {instrument}")


@corporate.command("cancel")
@click.argument("action_id", metavar="ID", type=click.IntRange(1))
@signing_command(required=True, help_text="The issuer that announced it.")
def cancel_cmd(action_id: int, signer: str, session: Session, as_json: bool) -> None:
    """Cancel action ID before its record height; the locked cash returns to the payer."""
    status, events = send_call(session, signer, CONTRACT, "cancel", [action_id])
    if as_json:
        echo_json(status)
        return
    click.echo(f"corporate action {action_id} cancelled ({where(status)})")


def _display_action(session: Session, doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The action's fields, cash in display units of its currency."""
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if key in _CASH_FIELDS and isinstance(value, int):
            if key == "rate" and doc["kind"] == "split" and value == 0:
                out.append(("reference_price", "none"))
                continue
            name = "reference_price" if key == "rate" and doc["kind"] == "split" else key
            out.append((name, f"{doc['currency']} {session.display(value, doc['currency'])}"))
        else:
            out.append((key, value))
    return out


@corporate.command("show")
@click.argument("action_id", metavar="ID", type=click.IntRange(1))
@reading_command
def show_cmd(action_id: int, session: Session, as_json: bool) -> None:
    """Action ID: status, record, totals funded / paid / returned (and dust), counts."""
    doc = read_view(session, CONTRACT, "action", id=action_id)
    if as_json:
        echo_json(doc)
        return
    click.echo(fields_text(_display_action(session, doc)))


@corporate.command("list")
@click.option("--after", type=click.IntRange(0), default=None, help="Actions after this id.")
@click.option("--limit", type=click.IntRange(1, 500), default=None, help="At most this many (default 50).")
@reading_command
def list_cmd(after: int | None, limit: int | None, session: Session, as_json: bool) -> None:
    """Corporate actions by id."""
    doc = read_view(session, CONTRACT, "actions", after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    rows = [(a["id"], a["kind"], a["instrument"], a["issuer"], a["record_height"], a["status"],
             f"{a['num']}:{a['den']}" if a["kind"] == "split" else session.display(a["rate"], a["currency"]),
             a["holders"]) for a in doc["actions"]]  # fmt: skip
    click.echo(
        table(
            ["id", "kind", "instrument", "issuer", "record", "status", "terms", "holders"],
            rows,
            right=(0, 4, 7),
        )
        if rows
        else "no corporate actions"
    )
    if doc.get("next"):
        click.echo(f"more: clearchain corporate list --after {doc['next']}")


@corporate.command("entitlements")
@click.argument("action_id", metavar="ID", type=click.IntRange(1))
@click.option("--account", default=None, help="Only this account's entitlement.")
@click.option("--after", default=None, metavar="ACCOUNT", help="The page after this account.")
@click.option("--limit", type=click.IntRange(1, 500), default=None, help="At most this many (default 100).")
@reading_command
def entitlements_cmd(
    action_id: int, account: str | None, after: str | None, limit: int | None, session: Session, as_json: bool
) -> None:
    """The holders of record of action ID: quantity, cash, new quantity, status."""
    doc = read_view(
        session, CONTRACT, "entitlements", id=action_id, account=account, after=after, limit=limit
    )
    if as_json:
        echo_json(doc)
        return
    action = read_view(session, CONTRACT, "action", id=action_id)
    rows_in = [doc] if account else doc["entitlements"]
    currency, iid = action["currency"], action["instrument"]
    rows = [(e["account"], session.display(e["quantity"], iid), session.display(e["new_quantity"], iid),
             session.display(e["cash"], currency), e["status"], e["code"]) for e in rows_in]  # fmt: skip
    click.echo(
        table(
            ["account", "quantity", "new quantity", f"cash ({currency})", "status", "code"],
            rows,
            right=(1, 2, 3),
        )
    )
    if not account and doc.get("next"):
        click.echo(f"more: clearchain corporate entitlements {action_id} --after {doc['next']}")


def register(main: click.Group) -> None:
    main.add_command(corporate)
