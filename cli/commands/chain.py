"""``clearchain tx | block``: read transactions and blocks from a node's API."""

from __future__ import annotations

from typing import Any

import click

from cli.client import segment
from cli.commands.plumbing import CliError, echo_json, fields_text, table, time_text
from cli.commands.session import Session, events_of, reading_command

BLOCK_LIST_DEFAULT = 20  # blocks shown by ``block list`` without --from
BLOCK_LIST_MAX = 1_000  # blocks one ``block list`` reads (pages of 100)


@click.group()
def tx() -> None:
    """Transactions."""


@tx.command("show")
@click.argument("tx_hash", metavar="HASH")
@reading_command
def tx_show(tx_hash: str, session: Session, as_json: bool) -> None:
    """A transaction's status and, once committed, its receipt and events."""
    doc = session.tx_status(tx_hash.lower())
    if as_json:
        echo_json(doc)
    else:
        click.echo(_tx_text(doc))
    if doc["status"] == "unknown":
        raise CliError("unknown_tx", f"node {session.client.url} knows no transaction {tx_hash}")


def _tx_text(doc: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [("hash", doc["hash"]), ("status", doc["status"])]
    if doc["status"] == "committed":
        pairs += [("height", doc["height"]), ("index", doc["index"])]
        receipt = doc.get("receipt") or {}
        outcome = "ok" if receipt.get("ok") else f"FAILED {receipt.get('code')}: {receipt.get('message')}"
        pairs.append(("outcome", outcome))
    elif doc["status"] == "rejected":
        pairs.append(("outcome", f"{doc.get('code')}: {doc.get('message')}"))
    lines = [fields_text(pairs)]
    events = events_of(doc["receipt"]) if doc.get("receipt") else []
    if events:
        lines.append("events:")
        for contract, name, fields in events:
            lines.append(f"  {contract}.{name} " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return "\n".join(lines)


@click.group()
def block() -> None:
    """Blocks."""


@block.command("show")
@click.argument("height", metavar="N|latest|HASH")
@reading_command
def block_show(height: str, session: Session, as_json: bool) -> None:
    """A block's header, transactions and commit certificate."""
    doc = session.get(f"/blocks/{segment(height.lower())}")
    if as_json:
        echo_json(doc)
        return
    h = doc["header"]
    cert = doc.get("certificate") or {}
    pairs = [
        ("height", doc["height"]),
        ("hash", doc["hash"]),
        ("time", f"{time_text(h.get('time_ms'))} ({h.get('time_ms')} ms)"),
        ("chain", h.get("chain_id")),
        ("proposer", h.get("proposer")),
        ("prev block", h.get("prev_block_hash")),
        ("state root", h.get("state_root")),
        ("tx root", h.get("tx_root")),
        ("receipts root", h.get("receipts_root")),
        (
            "certificate",
            f"round {cert.get('round')}, {len(cert.get('signatures', []))} signatures"
            if cert
            else ("none (genesis)" if doc["height"] == 0 else "none yet"),
        ),
        ("txs", len(doc["txs"])),
    ]
    click.echo(fields_text(pairs))
    for tx_hash in doc["txs"]:
        click.echo(f"  {tx_hash}")


@block.command("list")
@click.option(
    "--from",
    "from_height",
    type=click.IntRange(0),
    default=None,
    help=f"First height, 0 for genesis (default: the last {BLOCK_LIST_DEFAULT} blocks).",
)
@click.option(
    "--to", "to_height", type=click.IntRange(1), default=None, help="Last height (default: the head)."
)
@reading_command
def block_list(from_height: int | None, to_height: int | None, session: Session, as_json: bool) -> None:
    """Block headers in a height range, ascending (at most 1,000)."""
    if from_height is None:
        top = to_height if to_height is not None else int(session.get("/status")["height"])
        from_height = max(1, top - BLOCK_LIST_DEFAULT + 1)
    if to_height is not None and to_height < from_height:
        raise CliError("bad_request", f"--to {to_height} is below --from {from_height}")
    last = (
        from_height + BLOCK_LIST_MAX - 1
        if to_height is None
        else min(to_height, from_height + BLOCK_LIST_MAX - 1)
    )
    blocks: list[dict[str, Any]] = []
    cursor: int | None = from_height
    page: dict[str, Any] = {"next": None}
    while cursor is not None and cursor <= last:
        page = session.get("/blocks", **{"from": cursor, "to": min(last, cursor + 99)})
        blocks += page["blocks"]
        cursor = page.get("next") if page["blocks"] else None
    blocks = [b for b in blocks if b["height"] <= last]
    if as_json:
        echo_json({"blocks": blocks, "next": page.get("next")})
        return
    rows = [(b["height"], b["hash"], time_text(b.get("time_ms")), b.get("txs"), b.get("round"), (b.get("proposer") or "")[:16])
            for b in blocks]  # fmt: skip
    click.echo(
        table(["height", "hash", "time (UTC)", "txs", "round", "proposer"], rows, right=(0, 3, 4))
        if rows
        else "no blocks"
    )


def register(main: click.Group) -> None:
    main.add_command(tx)
    main.add_command(block)
