"""``clearchain trade``: an exchange submits trade tickets for settlement, one or a CSV file.

A ticket on the chain is ``[trade_id, buyer, seller, instrument, quantity, price]`` in minor
units (contracts/settlement.py); here quantity and price are typed in display units ("1.5",
"182.50") and converted exactly: the quantity with the instrument's decimals, the price (cash per
one whole unit of the instrument) with its currency's decimals, from ``GET /instruments``.

``trade import`` checks every row of the file before it sends anything, then sends
``settlement.settle_batch`` transactions of up to ``--batch-size`` tickets, several in flight at
once (posted without waiting, then awaited oldest first), and sums up the receipts: trades
settled, and failures grouped by code. Trade ids are final once settled, so importing the same
file again settles nothing twice: those rows fail with ``duplicate_trade_id``.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from chain.errors import ClearchainError
from chain.limits import BATCH_TRADES_MAX, TX_BYTES_MAX
from cli.client import segment
from cli.commands.plumbing import CliError, echo_json, json_option, session_options, table, where
from cli.commands.session import Session, events_of, reading_command, receipt_of
from cli.commands.tickets import (
    compute_trade_id,
    exchange_option,
    given_trade_id,
    make_ticket,
    submit_to_cycle,
    ticket_options,
)
from cli.inputs import parse_tenor, printable

CSV_COLUMNS = ("trade_id", "buyer", "seller", "instrument", "quantity", "price")
TPLUS_MAX = 30  # --settlement T+N: N up to this (the cycles contract bounds it too)
IMPORT_TRADES_MAX = 1_000_000  # rows in one imported file
CSV_FIELD_CHARS_MAX = 1_000  # any cell longer than this is a broken file, not a trade
IN_FLIGHT_DEFAULT = 4  # batch transactions sent before waiting for the oldest
IN_FLIGHT_MAX = 64
# A batch is cut before its encoded size could pass the transaction limit: each ticket costs its
# strings plus at most this many bytes of msgpack framing and integers; the rest is headroom for
# the body and signatures.
TICKET_OVERHEAD_BYTES = 32
BATCH_BYTES_MAX = TX_BYTES_MAX - 8 * 1024


@click.group()
def trade() -> None:
    """Trade tickets: submit one, import a CSV file, look up a trade."""


# --- submit -----------------------------------------------------------------------------------
@trade.command("submit")
@ticket_options(
    click.option(
        "--settlement",
        default="T+0",
        show_default=True,
        help="T+0: gross, now (settlement.settle). T+N: joins the netting cycle of its settlement date (cycles.submit).",
    )
)
@session_options
@json_option
def trade_submit(
    buyer: str,
    seller: str,
    instrument: str,
    qty: str,
    price: str,
    settlement: str,
    trade_id: str | None,
    exchange: str,
    node_url: str | None,
    keys_dir: Path,
    as_json: bool,
) -> None:
    """Settle one trade now (delivery versus payment, T+0), or report it for its T+N netting cycle;
    wait for the outcome."""
    tplus = _tplus(settlement)
    session = Session(node_url, keys_dir)
    trade_id = given_trade_id(trade_id) or compute_trade_id(
        exchange, buyer, seller, instrument, qty, price, time.time_ns()
    )
    if tplus > 0:
        submit_to_cycle(session, exchange, trade_id, buyer, seller, instrument, qty, price, tplus, as_json)
        return
    ticket = make_ticket(session, trade_id, buyer, seller, instrument, qty, price)
    status = session.send(session.signer(exchange).sign("settlement", "settle", ticket))
    receipt = receipt_of(status)
    if as_json:
        echo_json({"exchange": exchange, "trade_id": trade_id, "ticket": ticket, "tx": status})
    if not receipt.get("ok"):
        raise CliError(
            str(receipt.get("code")), f"trade {trade_id} failed: {receipt.get('message')} ({where(status)})"
        )
    if not as_json:
        fields = next((f for _, name, f in events_of(receipt) if name == "trade_settled"), {})
        currency = session.instrument(instrument).get("currency") or instrument
        cash = session.display(int(fields.get("consideration", 0)), currency)
        click.echo(
            f"settled {trade_id}: {buyer} buys {session.display(ticket[4], instrument)} {instrument} from {seller} "
            f"at {currency} {session.display(ticket[5], currency)}, pays {currency} {cash} "
            f"({where(status)})"
        )


def _tplus(text: str) -> int:
    """N of ``T+N`` (``T`` alone is T+0); InputError ``bad_tenor`` otherwise."""
    return parse_tenor(text, TPLUS_MAX, "settlement")


# --- status -----------------------------------------------------------------------------------
@trade.command("status")
@click.argument("trade_id", metavar="ID")
@exchange_option
@reading_command
def trade_status(trade_id: str, exchange: str, session: Session, as_json: bool) -> None:
    """Whether trade ID settled (a failed trade has no record: unknown_trade)."""
    doc = session.get(f"/trades/{segment(exchange)}/{segment(trade_id)}")
    if as_json:
        echo_json(doc)
    else:
        click.echo(f"trade {doc['trade_id']} ({doc['exchange']}): {doc['status']} at height {doc['height']}")


# --- import -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Row:
    line: int
    ticket: list[Any]


def read_trades_csv(path: Path, session: Session) -> list[Row]:
    """Every row of the file as a ticket, checked before anything is sent. Raises CliError
    (``bad_csv``, ``bad_id``, ``unknown_instrument``, ``bad_amount``, ``duplicate_trade_id``)
    naming the file and line; cells are echoed ``printable``."""
    rows: list[Row] = []
    first_line: dict[str, int] = {}
    line = 1
    limit = csv.field_size_limit(CSV_FIELD_CHARS_MAX)  # process-wide: restored below
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM (Excel) is not a column
            reader = csv.reader(handle, skipinitialspace=True)  # `a, "b"` is a quoted "b"
            columns = _header(path, next(reader, []))
            for cells in reader:
                line = reader.line_num
                if not cells:
                    continue  # a blank line, as csv.DictReader skips it
                rows.append(_read_row(path, line, columns, cells, session, first_line))
                if len(rows) > IMPORT_TRADES_MAX:
                    raise CliError(
                        "bad_csv", f"{path}: more than {IMPORT_TRADES_MAX:,} trades; split the file"
                    )
    except OSError as exc:
        raise CliError("bad_csv", f"cannot read {path}: {exc.strerror or exc}") from exc
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise CliError(
                "bad_csv",
                f"{path}: field too long on line {line + 1} (at most {CSV_FIELD_CHARS_MAX:,} characters)",
            ) from None
        raise CliError("bad_csv", f"{path} line {line + 1}: not a CSV row ({exc})") from None
    except UnicodeDecodeError as exc:
        raise CliError(
            "bad_csv", f"{path}: not a UTF-8 CSV file ({exc.reason} at byte {exc.start:,})"
        ) from None
    finally:
        csv.field_size_limit(limit)
    if not rows:
        raise CliError("bad_csv", f"{path} holds no trades")
    return rows


def _header(path: Path, cells: list[str]) -> list[str]:
    """The column names of header ``cells``: each of CSV_COLUMNS once, in any order."""
    columns = [c.strip() for c in cells]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    extra = [printable(c) for c in columns if c not in CSV_COLUMNS]
    twice = sorted({c for c in columns if c in CSV_COLUMNS and columns.count(c) > 1})
    if missing or extra or twice:
        raise CliError(
            "bad_csv",
            f"{path} line 1: the header must name the columns {','.join(CSV_COLUMNS)} once each"
            + (f"; column {','.join(twice)} appears more than once" if twice else "")
            + (f"; missing {','.join(missing)}" if missing else "")
            + (f"; unknown {','.join(extra)}" if extra else ""),
        )
    return columns


def _read_row(
    path: Path, line: int, columns: list[str], cells: list[str], session: Session, first_line: dict[str, int]
) -> Row:
    if len(cells) != len(columns):
        raise CliError(
            "bad_csv", f"{path} line {line}: expected {len(CSV_COLUMNS)} fields ({','.join(CSV_COLUMNS)})"
        )
    values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
    trade_id = values["trade_id"]
    if trade_id in first_line:
        raise CliError(
            "duplicate_trade_id",
            f"{path} line {line}: trade id {printable(trade_id)} is also on line {first_line[trade_id]}",
        )
    try:
        ticket = make_ticket(
            session,
            trade_id,
            values["buyer"],
            values["seller"],
            values["instrument"],
            values["quantity"],
            values["price"],
        )
    except ClearchainError as exc:
        raise CliError(exc.code, f"{path} line {line}: {printable(exc.message)}") from exc
    first_line[trade_id] = line
    return Row(line, ticket)


def plan_batches(rows: list[Row], batch_size: int) -> list[list[Row]]:
    """Consecutive rows in batches of at most ``batch_size`` tickets and ``BATCH_BYTES_MAX``
    encoded bytes (long ids make big tickets)."""
    batches: list[list[Row]] = []
    current: list[Row] = []
    size = 0
    for row in rows:
        cost = TICKET_OVERHEAD_BYTES + sum(len(str(v)) for v in row.ticket[:4])
        if current and (len(current) >= batch_size or size + cost > BATCH_BYTES_MAX):
            batches.append(current)
            current, size = [], 0
        current.append(row)
        size += cost
    if current:
        batches.append(current)
    return batches


@dataclass
class ImportSummary:
    """What a ``trade import`` did: counts, failures by code with one example each, the txs."""

    file: str
    exchange: str
    trades: int
    batches: int
    settled: int = 0
    failed: int = 0
    no_outcome: int = 0
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    txs: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, code: str, trade_id: str, line: int | None, message: str) -> None:
        self.failed += 1
        entry = self.failures.setdefault(
            code,
            {"code": code, "count": 0, "example": {"trade_id": trade_id, "line": line, "message": message}},
        )
        entry["count"] += 1

    def add_batch(self, status: dict[str, Any], batch: list[Row]) -> None:
        """Count one committed batch transaction's outcome from its receipt."""
        lines = {row.ticket[0]: row.line for row in batch}
        receipt = receipt_of(status)
        self.txs.append(
            {
                "hash": status["hash"],
                "height": status["height"],
                "trades": len(batch),
                "ok": bool(receipt.get("ok")),
            }
        )
        if not receipt.get("ok"):  # the whole call failed (e.g. not_exchange): every ticket with it
            for row in batch:
                self.fail(str(receipt.get("code")), row.ticket[0], row.line, str(receipt.get("message")))
            return
        for _, name, fields in events_of(receipt):
            if name == "trade_settled":
                self.settled += 1
            elif name == "trade_failed":
                tid = str(fields.get("trade_id"))
                self.fail(str(fields.get("code")), tid, lines.get(tid), str(fields.get("message")))

    def to_json(self) -> dict[str, Any]:
        failures = sorted(self.failures.values(), key=lambda f: (-f["count"], f["code"]))
        return {"file": self.file, "exchange": self.exchange, "trades": self.trades, "batches": self.batches,
                "settled": self.settled, "failed": self.failed, "no_outcome": self.no_outcome,
                "failures": failures, "txs": self.txs}  # fmt: skip

    def text(self) -> str:
        heights = [t["height"] for t in self.txs]
        where = f", heights {min(heights)}-{max(heights)}" if heights else ""
        lines = [
            f"{self.file}: {self.trades:,} trades in {self.batches} batches from {self.exchange}{where}",
            f"settled  {self.settled:,}",
            f"failed   {self.failed:,}",
        ]
        if self.no_outcome:
            lines.append(f"no outcome {self.no_outcome:,} (not sent, or not committed in time)")
        if self.failures:
            rows = []
            for f in self.to_json()["failures"]:
                ex = f["example"]
                at = f" (line {ex['line']})" if ex["line"] is not None else ""
                rows.append((f["code"], f"{f['count']:,}", f"{ex['trade_id']}{at}: {ex['message']}"))
            lines.append(table(["failure", "trades", "example"], rows, right=(1,)))
        return "\n".join(lines)


@trade.command("import")
@click.argument("path", metavar="FILE.csv", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--batch-size",
    type=click.IntRange(1, BATCH_TRADES_MAX),
    default=BATCH_TRADES_MAX,
    show_default=True,
    help="Tickets per settle_batch transaction.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(1, IN_FLIGHT_MAX),
    default=IN_FLIGHT_DEFAULT,
    show_default=True,
    help="Batches sent before waiting for the oldest to commit.",
)
@exchange_option
@session_options
@json_option
def trade_import(
    path: Path,
    batch_size: int,
    in_flight: int,
    exchange: str,
    node_url: str | None,
    keys_dir: Path,
    as_json: bool,
) -> None:
    """Settle every trade in FILE.csv (columns: trade_id,buyer,seller,instrument,quantity,price)."""
    session = Session(node_url, keys_dir)
    rows = read_trades_csv(path, session)
    batches = plan_batches(rows, batch_size)
    signer = session.signer(exchange)
    summary = ImportSummary(str(path), exchange, len(rows), len(batches))
    aborted: ClearchainError | None = None
    with click.progressbar(length=len(rows), label="settling", file=sys.stderr) as bar:
        try:
            for status, batch in _send_pipelined(session, signer, batches, in_flight):
                summary.add_batch(status, batch)
                bar.update(len(batch))
        except ClearchainError as exc:
            aborted = exc
    counted = summary.settled + summary.failed
    summary.no_outcome = len(rows) - counted
    if as_json:
        echo_json(summary.to_json())
    else:
        click.echo(summary.text())
    if aborted is not None:
        raise CliError(
            aborted.code, f"import stopped after {counted:,} of {len(rows):,} trades: {aborted.message}"
        )


def _send_pipelined(
    session: Session, signer: Any, batches: list[list[Row]], in_flight: int
) -> Iterator[tuple[dict[str, Any], list[Row]]]:
    """Post the batches in nonce order, keeping up to ``in_flight`` uncommitted, and yield each
    one's committed status, oldest first. A refusal stops the posting (later nonces would only
    leave gaps); the batches already posted will still commit, so they are awaited and yielded
    before the refusal is raised."""
    pending: deque[tuple[str, list[Row]]] = deque()
    refusal: ClearchainError | None = None
    for batch in batches:
        if len(pending) >= in_flight:
            tx_hash, done = pending.popleft()
            yield session.wait_committed(tx_hash), done
        stx = signer.sign("settlement", "settle_batch", [[row.ticket for row in batch]])
        try:
            pending.append((session.post_async(stx), batch))
        except ClearchainError as exc:
            refusal = exc
            break
    while pending:
        tx_hash, done = pending.popleft()
        yield session.wait_committed(tx_hash), done
    if refusal is not None:
        raise refusal


def register(main: click.Group) -> None:
    main.add_command(trade)
