"""``clearchain margin ...``: margin, collateral and the default waterfall (contracts/margin.py)
through a node's API.

Members ``post`` and ``withdraw`` collateral and pay into the guarantee fund (``fund
contribute``); anyone with an account funds the insurance fund (``fund insure``); the exchange
records positions (``position open | close``); anyone asks for a ``check``; admins set
``rates``, ``haircut`` and ``disburse`` what defaults collected. Reads: ``status MEMBER``,
``fund show``, ``defaults``, ``default ID``, ``rates show``. Amounts and prices are display
decimals converted exactly with the asset's decimals (a quantity with the instrument's, a price
and a cash amount with the margin currency's).
"""

from __future__ import annotations

from typing import Any

import click

from chain.limits import AMOUNT_MAX, PRICE_MAX, QUANTITY_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import CliError, echo_json, echo_sent, events_named, fields_text, table, where
from cli.commands.session import Session, read_view, reading_command, send_call, signing_command

CONTRACT = "margin"


def _currency(session: Session) -> str:
    currency = read_view(session, CONTRACT, "funds")["currency"]
    if not currency:
        raise CliError("no_margin_currency", "the chain has no margin currency")
    return str(currency)


def _signed_quantity(session: Session, text: str, iid: str) -> int:
    """A signed display quantity ("-100", "2.5") in the instrument's minor units."""
    negative = text.strip().startswith("-")
    units = parse_amount(text.strip().removeprefix("-"), session.decimals(iid), QUANTITY_MAX, "quantity")
    return -units if negative else units


def _bps(value: Any) -> str:
    return "" if value is None else f"{int(value) / 100:.2f}%"


def _send(
    session: Session, signer: str, method: str, args: list[Any], as_json: bool, line: str
) -> list[tuple[str, str, dict[str, Any]]]:
    status, events = send_call(session, signer, CONTRACT, method, args)
    echo_sent(status, as_json, line)
    return events


@click.group()
def margin() -> None:
    """Margin and collateral: positions, margin calls, defaults and the waterfall."""


# --- collateral ---------------------------------------------------------------------------------
@margin.command("post")
@click.option("--account", required=True, help="An account the member owns.")
@click.option("--asset", required=True, help="The margin currency, or a security with a haircut.")
@click.option("--amount", required=True, help="Display units, e.g. 25000.00.")
@signing_command(required=True, help_text="The clearing member.")
def post_cmd(account: str, asset: str, amount: str, signer: str, session: Session, as_json: bool) -> None:
    """Post AMOUNT of ASSET from ACCOUNT as collateral (it clears a call it now meets)."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    events = _send(
        session,
        signer,
        "post",
        [account, asset, units],
        as_json,
        f"{signer} posted {asset} {session.display(units, asset)} from {account}",
    )
    if not as_json and events_named(events, CONTRACT, "margin_call_met"):
        click.echo(f"margin call {events_named(events, CONTRACT, 'margin_call_met')[0]['call_id']} met")


@margin.command("withdraw")
@click.option("--account", required=True, help="An account the member owns.")
@click.option("--asset", required=True)
@click.option("--amount", required=True, help="Display units.")
@signing_command(required=True, help_text="The clearing member.")
def withdraw_cmd(account: str, asset: str, amount: str, signer: str, session: Session, as_json: bool) -> None:
    """Take back collateral above the initial requirement into ACCOUNT."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    _send(
        session,
        signer,
        "withdraw",
        [account, asset, units],
        as_json,
        f"{signer} withdrew {asset} {session.display(units, asset)} to {account}",
    )


# --- positions ----------------------------------------------------------------------------------
@margin.group("position")
def position() -> None:
    """The exchange records cleared positions (signed quantity: + long, - short)."""


@position.command("open")
@click.option("--member", required=True)
@click.option("--instrument", required=True)
@click.option("--qty", required=True, help="Signed display quantity, e.g. 100 or -100.")
@click.option("--price", "price_text", required=True, help="Trade price in display units, e.g. 50.00.")
@signing_command(default="xchg-alpha")
def position_open(
    member: str, instrument: str, qty: str, price_text: str, signer: str, session: Session, as_json: bool
) -> None:
    """Add QTY of INSTRUMENT at PRICE to MEMBER's position (needs initial margin)."""
    currency = session.instrument(instrument).get("currency") or instrument
    units = _signed_quantity(session, qty, instrument)
    price = parse_amount(price_text, session.decimals(currency), PRICE_MAX, "price")
    events = _send(session, signer, "open_position", [member, instrument, units, price], as_json,
                   f"{member} {instrument} {session.display(units, instrument, signed=units < 0)} at {session.display(price, currency)}")  # fmt: skip
    if not as_json:
        f = events_named(events, CONTRACT, "position_opened")[0]
        click.echo(
            f"position {session.display(int(f['position']), instrument, signed=True)}, entry price {session.display(int(f['entry_price']), currency)}"
        )


@position.command("close")
@click.option("--member", required=True)
@click.option("--instrument", required=True)
@signing_command(default="xchg-alpha")
def position_close(member: str, instrument: str, signer: str, session: Session, as_json: bool) -> None:
    """Report MEMBER's position in INSTRUMENT closed."""
    _send(
        session,
        signer,
        "close_position",
        [member, instrument],
        as_json,
        f"closed {member}'s position in {instrument}",
    )


# --- checks ---------------------------------------------------------------------------------------
@margin.command("check")
@click.argument("member")
@signing_command(required=True, help_text="Any participant.")
def check_cmd(member: str, signer: str, session: Session, as_json: bool) -> None:
    """Check MEMBER's margin now: open a call, clear one, or default an overdue one."""
    status, events = send_call(session, signer, CONTRACT, "check", [member])
    if as_json:
        echo_json(status)
        return
    currency = _currency(session)
    f = events_named(events, CONTRACT, "margin_checked")[0]
    click.echo(f"{member}: {f['outcome']} - collateral {session.display(int(f['collateral']), currency)}, "
               f"initial {session.display(int(f['initial']), currency)}, maintenance {session.display(int(f['maintenance']), currency)} ({where(status)})")  # fmt: skip
    for call in events_named(events, CONTRACT, "margin_call"):
        click.echo(
            f"MARGIN CALL {call['call_id']}: top up {session.display(int(call['top_up']), currency)} by height {call['due_height']}"
        )
    for d in events_named(events, CONTRACT, "member_defaulted"):
        click.echo(
            f"DEFAULT {d['default_id']}: loss {session.display(int(d['loss']), currency)}, uncovered {session.display(int(d['uncovered']), currency)}"
        )


@margin.command("status")
@click.argument("member")
@reading_command
def status_cmd(member: str, session: Session, as_json: bool) -> None:
    """MEMBER's positions, collateral, requirements, excess and open call."""
    doc = read_view(session, CONTRACT, "status", member=member)
    if as_json:
        echo_json(doc)
        return
    cur = str(doc["currency"])

    def money(v: Any) -> str:
        return "no price" if v is None else session.display(int(v), cur, signed=int(v) < 0)

    click.echo(f"{member}: margin in {cur} at height {doc['height']}")
    if doc["positions"]:
        rows = [
            [
                p["instrument"],
                session.display(p["quantity"], p["instrument"], signed=True),
                money(p["entry_price"]),
                money(p["price"]),
                _bps(p["initial_bps"]),
                _bps(p["maintenance_bps"]),
            ]
            for p in doc["positions"]
        ]
        click.echo(table(["INSTRUMENT", "QTY", "ENTRY", "PRICE", "IM", "MM"], rows, right=(1, 2, 3, 4, 5)))
    if doc["collateral"]:
        rows = [
            [c["asset"], session.display(c["amount"], c["asset"]), _bps(c["haircut_bps"]), money(c["value"])]
            for c in doc["collateral"]
        ]
        click.echo(table(["COLLATERAL", "AMOUNT", "HAIRCUT", "VALUE"], rows, right=(1, 2, 3)))
    call = doc["call"]
    click.echo(fields_text([
        ("initial margin", money(doc["initial"])),
        ("maintenance margin", money(doc["maintenance"])),
        ("unrealised loss", money(doc["unrealised_loss"])),
        ("collateral value", money(doc["collateral_value"])),
        ("excess", money(doc["excess"])),
        ("margin call", "none" if call is None else f"{call['id']}: top up {money(call['top_up'])} by height {call['due_height']}"),
        ("guarantee fund", money(doc["guarantee_fund"])),
    ]))  # fmt: skip


# --- funds ----------------------------------------------------------------------------------------
@margin.group("fund")
def fund() -> None:
    """The guarantee fund (members' contributions) and the insurance fund."""


@fund.command("contribute")
@click.option("--account", required=True, help="An account the member owns.")
@click.option("--amount", required=True, help="Display units of the margin currency.")
@signing_command(required=True, help_text="The clearing member.")
def fund_contribute(account: str, amount: str, signer: str, session: Session, as_json: bool) -> None:
    """Pay AMOUNT into the guarantee fund (it leaves only through a default's waterfall)."""
    _pay_in(session, signer, "contribute", account, amount, as_json, "contributed {} to the guarantee fund")


@fund.command("insure")
@click.option("--account", required=True, help="An account the signer owns.")
@click.option("--amount", required=True, help="Display units of the margin currency.")
@signing_command(required=True, help_text="The account's owner.")
def fund_insure(account: str, amount: str, signer: str, session: Session, as_json: bool) -> None:
    """Pay AMOUNT into the insurance fund."""
    _pay_in(session, signer, "fund_insurance", account, amount, as_json, "paid {} into the insurance fund")


def _pay_in(
    session: Session, signer: str, method: str, account: str, amount: str, as_json: bool, did: str
) -> None:
    """Pay AMOUNT (display units of the margin currency) from ACCOUNT into a fund; ``did`` says
    what was done with ``{}`` for the amount."""
    cur = _currency(session)
    units = parse_amount(amount, session.decimals(cur), AMOUNT_MAX)
    _send(
        session,
        signer,
        method,
        [account, units],
        as_json,
        f"{signer} {did.format(f'{cur} {session.display(units, cur)}')}",
    )


@fund.command("show")
@reading_command
def fund_show(session: Session, as_json: bool) -> None:
    """The guarantee fund by member, the insurance fund and the default account."""
    doc = read_view(session, CONTRACT, "funds")
    if as_json:
        echo_json(doc)
        return
    cur = str(doc["currency"])
    click.echo(
        f"guarantee fund  {cur} {session.display(doc['guarantee_fund']['total'], cur)}  ({doc['contributors']} contributors)"
    )
    click.echo(f"insurance fund  {cur} {session.display(doc['insurance_fund'], cur)}")
    rows = [[c["member"], session.display(c["amount"], cur)] for c in doc["guarantee_fund"]["contributions"]]
    if rows:
        click.echo(table(["MEMBER", "CONTRIBUTION"], rows, right=(1,)))
    for h in doc["default_account"]:
        click.echo(f"default account {h['asset']} {session.display(h['amount'], h['asset'])}")


# --- defaults -------------------------------------------------------------------------------------
def _echo_report(session: Session, report: dict[str, Any], cur: str) -> None:
    def money(v: int) -> str:
        return session.display(int(v), cur)

    click.echo(
        f"default {report['id']}: {report['member']} at height {report['height']} (call {report['call_id']}), loss {cur} {money(report['loss'])}"
    )
    for p in report["positions"]:
        click.echo(
            f"  closed {p['instrument']} {session.display(p['quantity'], p['instrument'], signed=True)} entry {money(p['entry_price'])} at {money(p['price'])}: {session.display(p['pnl'], cur, signed=True)}"
        )
    for t in report["collateral_taken"]:
        click.echo(
            f"  took {t['asset']} {session.display(t['amount'], t['asset'])} worth {money(t['value'])}"
        )
    for w in report["waterfall"]:
        click.echo(f"  waterfall {w['layer']:<26} {money(w['amount']):>16}")
    for c in report["guarantee_fund_charges"]:
        click.echo(f"    charged {c['member']} {money(c['amount'])}")
    click.echo(f"  uncovered {money(report['uncovered'])}")


@margin.command("default")
@click.argument("default_id", metavar="ID", type=click.IntRange(1))
@reading_command
def default_cmd(default_id: int, session: Session, as_json: bool) -> None:
    """The report of default ID: positions closed, collateral taken, each waterfall layer."""
    report = read_view(session, CONTRACT, "default", id=default_id)
    if as_json:
        echo_json(report)
        return
    _echo_report(session, report, _currency(session))


@margin.command("defaults")
@click.option("--after", type=click.IntRange(0), default=0, help="Continue after this default id.")
@click.option("--limit", type=click.IntRange(1, 100), default=20)
@reading_command
def defaults_cmd(after: int, limit: int, session: Session, as_json: bool) -> None:
    """Default reports in id order."""
    doc = read_view(session, CONTRACT, "defaults", after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    cur = _currency(session)
    if not doc["defaults"]:
        click.echo("no defaults")
    for report in doc["defaults"]:
        _echo_report(session, report, cur)


# --- administration -------------------------------------------------------------------------------
@margin.group("rates")
def rates() -> None:
    """Margin rates per instrument (admin-set, else the parameters) and collateral haircuts."""


@rates.command("show")
@click.argument("instrument")
@reading_command
def rates_show(instrument: str, session: Session, as_json: bool) -> None:
    """INSTRUMENT's initial and maintenance rates and its haircut as collateral."""
    doc = read_view(session, CONTRACT, "rates", instrument=instrument)
    if as_json:
        echo_json(doc)
        return
    haircut = "not eligible" if doc["haircut_bps"] is None else _bps(doc["haircut_bps"])
    click.echo(
        f"{instrument}: initial {_bps(doc['initial_bps'])}, maintenance {_bps(doc['maintenance_bps'])} ({'set' if doc['set'] else 'default'}); collateral haircut {haircut}"
    )


@rates.command("set")
@click.option("--instrument", required=True)
@click.option("--initial-bps", type=click.IntRange(1, 10_000), required=True)
@click.option("--maintenance-bps", type=click.IntRange(1, 10_000), required=True)
@signing_command(default="admin")
def rates_set(
    instrument: str, initial_bps: int, maintenance_bps: int, signer: str, session: Session, as_json: bool
) -> None:
    """Set INSTRUMENT's margin rates (basis points)."""
    _send(
        session,
        signer,
        "set_rates",
        [instrument, initial_bps, maintenance_bps],
        as_json,
        f"{instrument}: initial {_bps(initial_bps)}, maintenance {_bps(maintenance_bps)}",
    )


@rates.command("haircut")
@click.option("--asset", required=True)
@click.option("--bps", type=click.IntRange(0, 9_999), required=True)
@signing_command(default="admin")
def rates_haircut(asset: str, bps: int, signer: str, session: Session, as_json: bool) -> None:
    """Make a security eligible collateral at a haircut of BPS basis points."""
    _send(
        session,
        signer,
        "set_haircut",
        [asset, bps],
        as_json,
        f"{asset}: eligible collateral at a {_bps(bps)} haircut",
    )


@margin.command("disburse")
@click.option("--account", required=True, help="The counterparty's account paid.")
@click.option("--asset", required=True)
@click.option("--amount", required=True, help="Display units.")
@signing_command(default="admin")
def disburse_cmd(account: str, asset: str, amount: str, signer: str, session: Session, as_json: bool) -> None:
    """Pay what defaults collected (the default account) to ACCOUNT."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    _send(
        session,
        signer,
        "disburse",
        [account, asset, units],
        as_json,
        f"paid {asset} {session.display(units, asset)} from the default account to {account}",
    )


def register(main: click.Group) -> None:
    main.add_command(margin)
