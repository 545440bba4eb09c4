"""``clearchain fund``: index funds (contracts/index_fund.py) through a node's API.

``create`` (an issuer), ``create-units`` and ``redeem`` (a member, in kind, from an account it
owns), ``rebalance-now`` (the fund's manager); reads: ``show``, ``weights``, ``nav`` (now, at a
height, or the recorded history), ``list``. Units are typed and shown in display units of the
fund's unit instrument (4 decimals); the cap is a percentage ("25", "12.5"); the initial NAV is
in the fund's currency ("100.00").
"""

from __future__ import annotations

import click

from chain.limits import AMOUNT_MAX, PRICE_MAX
from cli.amounts import format_amount, parse_amount
from cli.commands.plumbing import echo_json, event_named, fields_text, table, where
from cli.commands.session import Session, owner_of, read_view, reading_command, send_call, signing_command

CONTRACT = "index_fund"
UNIT_DECIMALS = 4  # contracts/index_fund.UNIT_DECIMALS (the CLI does not import contracts)
PPM_DECIMALS = 4  # a weight in ppm shown as a percentage with 4 decimals
BPS_DECIMALS = 2


def _percent_ppm(ppm: int | None) -> str:
    return "" if ppm is None else format_amount(int(ppm), PPM_DECIMALS) + "%"


def _units(units: int | None) -> str:
    return "" if units is None else format_amount(int(units), UNIT_DECIMALS)


@click.group("fund")
def fund() -> None:
    """Index funds: capped market-cap weights, creation and redemption in kind at NAV."""


@fund.command("create")
@click.argument("fund_id", metavar="FUND")
@click.option("--unit", required=True, help="Id of the unit instrument the fund lists.")
@click.option("--constituents", required=True, help="Instrument ids, comma-separated.")
@click.option("--cap", "cap", required=True, help="Weight cap per constituent, in percent (e.g. 25).")
@click.option("--interval", type=click.IntRange(1), required=True, help="Blocks between rebalances.")
@click.option("--counterparty", required=True, help="The manager's account the fund trades with.")
@click.option("--initial-nav", required=True, help="NAV per unit of the first creation, e.g. 100.00.")
@signing_command(default="fund-mgr")
def create(
    fund_id: str,
    unit: str,
    constituents: str,
    cap: str,
    interval: int,
    counterparty: str,
    initial_nav: str,
    signer: str,
    session: Session,
    as_json: bool,
) -> None:
    """An issuer sets up FUND: lists its unit, opens its basket and schedules rebalances."""
    ids = [c.strip() for c in constituents.split(",") if c.strip()]
    currency = str(session.instrument(ids[0])["currency"]) if ids else "USD"
    cap_bps = parse_amount(cap, BPS_DECIMALS, 10_000, "cap")
    nav = parse_amount(initial_nav, session.decimals(currency), PRICE_MAX, "initial NAV")
    args = [fund_id, unit, ids, cap_bps, interval, counterparty, nav]
    status, events = send_call(session, signer, CONTRACT, "create_fund", args)
    if as_json:
        echo_json(status)
        return
    made = event_named(events, CONTRACT, "fund_created")
    click.echo(
        f"fund {fund_id} created: unit {unit}, basket {made.get('basket')}, cap {format_amount(cap_bps, 2)}%, "
        f"first rebalance at height {made.get('next_rebalance')} ({where(status)})"
    )


@fund.command("create-units")
@click.argument("fund_id", metavar="FUND")
@click.option("--account", required=True, help="The account that delivers the basket and gets the units.")
@click.option("--units", required=True, help="Units to create, e.g. 10.5.")
@signing_command(help_text="The account's owner [default: the owner, from GET /accounts/{id}].")
def create_units(
    fund_id: str, account: str, units: str, signer: str | None, session: Session, as_json: bool
) -> None:
    """A member delivers the basket for UNITS of FUND in kind and receives the units."""
    _in_kind(
        session,
        signer,
        "create_units",
        fund_id,
        account,
        units,
        as_json,
        ("units_created", "created", "delivered"),
    )


@fund.command("redeem")
@click.argument("fund_id", metavar="FUND")
@click.option("--account", required=True, help="The account that returns the units and gets the basket.")
@click.option("--units", required=True, help="Units to redeem, e.g. 2.5.")
@signing_command(help_text="The account's owner [default: the owner, from GET /accounts/{id}].")
def redeem(
    fund_id: str, account: str, units: str, signer: str | None, session: Session, as_json: bool
) -> None:
    """A member returns UNITS of FUND and receives its share of the basket in kind."""
    _in_kind(
        session,
        signer,
        "redeem_units",
        fund_id,
        account,
        units,
        as_json,
        ("units_redeemed", "redeemed", "received"),
    )


def _in_kind(
    session: Session, signer: str | None, method: str, fund_id: str, account: str, units: str, as_json: bool,
    told: tuple[str, str, str],
) -> None:  # fmt: skip
    """Create or redeem UNITS of a fund in kind; ``told`` is (the event, what was done to the units,
    what happened to the basket)."""
    event, did, moved = told
    amount = parse_amount(units, UNIT_DECIMALS, AMOUNT_MAX, "units")
    status, events = send_call(
        session, signer or owner_of(session, account), CONTRACT, method, [fund_id, account, amount]
    )
    f = event_named(events, CONTRACT, event)
    if as_json:
        echo_json(status)
        return
    click.echo(
        f"{did} {_units(f.get('units'))} units of {f.get('fund')} in {f.get('account')} ({where(status)})"
    )
    legs = [
        f"{i} {session.display(int(q), i)}"
        for i, q in zip(f.get("instruments", []), f.get("quantities", []), strict=True)
        if q
    ]
    if f.get("cash"):
        legs.append(f"cash {f['cash']} (minor units)")
    click.echo(f"  {moved}: " + (", ".join(legs) or "nothing"))
    click.echo(
        f"  NAV {f.get('nav')}, NAV per unit {f.get('nav_per_unit')} (minor units of the fund's currency)"
    )


@fund.command("rebalance-now")
@click.argument("fund_id", metavar="FUND")
@signing_command(default="fund-mgr", help_text="The fund's manager.")
def rebalance_now(fund_id: str, signer: str, session: Session, as_json: bool) -> None:
    """The manager trades FUND back to its capped target weights now, at oracle prices."""
    status, events = send_call(session, signer, CONTRACT, "rebalance_now", [fund_id])
    if as_json:
        echo_json(status)
        return
    summary = event_named(events, CONTRACT, "rebalanced")
    click.echo(
        f"{fund_id} rebalanced: {summary.get('trades')} trades, {summary.get('failed')} failed ({where(status)})"
    )
    rows = []
    for c, n, f in events:
        if c == CONTRACT and n in ("rebalance_trade", "rebalance_leg_failed"):
            outcome = "ok" if n == "rebalance_trade" else f["code"]
            rows.append(
                [
                    f["side"],
                    f["instrument"],
                    session.display(int(f["quantity"]), f["instrument"]),
                    f.get("consideration", ""),
                    outcome,
                ]
            )
    if rows:
        click.echo(table(["side", "instrument", "quantity", "consideration", "outcome"], rows, right=(2, 3)))


@fund.command("show")
@click.argument("fund_id", metavar="FUND")
@reading_command
def show(fund_id: str, session: Session, as_json: bool) -> None:
    """FUND's terms, basket, units outstanding and last computed weights."""
    doc = read_view(session, CONTRACT, "fund", fund=fund_id)
    if as_json:
        echo_json(doc)
        return
    click.echo(
        fields_text(
            [
                ("fund", doc["fund"]),
                ("manager", doc["manager"]),
                ("unit", doc["unit"]),
                ("currency", doc["currency"]),
                ("cap", format_amount(doc["cap_bps"], 2) + "%"),
                ("interval", f"{doc['interval_blocks']} blocks"),
                ("next rebalance", f"height {doc['next_rebalance']}"),
                ("counterparty", doc["counterparty"]),
                ("basket account", doc["basket_account"]),
                ("units outstanding", _units(doc["units_outstanding"])),
                ("basket cash", session.display(int(doc["cash"]), doc["currency"])),
                ("weights at", "" if doc["weights_height"] is None else f"height {doc['weights_height']}"),
            ]
        )  # fmt: skip
    )
    rows = [
        [c["instrument"], session.display(int(c["quantity"]), c["instrument"]), _percent_ppm(c["weight_ppm"])]
        for c in doc["constituents"]
    ]
    click.echo(table(["instrument", "basket", "target weight"], rows, right=(1, 2)))


@fund.command("weights")
@click.argument("fund_id", metavar="FUND")
@reading_command
def weights(fund_id: str, session: Session, as_json: bool) -> None:
    """FUND's capped weights at the current oracle prices, with market caps."""
    doc = read_view(session, CONTRACT, "weights", fund=fund_id)
    if as_json:
        echo_json(doc)
        return
    rows = [
        [
            r["instrument"],
            r["price"],
            r["supply"],
            r["market_cap"],
            _percent_ppm(r["weight_ppm"]),
            "capped" if r["capped"] else "",
        ]
        for r in doc["constituents"]
    ]
    click.echo(
        f"{doc['fund']} at height {doc['height']}, cap {format_amount(doc['cap_bps'], 2)}% (prices and caps in minor units)"
    )
    click.echo(table(["instrument", "price", "supply", "market cap", "weight", ""], rows, right=(1, 2, 3, 4)))


@fund.command("nav")
@click.argument("fund_id", metavar="FUND")
@click.option("--height", type=click.IntRange(0), default=None, help="NAV as of this height.")
@click.option("--history", is_flag=True, help="The recorded NAVs, newest first.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, help="Records with --history.")
@reading_command
def nav(fund_id: str, height: int | None, history: bool, limit: int, session: Session, as_json: bool) -> None:
    """FUND's NAV and NAV per unit now, at --height, or its recorded --history."""
    if history:
        doc = read_view(session, CONTRACT, "history", fund=fund_id, limit=limit)
        if as_json:
            echo_json(doc)
            return
        rows = [[r["height"], r["nav"], r["nav_per_unit"], _units(r["units"])] for r in doc["records"]]
        click.echo(table(["height", "NAV", "NAV per unit", "units"], rows, right=(0, 1, 2, 3)))
        return
    doc = read_view(session, CONTRACT, "nav", fund=fund_id, height=height)
    if as_json:
        echo_json(doc)
        return
    currency = str(doc.get("currency") or "")

    def money(value: int | None) -> str:
        return "n/a" if value is None else session.display(int(value), currency)

    click.echo(
        f"{fund_id} at height {doc['height']}: NAV {money(doc['nav'])}, NAV per unit {money(doc['nav_per_unit'])} "
        f"{currency}, units {_units(doc.get('units'))}"
    )
    recorded = doc.get("recorded")
    if recorded:
        click.echo(
            f"  basket as recorded at height {recorded['height']} (NAV per unit then {money(recorded['nav_per_unit'])})"
        )


@fund.command("list")
@click.option("--after", default=None, help="Page on from this fund id.")
@reading_command
def list_funds(after: str | None, session: Session, as_json: bool) -> None:
    """Fund ids, in order (100 a page)."""
    doc = read_view(session, CONTRACT, "funds", after=after)
    if as_json:
        echo_json(doc)
        return
    for fid in doc["funds"]:
        click.echo(fid)
    if doc["next"]:
        click.echo(f"(more: --after {doc['next']})")


def register(main: click.Group) -> None:
    main.add_command(fund)
