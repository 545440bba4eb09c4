"""``clearchain oracle | breaker | disclosure``: prices, circuit breakers and issuer filings,
through a node's API.

Prices are typed and shown in display units of the instrument's settlement currency per whole
unit ("182.50" for ACME in USD), converted exactly with the currency's decimals from
``GET /instruments``. Writes are signed with ``--as PARTICIPANT`` and wait for commit; a call the
contract refuses exits 1 with its code (``error: not_oracle: ...``). Reads take ``--json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from chain.limits import PRICE_MAX
from cli.amounts import parse_amount
from cli.commands.plumbing import CliError, echo_json, echo_sent, fields_text, table
from cli.commands.session import Session, read_view, reading_command, send_call, signing_command

DOCUMENT_HASH_BYTES = 32


# --- shared -----------------------------------------------------------------------------------
def _currency(session: Session, iid: str) -> str:
    """The cash instrument ``iid`` is priced in. Raises CliError ``instrument_is_cash``."""
    currency = session.instrument(iid).get("currency")
    if not currency:
        raise CliError("instrument_is_cash", f"{iid} is cash; it is the unit prices are quoted in")
    return str(currency)


def parse_price(session: Session, iid: str, text: str) -> int:
    """Minor units of the currency per whole unit of ``iid`` (AmountError ``bad_amount``)."""
    return parse_amount(text, session.decimals(_currency(session, iid)), PRICE_MAX, "price")


def show_price(session: Session, iid: str, units: int | None) -> str:
    if units is None:
        return "none"
    found = session.instruments().get(iid)
    currency = found.get("currency") if found else None
    return session.display(units, currency) if currency else str(units)


def _notes(events: list[tuple[str, str, dict[str, Any]]], session: Session) -> list[str]:
    """One line per rule the call set off (out-of-band finding, breaker, overdue filing)."""
    lines = []
    for _, name, f in events:
        if name == "oracle_out_of_band":
            lines.append(
                f"  OUT OF BAND: {f['oracle']} {f['instrument']} {show_price(session, f['instrument'], f['price'])} "
                f"vs the median {show_price(session, f['instrument'], f['median'])}"
            )
        elif name == "breaker_tripped":
            lines.append(f"  HALTED {f['instrument']}: {f['reason']}")
        elif name == "bond_slashed":
            lines.append(
                f"  bond of {f['participant']} slashed: {session.display(f['amount'], f['asset'])} {f['asset']} ({f['reason']})"
            )
    return lines


# --- oracle -----------------------------------------------------------------------------------
@click.group()
def oracle() -> None:
    """Oracle prices: publish (oracles) and read the median (anyone)."""


@oracle.command("submit")
@click.argument("instrument")
@click.argument("price")
@signing_command(required=True, help_text="The oracle that publishes.")
def oracle_submit(instrument: str, price: str, signer: str, session: Session, as_json: bool) -> None:
    """Publish PRICE (display units of the currency per whole unit) for INSTRUMENT."""
    units = parse_price(session, instrument, price)
    status, events = send_call(session, signer, "oracle", "submit", [instrument, units])
    median = next((f for _, n, f in events if n == "price"), None)
    summary = (
        ""
        if median is None
        else f"; median {show_price(session, instrument, median['price'])} from {median['sources']} sources"
    )
    echo_sent(
        status, as_json, f"{signer} published {instrument} {show_price(session, instrument, units)}{summary}"
    )
    if not as_json:
        for line in _notes(events, session):
            click.echo(line)


@oracle.command("submit-many")
@click.argument("prices", nargs=-1, required=True, metavar="INSTRUMENT=PRICE...")
@signing_command(required=True, help_text="The oracle that publishes.")
def oracle_submit_many(prices: tuple[str, ...], signer: str, session: Session, as_json: bool) -> None:
    """Publish several prices in one transaction (all or nothing), e.g. ACME=182.50 HOOLI=40."""
    args = []
    for item in prices:
        iid, sep, text = item.partition("=")
        if not sep:
            raise CliError("bad_arguments", f"{item!r}: expected INSTRUMENT=PRICE")
        args.append([iid, parse_price(session, iid, text)])
    status, events = send_call(session, signer, "oracle", "submit_many", [args])
    echo_sent(status, as_json, f"{signer} published {len(args)} prices")
    if not as_json:
        for _, name, f in events:
            if name == "price":
                click.echo(
                    f"  {f['instrument']}: median {show_price(session, f['instrument'], f['price'])} from {f['sources']} sources"
                )
        for line in _notes(events, session):
            click.echo(line)


@oracle.command("price")
@click.argument("instrument")
@click.option(
    "--height", type=click.IntRange(0), default=None, help="The price recorded at or before this height."
)
@reading_command
def oracle_price(instrument: str, height: int | None, session: Session, as_json: bool) -> None:
    """INSTRUMENT's current median and the fresh submissions, or its price at --height."""
    doc = read_view(session, "oracle", "price", instrument=instrument, height=height)
    if as_json:
        echo_json(doc)
        return
    if height is not None:
        at = "" if doc["recorded_at"] is None else f" (recorded at height {doc['recorded_at']})"
        click.echo(f"{instrument} at height {height}: {show_price(session, instrument, doc['price'])}{at}")
        return
    click.echo(f"{instrument}: {show_price(session, instrument, doc['price'])}")
    rows = [
        (s["oracle"], show_price(session, instrument, s["price"]), s["height"]) for s in doc["submissions"]
    ]
    if rows:
        click.echo(table(["oracle", "price", "height"], rows, right=(1, 2)))


# --- breaker ----------------------------------------------------------------------------------
@click.group()
def breaker() -> None:
    """Circuit breakers: why instruments halted, and the price rule per instrument."""


@breaker.command("status")
@click.argument("instrument", required=False)
@reading_command
def breaker_status(instrument: str | None, session: Session, as_json: bool) -> None:
    """INSTRUMENT's status, price rule, reference and latest halt; without INSTRUMENT, the
    latest halt by rule of every instrument."""
    if instrument is None:
        halts: list[dict[str, Any]] = []
        after = None
        for _ in range(100):  # pages of 100
            page = read_view(session, "breakers", "halts", after=after)
            halts.extend(page["halts"])
            after = page["next"]
            if not after:
                break
        if as_json:
            echo_json({"halts": halts})
            return
        rows = [(h["instrument"], h["status"], h["reason"], h["height"]) for h in halts]
        click.echo(
            table(["instrument", "status", "last halt", "height"], rows, right=(3,))
            if rows
            else "no halts by rule"
        )
        return
    doc = read_view(session, "breakers", "status", instrument=instrument)
    if as_json:
        echo_json(doc)
        return
    last = doc["last_halt"]
    click.echo(fields_text([
        ("instrument", doc["instrument"]),
        ("status", doc["status"]),
        ("rule", f"halt on a move over {doc['move_bps']} bps within {doc['window_blocks']} blocks" + (" (instrument's own)" if doc["rule_overridden"] else "")),
        ("price", show_price(session, instrument, doc["price"])),
        ("reference", show_price(session, instrument, doc["reference"])),
        ("last halt", "none" if last is None else f"{last['reason']} at height {last['height']}"),
    ]))  # fmt: skip


@breaker.command("set-rule")
@click.argument("instrument")
@click.option("--window-blocks", type=click.IntRange(1), required=True)
@click.option("--move-bps", type=click.IntRange(1), required=True, help="1,000 bps = 10%.")
@signing_command(default="admin")
def breaker_set_rule(
    instrument: str, window_blocks: int, move_bps: int, signer: str, session: Session, as_json: bool
) -> None:
    """Give INSTRUMENT its own price rule (within the parameters' bounds)."""
    status, _ = send_call(session, signer, "breakers", "set_rule", [instrument, window_blocks, move_bps])
    echo_sent(
        status, as_json, f"{instrument}: halts on a move over {move_bps} bps within {window_blocks} blocks"
    )


@breaker.command("clear-rule")
@click.argument("instrument")
@signing_command(default="admin")
def breaker_clear_rule(instrument: str, signer: str, session: Session, as_json: bool) -> None:
    """Return INSTRUMENT to the parameters' price rule."""
    status, _ = send_call(session, signer, "breakers", "clear_rule", [instrument])
    echo_sent(status, as_json, f"{instrument}: back to the default rule")


# --- disclosure -------------------------------------------------------------------------------
@click.group()
def disclosure() -> None:
    """Issuer disclosures: who issues an instrument, its filing obligation, filings."""


@disclosure.command("register")
@click.argument("instrument")
@click.argument("issuer")
@signing_command(default="admin")
def disclosure_register(instrument: str, issuer: str, signer: str, session: Session, as_json: bool) -> None:
    """Name ISSUER (a participant with the issuer role) as INSTRUMENT's issuer."""
    status, _ = send_call(session, signer, "disclosure", "register_issuer", [instrument, issuer])
    echo_sent(status, as_json, f"{issuer} is the issuer of {instrument}")


@disclosure.command("obligate")
@click.argument("instrument")
@click.option(
    "--period-blocks", type=click.IntRange(1), required=True, help="At most this many blocks between filings."
)
@click.option("--grace-blocks", type=click.IntRange(0), default=0, show_default=True)
@signing_command(default="admin")
def disclosure_obligate(
    instrument: str, period_blocks: int, grace_blocks: int, signer: str, session: Session, as_json: bool
) -> None:
    """Oblige INSTRUMENT's issuer to file every --period-blocks (replaces an obligation)."""
    status, events = send_call(
        session, signer, "disclosure", "obligate", [instrument, period_blocks, grace_blocks]
    )
    f = next(f for _, n, f in events if n == "disclosure_obligated")
    echo_sent(
        status, as_json, f"{instrument}: first filing due at height {f['due']}, overdue after {f['deadline']}"
    )


@disclosure.command("release")
@click.argument("instrument")
@signing_command(default="admin")
def disclosure_release(instrument: str, signer: str, session: Session, as_json: bool) -> None:
    """End INSTRUMENT's filing obligation."""
    status, _ = send_call(session, signer, "disclosure", "release", [instrument])
    echo_sent(status, as_json, f"{instrument}: no filing obligation")


def document_hash(document: Path | None, hex_hash: str | None) -> bytes:
    """SHA-256 of the file, or the given hex. Raises CliError ``bad_arguments``."""
    if (document is None) == (hex_hash is None):
        raise CliError("bad_arguments", "give exactly one of --document FILE or --hash HEX")
    if document is not None:
        try:
            return hashlib.sha256(document.read_bytes()).digest()
        except OSError as exc:
            raise CliError("bad_arguments", f"cannot read {document}: {exc.strerror}") from None
    assert hex_hash is not None
    try:
        digest = bytes.fromhex(hex_hash.removeprefix("0x"))
    except ValueError:
        raise CliError("bad_arguments", "--hash must be hex") from None
    if len(digest) != DOCUMENT_HASH_BYTES:
        raise CliError("bad_arguments", f"--hash must be {DOCUMENT_HASH_BYTES} bytes (SHA-256)")
    return digest


@disclosure.command("file")
@click.argument("instrument")
@click.option(
    "--document",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The filed document; its SHA-256 goes on the chain.",
)
@click.option(
    "--hash", "hex_hash", default=None, metavar="HEX", help="The document's SHA-256, if it is not at hand."
)
@click.option("--reference", default="", help="Where the document is published, or its title.")
@signing_command(help_text="The issuer [default: the instrument's registered issuer].")
def disclosure_file(
    instrument: str,
    document: Path | None,
    hex_hash: str | None,
    reference: str,
    signer: str | None,
    session: Session,
    as_json: bool,
) -> None:
    """The issuer files a disclosure for INSTRUMENT (moves its next due height)."""
    digest = document_hash(document, hex_hash)
    issuer = signer or read_view(session, "disclosure", "status", instrument=instrument)["issuer"]
    if not issuer:
        raise CliError("no_issuer", f"{instrument} has no registered issuer")
    status, events = send_call(session, issuer, "disclosure", "file", [instrument, digest, reference])
    f = next(f for _, n, f in events if n == "disclosure_filed")
    due = "" if f["next_due"] is None else f"; next due at height {f['next_due']}"
    cured = (
        " (late: the overdue state is cleared; resuming the instrument is governance's call)"
        if f["cured"]
        else ""
    )
    echo_sent(
        status, as_json, f"{issuer} filed #{f['seq']} for {instrument} ({digest.hex()[:16]}...){due}{cured}"
    )


@disclosure.command("status")
@click.argument("instrument")
@reading_command
def disclosure_status(instrument: str, session: Session, as_json: bool) -> None:
    """INSTRUMENT's issuer, filing obligation, whether it is overdue, and its latest filing."""
    doc = read_view(session, "disclosure", "status", instrument=instrument)
    if as_json:
        echo_json(doc)
        return
    ob = doc["obligation"]
    last = doc["last_filing"]
    click.echo(fields_text([
        ("instrument", f"{doc['instrument']} ({doc['instrument_status']})"),
        ("issuer", doc["issuer"] or "none"),
        ("obligation", "none" if ob is None else f"every {ob['period_blocks']} blocks + {ob['grace_blocks']} grace; due {ob['due']}, overdue after {ob['deadline']}; missed {ob['missed']}"),
        ("overdue", "YES" if doc["overdue"] else "no"),
        ("filings", doc["filings"]),
        ("last filing", "none" if last is None else f"#{last['seq']} at height {last['height']}: {last['document_hash'][:16]}... {last['reference']}"),
    ]))  # fmt: skip


def register(main: click.Group) -> None:
    main.add_command(oracle)
    main.add_command(breaker)
    main.add_command(disclosure)
