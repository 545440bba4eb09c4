"""``clearchain escrow lock | claim | refund | show | list``: hash-time-locked escrows
(contracts/escrow.py) through a node's API.

``lock`` takes the hash lock as ``--hashlock HEX`` (the counterparty's, for the second leg of a
swap) or makes a fresh 32-byte secret with ``--new-secret`` and prints it: keep it, it is what
claims the counterparty's lock. Amounts are display decimals converted with the asset's decimals;
``--timeout-blocks N`` is N blocks after the node's head when the command runs.
"""

from __future__ import annotations

import hashlib
import secrets

import click

from chain.limits import AMOUNT_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import CliError, echo_json, event_named, fields_text, table, where
from cli.commands.session import Session, owner_of, read_view, reading_command, send_call, signing_command

CONTRACT = "escrow"
SECRET_BYTES = 32


def _hex32(text: str, what: str, code: str) -> bytes:
    """32 bytes from hex (an optional 0x prefix); CliError ``code`` otherwise."""
    cleaned = text.strip().lower().removeprefix("0x")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        value = b""
    if len(value) != SECRET_BYTES:
        raise CliError(code, f"{what} must be {SECRET_BYTES} bytes in hex (64 hex digits)")
    return value


@click.group()
def escrow() -> None:
    """Hash-time-locked escrows: lock under a hash lock until a height, claim with the
    preimage before it, refund after (automatic at the timeout)."""


@escrow.command("lock")
@click.option("--id", "escrow_id", required=True, help="A new escrow id (unique on this chain).")
@click.option("--from", "source", required=True, metavar="ACCOUNT", help="The account that locks.")
@click.option("--to", "target", required=True, metavar="ACCOUNT", help="The account a claim pays.")
@click.option("--asset", required=True, help="Instrument id, e.g. USD.")
@click.option("--amount", required=True, help="Display units, e.g. 1000.00.")
@click.option("--hashlock", default=None, metavar="HEX", help="sha256 of the secret (32 bytes in hex).")
@click.option("--new-secret", is_flag=True, help="Make a fresh secret, lock under its hash and print it.")
@click.option(
    "--timeout-height",
    type=click.IntRange(1),
    default=None,
    help="The height from which only a refund is possible.",
)
@click.option(
    "--timeout-blocks", type=click.IntRange(1), default=None, help="Or: this many blocks after the head."
)
@signing_command(help_text="The owner of --from [default: the owner, from GET /accounts/{id}].")
def lock_cmd(
    escrow_id: str,
    source: str,
    target: str,
    asset: str,
    amount: str,
    hashlock: str | None,
    new_secret: bool,
    timeout_height: int | None,
    timeout_blocks: int | None,
    signer: str | None,
    session: Session,
    as_json: bool,
) -> None:
    """Lock AMOUNT of ASSET from an account for another under a hash lock until a height."""
    if (hashlock is None) == (not new_secret):
        raise CliError("bad_arguments", "give exactly one of --hashlock HEX and --new-secret")
    if (timeout_height is None) == (timeout_blocks is None):
        raise CliError("bad_arguments", "give exactly one of --timeout-height and --timeout-blocks")
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    secret = secrets.token_bytes(SECRET_BYTES) if new_secret else None
    lock_hash = (
        hashlib.sha256(secret).digest()
        if secret is not None
        else _hex32(str(hashlock), "--hashlock", "bad_hashlock")
    )
    if timeout_height is None:
        assert timeout_blocks is not None
        timeout_height = int(session.get("/status")["height"]) + timeout_blocks
    owner = signer or owner_of(session, source)
    args = [escrow_id, source, target, asset, units, lock_hash, timeout_height]
    status, _ = send_call(session, owner, CONTRACT, "lock", args)
    if as_json:
        doc = {"id": escrow_id, "hashlock": lock_hash.hex(), "timeout_height": timeout_height,
               "height": status["height"], "tx": status["hash"]}  # fmt: skip
        if secret is not None:
            doc["secret"] = secret.hex()
        echo_json(doc)
        return
    click.echo(
        f"locked escrow {escrow_id}: {asset} {session.display(units, asset)} from {source} for {target}, "
        f"hash lock {lock_hash.hex()}, timeout height {timeout_height} ({where(status)})"
    )
    if secret is not None:
        click.echo(f"secret {secret.hex()}  (keep it: it claims the counterparty's lock, and reveals itself)")


@escrow.command("claim")
@click.argument("escrow_id", metavar="ID")
@click.option("--preimage", required=True, metavar="HEX", help="The secret (32 bytes in hex).")
@signing_command(required=True, help_text="Who sends the claim (anyone may; the recipient account is paid).")
def claim_cmd(escrow_id: str, preimage: str, signer: str, session: Session, as_json: bool) -> None:
    """Claim escrow ID with its preimage before the timeout: the recipient account is paid."""
    secret = _hex32(preimage, "--preimage", "bad_preimage")
    status, events = send_call(session, signer, CONTRACT, "claim", [escrow_id, secret])
    if as_json:
        echo_json(status)
        return
    f = event_named(events, CONTRACT, "escrow_claimed")
    asset = str(f.get("asset"))
    click.echo(
        f"claimed escrow {escrow_id}: {asset} {session.display(int(f.get('amount', 0)), asset)} "
        f"to {f.get('to_account')} ({where(status)})"
    )


@escrow.command("refund")
@click.argument("escrow_id", metavar="ID")
@signing_command(help_text="The owner of the locking account [default: the owner, from the escrow].")
def refund_cmd(escrow_id: str, signer: str | None, session: Session, as_json: bool) -> None:
    """Take back escrow ID from its timeout height on (a task does it at the timeout anyway)."""
    owner = signer or owner_of(
        session, str(read_view(session, CONTRACT, "get", id=escrow_id)["from_account"])
    )
    status, events = send_call(session, owner, CONTRACT, "refund", [escrow_id])
    if as_json:
        echo_json(status)
        return
    f = event_named(events, CONTRACT, "escrow_refunded")
    asset = str(f.get("asset"))
    click.echo(
        f"refunded escrow {escrow_id}: {asset} {session.display(int(f.get('amount', 0)), asset)} "
        f"back to {f.get('from_account')} ({where(status)})"
    )


@escrow.command("show")
@click.argument("escrow_id", metavar="ID")
@reading_command
def show_cmd(escrow_id: str, session: Session, as_json: bool) -> None:
    """Escrow ID: its parties, amount, hash lock, timeout, status and (once claimed) preimage."""
    doc = read_view(session, CONTRACT, "get", id=escrow_id)
    if as_json:
        echo_json(doc)
        return
    click.echo(fields_text([
        ("escrow", doc["id"]),
        ("status", doc["status"]),
        ("from", doc["from_account"]),
        ("to", doc["to_account"]),
        ("amount", f"{doc['asset']} {session.display(int(doc['amount']), doc['asset'])}"),
        ("hash lock", doc["hashlock"]),
        ("timeout height", doc["timeout_height"]),
        ("locked", f"height {doc['locked_height']} by {doc['locked_by']}"),
        ("closed at", doc["closed_height"]),
        ("preimage", doc["preimage"]),
    ]))  # fmt: skip


@escrow.command("list")
@click.option("--account", required=True, help="Escrows from or to this account.")
@click.option("--after", default=None, metavar="ID", help="Continue after this escrow id.")
@click.option("--limit", type=click.IntRange(1, 100), default=100)
@reading_command
def list_cmd(account: str, after: str | None, limit: int, session: Session, as_json: bool) -> None:
    """The escrows from or to ACCOUNT, by id (a page; ``--after`` continues it)."""
    doc = read_view(session, CONTRACT, "list", account=account, after=after, limit=limit)
    if as_json:
        echo_json(doc)
        return
    rows = [
        (e["id"], e["status"], e["from_account"], e["to_account"], e["asset"],
         session.display(int(e["amount"]), e["asset"]), e["timeout_height"])
        for e in doc["escrows"]
    ]  # fmt: skip
    click.echo(table(["ID", "STATUS", "FROM", "TO", "ASSET", "AMOUNT", "TIMEOUT"], rows, right=(5, 6)))
    if doc.get("next"):
        click.echo(f"more: --after {doc['next']}")


def register(main: click.Group) -> None:
    main.add_command(escrow)
