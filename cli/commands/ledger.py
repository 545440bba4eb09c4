"""``clearchain deposit | withdraw | account``: custody and clearing accounts, through a node's API.

Amounts are typed as display decimals ("250000.00") and converted exactly
with the asset's decimals from ``GET /instruments`` (cli/amounts.py), and shown the same way.
The lists (``account list``, ``withdraw list``) print one page and, when more remain, the
command for the next one.
"""

from __future__ import annotations

from typing import Any

import click

from chain.limits import AMOUNT_MAX
from cli.amounts import format_amount, parse_amount
from cli.client import segment
from cli.commands.plumbing import CliError, echo_json, echo_sent, event_named, table
from cli.commands.session import Session, owner_of, reading_command, send_call, signing_command
from cli.inputs import parse_id

HISTORY_LIMIT_MAX = 1_000  # GET /accounts/{id}/history's own bound
LIST_LIMIT_MAX = 1_000  # GET /accounts and GET /withdrawals: items in one page
SYSTEM_OWNER = "@"  # a contract's system accounts are owned by "@<contract>" (contracts/accounts.py)


# --- deposit ----------------------------------------------------------------------------------
@click.command()
@click.option("--account", required=True, help="The clearing account credited.")
@click.option("--asset", required=True, help="Instrument id, e.g. USD.")
@click.option("--amount", required=True, help="Display units, e.g. 250000.00.")
@click.option("--reference", required=True, help="The external transfer's id; attested once only.")
@signing_command(default="custodian")
def deposit(
    account: str, asset: str, amount: str, reference: str, signer: str, session: Session, as_json: bool
) -> None:
    """A custodian attests that AMOUNT of ASSET arrived for ACCOUNT."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    status, _ = send_call(session, signer, "custody", "deposit", [account, asset, units, reference])
    echo_sent(
        status, as_json, f"deposited {asset} {session.display(units, asset)} into {account} (ref {reference})"
    )


# --- withdraw ---------------------------------------------------------------------------------
@click.group()
def withdraw() -> None:
    """Withdrawals: the owner requests (the amount is locked), a custodian confirms or rejects."""


@withdraw.command("request")
@click.option("--account", required=True)
@click.option("--asset", required=True)
@click.option("--amount", required=True, help="Display units, e.g. 1000.00.")
@signing_command(help_text="The account's owner [default: the owner, from GET /accounts/{id}].")
def withdraw_request(
    account: str, asset: str, amount: str, signer: str | None, session: Session, as_json: bool
) -> None:
    """The owner asks to take AMOUNT of ASSET out of ACCOUNT; prints the withdrawal id."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    owner = signer or owner_of(session, account)
    status, events = send_call(session, owner, "custody", "request_withdrawal", [account, asset, units])
    wid = event_named(events, None, "withdrawal_requested").get("id")
    echo_sent(
        status,
        as_json,
        f"withdrawal {wid} requested: {asset} {session.display(units, asset)} from {account} is locked",
    )


@withdraw.command("confirm")
@click.argument("wid", metavar="ID", type=click.IntRange(1))
@signing_command(default="custodian")
def withdraw_confirm(wid: int, signer: str, session: Session, as_json: bool) -> None:
    """A custodian confirms withdrawal ID: the locked amount leaves the ledger."""
    status, events = send_call(session, signer, "custody", "confirm_withdrawal", [wid])
    f = event_named(events, None, "withdrawn")
    text = f"withdrawal {wid} confirmed: {f.get('asset')} {session.display(int(f.get('amount', 0)), str(f.get('asset')))} left {f.get('account')}"
    echo_sent(status, as_json, text)


@withdraw.command("reject")
@click.argument("wid", metavar="ID", type=click.IntRange(1))
@click.option("--reason", required=True, help="Why (at most 256 characters).")
@signing_command(default="custodian")
def withdraw_reject(wid: int, reason: str, signer: str, session: Session, as_json: bool) -> None:
    """A custodian rejects withdrawal ID: the amount is unlocked."""
    status, _ = send_call(session, signer, "custody", "reject_withdrawal", [wid, reason])
    echo_sent(status, as_json, f"withdrawal {wid} rejected: {reason}")


@withdraw.command("cancel")
@click.argument("wid", metavar="ID", type=click.IntRange(1))
@signing_command(required=True, help_text="The participant that requested it.")
def withdraw_cancel(wid: int, signer: str, session: Session, as_json: bool) -> None:
    """The requester cancels its pending withdrawal ID: the amount is unlocked."""
    status, _ = send_call(session, signer, "custody", "cancel_withdrawal", [wid])
    echo_sent(status, as_json, f"withdrawal {wid} cancelled")


@withdraw.command("show")
@click.argument("wid", metavar="ID", type=click.IntRange(1))
@reading_command
def withdraw_show(wid: int, session: Session, as_json: bool) -> None:
    """Withdrawal ID: account, amount, status and who requested it when."""
    doc = session.get(f"/withdrawals/{wid}")
    if as_json:
        echo_json(doc)
        return
    amount = format_amount(int(doc["amount"]), int(doc["decimals"]))
    line = f"withdrawal {doc['id']}: {doc['asset']} {amount} from {doc['account']}, {doc['status']}"
    if doc["status"] != "pending":
        line += f" at height {doc['height']}"
    requested = doc.get("requested_height")
    line += f" (requested by {doc['requested_by']}" + (f" at height {requested})" if requested else ")")
    click.echo(line)


@withdraw.command("list")
@click.option("--after", type=click.IntRange(0), default=None, help="Start after this withdrawal id.")
@click.option(
    "--limit", type=click.IntRange(1, LIST_LIMIT_MAX), default=None, help="Withdrawals at most (default 100)."
)
@reading_command
def withdraw_list(after: int | None, limit: int | None, session: Session, as_json: bool) -> None:
    """The pending withdrawals in id order (one page): what a custodian has to confirm or reject."""
    doc = session.get("/withdrawals", status="pending", after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    rows = [
        (w["id"], w["account"], w["asset"], format_amount(int(w["amount"]), int(w["decimals"])),
         w["requested_by"], w["requested_height"])
        for w in doc["withdrawals"]
    ]  # fmt: skip
    if rows:
        headers = ["id", "account", "asset", "amount", "requested by", "height"]
        click.echo(table(headers, rows, right=(0, 3, 5)))
    else:
        click.echo("no pending withdrawals" + (f" after {after}" if after else ""))
    _echo_more(doc, "clearchain withdraw list", limit)


def _echo_more(doc: dict[str, Any], command: str, limit: int | None, *options: str) -> None:
    """The command for the next page, when the reply says more remain."""
    if doc.get("next") is None:
        return
    more = [command, *options, f"--after {doc['next']}"] + ([f"--limit {limit}"] if limit else [])
    click.echo("more: " + " ".join(more))


# --- account ----------------------------------------------------------------------------------
@click.group()
def account() -> None:
    """Clearing accounts: list them, open one, show its balances and its history."""


@account.command("open")
@click.argument("account_id", metavar="ID")
@click.option("--kind", type=click.Choice(["house", "client"]), required=True)
@click.option(
    "--client", "client_name", metavar="NAME", default=None, help="The client (client accounts only)."
)
@signing_command(required=True, help_text="The clearing member that will own it.")
def account_open(
    account_id: str, kind: str, client_name: str | None, signer: str, session: Session, as_json: bool
) -> None:
    """A clearing member opens account ID (house, or client with --client)."""
    if (kind == "client") != (client_name is not None):
        raise CliError("bad_arguments", "a client account needs --client NAME; a house account takes none")
    status, _ = send_call(session, signer, "accounts", "open", [account_id, kind, client_name])
    whose = f" of client {client_name}" if client_name else ""
    echo_sent(status, as_json, f"opened {kind} account {account_id}{whose}, owned by {signer}")


@account.command("list")
@click.option("--owner", default=None, help="Only the accounts of this participant (or @CONTRACT).")
@click.option("--after", default=None, metavar="ID", help="Start after this account id.")
@click.option(
    "--limit", type=click.IntRange(1, LIST_LIMIT_MAX), default=None, help="Accounts at most (default 100)."
)
@reading_command
def account_list(
    owner: str | None, after: str | None, limit: int | None, session: Session, as_json: bool
) -> None:
    """The clearing accounts in id order (one page): owner, kind, client, status."""
    if owner is not None:
        parse_id(owner[len(SYSTEM_OWNER) :] if owner.startswith(SYSTEM_OWNER) else owner, "owner")
    if after is not None:
        parse_id(after, "after")
    doc = session.get("/accounts", owner=owner, after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    rows = [
        (a["id"], a["owner"], a["kind"], a["client"] or "", a["status"], a["assets_held"])
        for a in doc["accounts"]
    ]
    if rows:
        click.echo(table(["account", "owner", "kind", "client", "status", "assets"], rows, right=(5,)))
    else:
        click.echo("no accounts" + (f" of {owner}" if owner else "") + (f" after {after}" if after else ""))
    _echo_more(doc, "clearchain account list", limit, *([f"--owner {owner}"] if owner else []))


@account.command("show")
@click.argument("account_id", metavar="ID")
@reading_command
def account_show(account_id: str, session: Session, as_json: bool) -> None:
    """The account's owner, kind, status and balances (available and locked)."""
    doc = session.get(f"/accounts/{segment(account_id)}")
    if as_json:
        echo_json(doc)
        return
    client = f", client {doc['client']}" if doc.get("client") else ""
    click.echo(
        f"account {doc['id']}: {doc['kind']} account of {doc['owner']}{client}, {doc['status']}, at height {doc['height']}"
    )
    rows = [(b["asset"], b["display"], b["locked_display"]) for b in doc["balances"]]
    click.echo(table(["asset", "available", "locked"], rows, right=(1, 2)) if rows else "no balances")


@account.command("history")
@click.argument("account_id", metavar="ID")
@click.option("--from-height", type=click.IntRange(1), default=None, help="First height (default 1).")
@click.option(
    "--limit",
    type=click.IntRange(1, HISTORY_LIMIT_MAX),
    default=None,
    help="Movements at most (default 100).",
)
@reading_command
def account_history(
    account_id: str, from_height: int | None, limit: int | None, session: Session, as_json: bool
) -> None:
    """Every movement of the account's balances, oldest first (one page)."""
    doc = session.get(f"/accounts/{segment(account_id)}/history", from_height=from_height, limit=limit)
    if as_json:
        echo_json(doc)
        return
    rows = []
    for m in doc["movements"]:
        locked = "locked_delta" in m
        amount = session.display(int(m["locked_delta"] if locked else m["delta"]), m["asset"], signed=True)
        rows.append((m["height"], m["event"], m["asset"], amount + (" (locked)" if locked else ""),
                     m.get("ref") or "", m.get("counterparty") or "", m.get("tx") or "(task)"))  # fmt: skip
    if rows:
        click.echo(
            table(["height", "event", "asset", "change", "ref", "counterparty", "tx"], rows, right=(0, 3))
        )
    else:
        click.echo(f"no movements of {account_id}" + (f" from height {from_height}" if from_height else ""))
    if doc.get("next_from_height") is not None:
        click.echo(f"more: clearchain account history {account_id} --from-height {doc['next_from_height']}")


def register(main: click.Group) -> None:
    """Add this module's commands to the ``clearchain`` group."""
    main.add_command(deposit)
    main.add_command(withdraw)
    main.add_command(account)
