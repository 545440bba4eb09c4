"""``clearchain gov``: governance by the admin multisig, through a node's API.

Every change is a proposal (contracts/governance.py): ``gov propose ACTION ARGS`` for any action,
or one convenience command per action (``gov resume ACME``, ``gov set-param
oracle.staleness_blocks 50``, ``gov validator add|remove|set-power ...``, ``gov upgrade ...``).
Each prints the proposal's id and whether it executed (it does once ``approvals_required``
admins approved); other admins then ``gov approve ID``. Writes are signed ``--as`` an admin
(default ``admin``, a 2-of-3 key policy) and wait for commit; a refusal exits 1 with its code.
Reads (``show``, ``list``, ``history``, ``validators``, ``upgrades``) take ``--json``.
A validator is named by its public key (64 hex) or by its name in ``GET /validators``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli.commands.contracts import json_args
from cli.commands.plumbing import CliError, echo_json, fields_text, table, where
from cli.commands.session import Session, read_view, reading_command, send_call, signing_command

CONTRACT = "governance"
ADMIN = "admin"


def _report(status: dict[str, Any], events: list[tuple[str, str, dict[str, Any]]], as_json: bool) -> None:
    if as_json:
        echo_json(status)
        return
    found = {name: fields for _, name, fields in events}
    pid = (
        found.get("proposal_created")
        or found.get("proposal_approved")
        or found.get("proposal_withdrawn")
        or {}
    ).get("id")
    if "proposal_executed" in found:
        state = f"executed with {found['proposal_executed']['approvals']} approval(s)"
    elif "proposal_withdrawn" in found:
        state = "withdrawn"
    else:
        state = "open, waiting for approvals"
    click.echo(f"proposal {pid}: {state} ({where(status)})")
    for source, name, fields in events:
        if name not in ("proposal_created", "proposal_approved", "proposal_executed", "proposal_withdrawn"):
            click.echo(f"  {source}.{name} " + " ".join(f"{k}={_text(v)}" for k, v in fields.items()))


def _text(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def _propose(session: Session, signer: str, action: list[Any], as_json: bool) -> None:
    status, events = send_call(session, signer, CONTRACT, "propose", [action])
    _report(status, events, as_json)


def _validator_key(session: Session, text: str) -> bytes:
    """A validator's public key from 64 hex digits or its name in GET /validators."""
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    for v in session.get("/validators")["validators"]:
        if v["name"] == text:
            return bytes.fromhex(v["pub_key"])
    raise CliError("unknown_validator", f"{text!r} is neither 64 hex digits nor a validator's name")


def _hash32(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise CliError("bad_arguments", "a code hash is 64 hex digits (SHA-256)")
    return value


@click.group("gov")
def gov() -> None:
    """Governance: proposals by admins, approved by admins (M of N), then executed."""


# --- proposals --------------------------------------------------------------------------------
@gov.command("propose")
@click.argument("action")
@click.argument("args", default="[]")
@signing_command(default=ADMIN)
def propose_cmd(action: str, args: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose ACTION with ARGS, a JSON array ("0x..." for bytes), e.g.
    ``set_param '["oracle", "staleness_blocks", 50]'``."""
    _propose(session, signer, [action, *json_args(args)], as_json)


@gov.command("approve")
@click.argument("pid", metavar="ID", type=int)
@signing_command(default=ADMIN)
def approve_cmd(pid: int, signer: str, session: Session, as_json: bool) -> None:
    """Approve proposal ID (it executes when enough admins have)."""
    status, events = send_call(session, signer, CONTRACT, "approve", [pid])
    _report(status, events, as_json)


@gov.command("withdraw")
@click.argument("pid", metavar="ID", type=int)
@signing_command(default=ADMIN)
def withdraw_cmd(pid: int, signer: str, session: Session, as_json: bool) -> None:
    """Withdraw your open proposal ID."""
    status, events = send_call(session, signer, CONTRACT, "withdraw", [pid])
    _report(status, events, as_json)


@gov.command("show")
@click.argument("pid", metavar="ID", type=int)
@reading_command
def show_cmd(pid: int, session: Session, as_json: bool) -> None:
    """One proposal."""
    p = read_view(session, CONTRACT, "proposal", id=pid)
    if as_json:
        echo_json(p)
        return
    click.echo(fields_text([
        ("id", p["id"]), ("action", p["action"]), ("args", json.dumps(p["args"])), ("status", p["status"]),
        ("proposer", p["proposer"]), ("approvers", ", ".join(p["approvers"])),
        ("created", p["created_height"]), ("expires", p["expires_height"]), ("closed", p["closed_height"]),
    ]))  # fmt: skip


@gov.command("list")
@click.option("--status", type=click.Choice(["open", "executed", "expired", "withdrawn"]), default=None)
@click.option("--after", type=int, default=None, help="Proposals after this id (paging).")
@reading_command
def list_cmd(status: str | None, after: int | None, session: Session, as_json: bool) -> None:
    """Proposals by id (one page; ``--after`` the last id shown for the next)."""
    doc = read_view(session, CONTRACT, "proposals", status=status, after=after)
    if as_json:
        echo_json(doc)
        return
    rows = [
        (
            p["id"],
            p["action"],
            json.dumps(p["args"])[:60],
            p["status"],
            len(p["approvers"]),
            p["expires_height"],
        )
        for p in doc["proposals"]
    ]
    click.echo(table(["id", "action", "args", "status", "approvals", "expires"], rows, right=(0, 4, 5)))
    if doc["next"] is not None:
        click.echo(f"more: --after {doc['next']}")


@gov.command("history")
@click.option("--after", type=int, default=None, help="Entries after this one (paging).")
@reading_command
def history_cmd(after: int | None, session: Session, as_json: bool) -> None:
    """What governance has executed, oldest first."""
    doc = read_view(session, CONTRACT, "history", after=after)
    if as_json:
        echo_json(doc)
        return
    rows = [(e["seq"], e["height"], e["proposal"], e["kind"], e["text"]) for e in doc["history"]]
    click.echo(table(["#", "height", "proposal", "kind", "what"], rows, right=(0, 1, 2)))
    if doc["next"] is not None:
        click.echo(f"more: --after {doc['next']}")


# --- one command per action -------------------------------------------------------------------
@gov.command("set-param")
@click.argument("param", metavar="CONTRACT.NAME")
@click.argument("value", type=int)
@signing_command(default=ADMIN)
def set_param_cmd(param: str, value: int, signer: str, session: Session, as_json: bool) -> None:
    """Propose setting CONTRACT.NAME to VALUE (an integer within the agreed bounds)."""
    contract, sep, name = param.partition(".")
    if not sep or not contract or not name:
        raise CliError("bad_arguments", f"{param!r}: expected CONTRACT.NAME, e.g. oracle.staleness_blocks")
    _propose(session, signer, ["set_param", contract, name, value], as_json)


@gov.command("halt")
@click.argument("instrument")
@click.option("--reason", required=True, help="Why (recorded in the instrument's event).")
@signing_command(default=ADMIN)
def halt_cmd(instrument: str, reason: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose halting INSTRUMENT."""
    _propose(session, signer, ["halt_instrument", instrument, reason], as_json)


@gov.command("resume")
@click.argument("instrument")
@signing_command(default=ADMIN)
def resume_cmd(instrument: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose resuming INSTRUMENT."""
    _propose(session, signer, ["resume_instrument", instrument], as_json)


@gov.group("validator")
def validator() -> None:
    """Validator-set changes: effective two blocks after the one that executes them."""


@validator.command("add")
@click.argument("pub_key")
@click.argument("power", type=int)
@click.option("--name", default="", help="A name for people (not hashed).")
@signing_command(default=ADMIN)
def validator_add(pub_key: str, power: int, name: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose adding the validator with public key PUB_KEY (64 hex) and POWER."""
    _propose(session, signer, ["add_validator", _hash32(pub_key), power, name], as_json)


@validator.command("remove")
@click.argument("who", metavar="VALIDATOR")
@signing_command(default=ADMIN)
def validator_remove(who: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose removing VALIDATOR (public key or name)."""
    _propose(session, signer, ["remove_validator", _validator_key(session, who)], as_json)


@validator.command("set-power")
@click.argument("who", metavar="VALIDATOR")
@click.argument("power", type=int)
@signing_command(default=ADMIN)
def validator_set_power(who: str, power: int, signer: str, session: Session, as_json: bool) -> None:
    """Propose giving VALIDATOR (public key or name) voting POWER."""
    _propose(session, signer, ["set_power", _validator_key(session, who), power], as_json)


@gov.command("validators")
@reading_command
def validators_cmd(session: Session, as_json: bool) -> None:
    """The set signing the next block, and the changes waiting to be written."""
    doc = read_view(session, CONTRACT, "validators")
    if as_json:
        echo_json(doc)
        return
    rows = [(v["name"], v["pub_key"], v["power"]) for v in doc["validators"]]
    click.echo(table(["name", "pub_key", "power"], rows, right=(2,)))
    click.echo(f"total power {doc['total_power']} at height {doc['height']}")
    for p in doc["pending"]:
        click.echo(
            f"pending (proposal {p['proposal']}): {p['op']} {p['pub_key'][:16]}... power {p['power']}, signs from height {p['signs_from']}"
        )


@gov.command("upgrade")
@click.argument("contract")
@click.argument("code_hash")
@click.option("--at", "at_height", type=int, default=None, help="Activation height.")
@click.option("--in", "in_blocks", type=int, default=None, help="Activation this many blocks after the head.")
@signing_command(default=ADMIN)
def upgrade_cmd(
    contract: str,
    code_hash: str,
    at_height: int | None,
    in_blocks: int | None,
    signer: str,
    session: Session,
    as_json: bool,
) -> None:
    """Propose pinning CONTRACT's code to CODE_HASH (SHA-256 hex, see ``clearchain contracts``)
    from the end of the activation block; nodes then stop until restarted with that code."""
    if (at_height is None) == (in_blocks is None):
        raise CliError("bad_arguments", "give exactly one of --at HEIGHT or --in BLOCKS")
    height = (
        at_height if at_height is not None else int(session.get("/status")["height"]) + int(in_blocks or 0)
    )
    _propose(session, signer, ["upgrade_code", contract, _hash32(code_hash), height], as_json)


@gov.command("cancel-upgrade")
@click.argument("contract")
@signing_command(default=ADMIN)
def cancel_upgrade_cmd(contract: str, signer: str, session: Session, as_json: bool) -> None:
    """Propose cancelling CONTRACT's scheduled upgrade."""
    _propose(session, signer, ["cancel_upgrade", contract], as_json)


@gov.command("upgrades")
@reading_command
def upgrades_cmd(session: Session, as_json: bool) -> None:
    """The code the chain pins and the upgrades scheduled."""
    doc = read_view(session, CONTRACT, "upgrades")
    if as_json:
        echo_json(doc)
        return
    click.echo(table(["contract", "code_hash"], sorted(doc["pins"].items())))
    for p in doc["pending"]:
        click.echo(
            f"pending (proposal {p['proposal']}): {p['contract']} -> {p['code_hash']} at height {p['activation_height']}"
        )


def register(main: click.Group) -> None:
    main.add_command(gov)
