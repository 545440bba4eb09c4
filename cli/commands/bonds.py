"""``clearchain bond | evidence``: bonds of exchanges, issuers, oracles and validators, their
findings and slashes, and double-sign evidence, through a node's API.

Amounts are typed and shown in display units of the bond's cash asset ("10000.00" USD),
converted exactly with its decimals from ``GET /instruments``; ``--json`` prints the contract's
views as they are (integers in minor units). Writes are signed with ``--as PARTICIPANT`` and wait
for commit; a call the contract refuses exits 1 with its code (``error: bond_below_minimum: ...``).

``evidence submit`` takes double votes in the node's ``GET /evidence`` format, from a file or
straight from a node (``--from-node``), and submits each as ``bonds.submit_evidence``; each
outcome (``ok``, ``evidence_known``, ``unknown_validator`` ...) is reported, not raised, so one
known pair does not stop the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chain.certificate import PRECOMMIT, PREVOTE
from chain.limits import AMOUNT_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import CliError, echo_json, fields_text, table, where
from cli.commands.session import (
    Session,
    events_of,
    read_view,
    reading_command,
    receipt_of,
    send_call,
    signing_command,
)

LIST_PAGES_MAX = 100  # pages of 100 bonds a list reads
STEPS = {"prevote": PREVOTE, "precommit": PRECOMMIT}


def _bond_rows(session: Session, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (b["id"], b["participant"], b["account"], b["asset"], session.display(b["amount"], b["asset"]),
         session.display(b["slashed"], b["asset"]), b["status"], b["term_end_height"])
        for b in items
    ]  # fmt: skip


def _bond_table(session: Session, items: list[dict[str, Any]]) -> str:
    headers = ["id", "participant", "account", "asset", "amount", "slashed", "status", "term end"]
    return table(headers, _bond_rows(session, items), right=(0, 4, 5, 7)) if items else "no bonds"


# --- bond -------------------------------------------------------------------------------------
@click.group()
def bond() -> None:
    """Bonds: post (exchanges, issuers, oracles, validators), show, list, slash rules."""


@bond.command("post")
@click.option("--account", required=True, help="An account the poster owns.")
@click.option("--asset", default="USD", show_default=True, help="A cash instrument.")
@click.option("--amount", required=True, help="Display units, e.g. 50000.00.")
@click.option(
    "--term",
    "term_blocks",
    type=click.IntRange(1),
    default=None,
    help="Blocks until it returns [default: the rulebook's].",
)
@signing_command(required=True, help_text="The participant that posts the bond.")
def bond_post(
    account: str,
    asset: str,
    amount: str,
    term_blocks: int | None,
    signer: str,
    session: Session,
    as_json: bool,
) -> None:
    """Post a bond of AMOUNT from ACCOUNT; it returns after its term unless slashed."""
    units = parse_amount(amount, session.decimals(asset), AMOUNT_MAX)
    status, events = send_call(session, signer, "bonds", "post", [account, asset, units, term_blocks])
    posted = next(f for _, n, f in events if n == "bond_posted")
    doc = read_view(session, "bonds", "bond", id=posted["bond"])
    if as_json:
        echo_json({"tx": status, "bond": doc})
        return
    click.echo(
        f"bond {posted['bond']}: {signer} posted {asset} {session.display(units, asset)} from {account}, "
        f"returns at height {posted['term_end_height']} ({where(status)})"
    )


@bond.command("show")
@click.argument("bond_id", metavar="ID", type=click.IntRange(1))
@reading_command
def bond_show(bond_id: int, session: Session, as_json: bool) -> None:
    """One bond: who posted it, how much is left, when it returns."""
    doc = read_view(session, "bonds", "bond", id=bond_id)
    if as_json:
        echo_json(doc)
        return
    asset = doc["asset"]
    click.echo(fields_text([
        ("bond", doc["id"]),
        ("participant", doc["participant"]),
        ("account", doc["account"]),
        ("amount", f"{asset} {session.display(doc['amount'], asset)}"),
        ("slashed", f"{asset} {session.display(doc['slashed'], asset)}"),
        ("remaining", f"{asset} {session.display(doc['remaining'], asset)}"),
        ("status", doc["status"]),
        ("posted at", doc["posted_height"]),
        ("term end", doc["term_end_height"]),
        ("consensus keys", ", ".join(doc["consensus_keys"]) or "-"),
    ]))  # fmt: skip


@bond.command("list")
@click.option("--participant", default=None, help="Only this participant's bonds.")
@click.option("--active", is_flag=True, help="Only running bonds (needs --participant).")
@reading_command
def bond_list(participant: str | None, active: bool, session: Session, as_json: bool) -> None:
    """Bonds in the order they were posted (every page)."""
    if active and participant is None:
        raise CliError("bad_arguments", "--active needs --participant")
    items: list[dict[str, Any]] = []
    after = None
    for _ in range(LIST_PAGES_MAX):
        page = read_view(
            session, "bonds", "bonds", participant=participant, active="1" if active else None, after=after
        )
        items.extend(page["bonds"])
        after = page["next"]
        if after is None:
            break
    if as_json:
        echo_json({"participant": participant, "bonds": items})
        return
    click.echo(_bond_table(session, items))


@bond.command("slash-info")
@click.option("--participant", default=None, help="Also this participant's findings and slashed totals.")
@reading_command
def bond_slash_info(participant: str | None, session: Session, as_json: bool) -> None:
    """The slash rules (share per reason, minimum per role), the insurance fund and what was
    slashed into it; with --participant, its findings (first page)."""
    rules = read_view(session, "bonds", "rules")
    slashed = read_view(session, "bonds", "slashed", participant=participant)
    fund = session.get(f"/accounts/{rules['insurance_account']}") if slashed["totals"] else None
    insurance = {b["asset"]: int(b["available"]) for b in (fund or {}).get("balances", [])}
    findings = (
        read_view(session, "bonds", "findings", participant=participant)["findings"] if participant else []
    )
    if as_json:
        echo_json({"rules": rules, "slashed": slashed, "insurance": insurance, "findings": findings})
        return
    shares = [
        (reason, f"{bps} bps ({bps // 100}.{bps % 100:02d}%)") for reason, bps in rules["slash_bps"].items()
    ]
    click.echo("slash share per finding (of each active bond's posted amount, rounded up):")
    click.echo(table(["reason", "share"], shares, right=(1,)))
    terms = rules["term_blocks"]
    click.echo(f"term: {terms['min']}..{terms['max']} blocks, default {terms['default']}; "
               f"evidence accepted up to {rules['evidence_max_age_blocks']} blocks old")  # fmt: skip
    click.echo("minimum bond per role (minor units of the bond's cash asset): "
               + ", ".join(f"{r} {n}" for r, n in rules["min_bond"].items()))  # fmt: skip
    totals = ", ".join(f"{a} {session.display(n, a)}" for a, n in slashed["totals"].items()) or "nothing yet"
    held = ", ".join(f"{a} {session.display(n, a)}" for a, n in insurance.items()) or "empty"
    click.echo(f"slashed into {rules['insurance_account']}: {totals} (fund holds {held})")
    if participant is not None:
        mine = (
            ", ".join(f"{a} {session.display(n, a)}" for a, n in slashed["from_participant"].items())
            or "nothing"
        )
        click.echo(f"slashed from {participant}: {mine}")
        rows = [(f["finding"], f["reason"], f["ref"], f["height"], f["slashed"]) for f in findings]
        click.echo(
            table(["finding", "reason", "ref", "height", "slashed"], rows, right=(0, 3, 4))
            if rows
            else "no findings"
        )


# --- evidence ---------------------------------------------------------------------------------
@click.group()
def evidence() -> None:
    """Double-sign evidence: submit it so that the validator's bond is slashed."""


def _hex(text: Any, size: tuple[int, ...], what: str) -> bytes:
    try:
        data = bytes.fromhex(str(text))
    except ValueError:
        raise CliError("bad_evidence", f"{what} is not hex") from None
    if len(data) not in size:
        raise CliError("bad_evidence", f"{what} has {len(data)} bytes")
    return data


def evidence_args(item: dict[str, Any]) -> list[list[Any]]:
    """``submit_evidence`` arguments from one item of ``GET /evidence``. Raises CliError
    ``bad_evidence``."""
    try:
        validator = _hex(item["validator"], (32,), "validator")
        height, round_ = int(item["height"]), int(item["round"])
        vote_type = STEPS[item["step"]]
        votes = item["votes"]
        if len(votes) != 2:
            raise CliError("bad_evidence", "evidence holds two votes")
        return [
            [
                validator,
                height,
                round_,
                vote_type,
                _hex(v["block_hash"], (0, 32), "block_hash"),
                _hex(v["signature"], (64,), "signature"),
            ]
            for v in votes
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError("bad_evidence", f"an evidence item lacks or mistypes {exc}") from None


def _read_items(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError("bad_evidence", f"{path}: {exc}") from None
    items = doc.get("evidence") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise CliError("bad_evidence", f'{path}: expected {{"evidence": [...]}} as GET /evidence gives')
    return items


def _submit_one(session: Session, signer: str, item: dict[str, Any]) -> dict[str, Any]:
    args = evidence_args(item)
    status = session.send(session.signer(signer).sign("bonds", "submit_evidence", args))
    receipt = receipt_of(status)
    out = {"validator": item["validator"], "height": item["height"], "round": item["round"], "step": item["step"],
           "code": receipt["code"] if not receipt["ok"] else "ok", "message": receipt.get("message", ""),
           "tx": status["hash"], "participant": None, "slashed": 0}  # fmt: skip
    for _, name, fields in events_of(receipt):
        if name == "evidence_accepted":
            out["participant"] = fields["participant"]
        elif name == "finding_recorded":
            out["slashed"] = fields["slashed"]
    return out


@evidence.command("submit")
@click.argument("path", metavar="FILE", required=False, type=click.Path(path_type=Path))
@click.option("--from-node", is_flag=True, help="Submit every double vote the node holds (GET /evidence).")
@signing_command(required=True, help_text="Any participant: who submits.")
def evidence_submit(path: Path | None, from_node: bool, signer: str, session: Session, as_json: bool) -> None:
    """Submit double votes from FILE (GET /evidence's JSON) or from the node."""
    if (path is None) == (not from_node):
        raise CliError("bad_arguments", "give FILE or --from-node (one of them)")
    items = session.get("/evidence")["evidence"] if from_node else _read_items(path)  # type: ignore[arg-type]
    results = [_submit_one(session, signer, item) for item in items]
    if as_json:
        echo_json({"submitted": results})
        return
    if not results:
        click.echo("no evidence to submit")
    for r in results:
        who = f" ({r['participant']})" if r["participant"] else ""
        click.echo(f"{r['validator'][:16]}...{who} height {r['height']} round {r['round']} {r['step']}: {r['code']}"
                   + (f", slashed {r['slashed']}" if r["code"] == "ok" else f": {r['message']}"))  # fmt: skip


def register(main: click.Group) -> None:
    main.add_command(bond)
    main.add_command(evidence)
