"""``clearchain trade``: an exchange submits trade tickets for settlement, one or a CSV file.

A ticket on the chain is ``[trade_id, buyer, seller, instrument, quantity, price, trade_date]``
in minor units (contracts/settlement.py); here quantity and price are typed in display units
("1.5", "182.50") and converted exactly: the quantity with the instrument's decimals, the price
(cash per one whole unit of the instrument) with its currency's decimals, from ``GET
/instruments``. The trade date is typed ``YYYY-MM-DD`` (``--trade-date``, or a CSV file's
optional ``trade_date`` column) and is today by the local clock when not given.

``trade import`` checks every row of the file before it sends anything, then sends
``settlement.settle_batch`` transactions of up to ``--batch-size`` tickets, several in flight at
once (posted without waiting, then awaited oldest first), and sums up the receipts: trades
settled, and failures grouped by code, and writes the outcome of every line to a report CSV
(cli/reconcile.py). Trade ids are final once settled, so importing the same file again settles
nothing twice: those rows are reported as already settled.

``trade submit`` journals each ticket before sending it (cli/submissions.py), so running it
again after a timeout reuses the trade id and the trade date instead of settling a second trade.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from chain.errors import ClearchainError
from chain.limits import BATCH_TRADES_MAX, ID_CHARS_MAX, TX_BYTES_MAX
from cli.client import ApiError, segment
from cli.commands.plumbing import CliError, echo_json, json_option, session_options, table, where
from cli.commands.session import Session, events_of, reading_command, receipt_of
from cli.commands.tickets import (
    compute_trade_id,
    exchange_option,
    given_trade_date,
    given_trade_id,
    make_ticket,
    submit_to_cycle,
    ticket_date,
    ticket_options,
)
from cli.inputs import AMOUNT_CHARS_MAX, InputError, parse_id, parse_tenor, printable
from cli.reconcile import (
    ALREADY_SETTLED,
    FAILED,
    SETTLED,
    Outcome,
    default_report_path,
    report_rows,
    write_report,
)
from cli.submissions import Journal, compute_ticket_digest, has_no_outcome, journal_path
from cli.trade_dates import parse_trade_date

CSV_COLUMNS = ("trade_id", "buyer", "seller", "instrument", "quantity", "price")
CSV_OPTIONAL_COLUMNS = ("trade_date",)  # YYYY-MM-DD; without the column every row is dated today
TPLUS_MAX = 30  # --settlement T+N: N up to this (the cycles contract bounds it too)
IMPORT_TRADES_MAX = 1_000_000  # rows in one imported file
# The longest row a trade can take: four ids of 64 characters, two amounts of 40, a date of 10,
# six commas, CRLF, and room for quotes and spaces. A file larger than the limit times this cannot hold the
# limit of trades, so its size alone refuses it, before a byte is parsed.
ROW_BYTES_MAX = 384
assert 4 * ID_CHARS_MAX + 2 * AMOUNT_CHARS_MAX + 10 + 6 + 2 <= ROW_BYTES_MAX
IMPORT_BYTES_MAX = IMPORT_TRADES_MAX * ROW_BYTES_MAX
PROGRESS_ROWS = 100_000  # rows read between two progress lines on stderr
CSV_FIELD_CHARS_MAX = 1_000  # any cell longer than this is a broken file, not a trade
IN_FLIGHT_DEFAULT = 4  # batch transactions sent before waiting for the oldest
IN_FLIGHT_MAX = 64
# A batch is cut before its encoded size could pass the transaction limit: each ticket costs its
# strings plus at most this many bytes of msgpack framing and integers; the rest is headroom for
# the body and signatures.
TICKET_OVERHEAD_BYTES = 32
BATCH_BYTES_MAX = TX_BYTES_MAX - 8 * 1024
# A batch refused (or dropped) because another signer of the exchange took its nonce is signed
# again with the node's next nonce, at most this many times in one import.
NONCE_RETRIES_MAX = 8
NONCE_CODES = frozenset({"nonce_replayed", "nonce_gap"})
FAILED_STATUS = "failed"  # GET /trades/...: the trade failed on chain (no record in state)


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
    trade_date: str | None,
    exchange: str,
    node_url: str | None,
    keys_dir: Path,
    as_json: bool,
) -> None:
    """Settle one trade now (delivery versus payment, T+0), or report it for its T+N netting cycle;
    wait for the outcome.

    Safe to run again after a timeout: the ticket is journalled before it is sent
    (cli/submissions.py), and the same ticket without ``--trade-id`` reuses the trade id of an
    earlier submission of no known outcome, so it settles at most once."""
    tplus = _tplus(settlement)
    trade_id = given_trade_id(trade_id)  # a given id and date are checked before anything is read or sent
    given_date = given_trade_date(trade_date)
    session = Session(node_url, keys_dir)
    journal = Journal(journal_path(keys_dir))
    digest = compute_ticket_digest(
        session.chain_id, exchange, buyer, seller, instrument, qty, price, tplus, given_date
    )
    generated = trade_id is None
    earlier = journal.unresolved(digest) if generated else None
    _warn(journal)
    if earlier is not None:
        trade_id = earlier.trade_id
        click.echo(f"retrying {trade_id} from an earlier submission with no known outcome", err=True)
    trade_id = given_trade_id(trade_id) or compute_trade_id(
        exchange, buyer, seller, instrument, qty, price, time.time_ns()
    )
    prior = earlier or journal.entry(trade_id)
    retry = prior is not None and prior.digest == digest  # this very ticket was sent before
    # A retry sends the very ticket sent before: the same id and the same trade date.
    sent_date = prior.trade_date if prior is not None and retry else None
    day = ticket_date(given_date if given_date is not None else sent_date)
    ticket = make_ticket(
        session, trade_id, buyer, seller, instrument, qty, price, day
    )  # bad input: nothing sent
    if retry and _report_recorded(session, journal, exchange, ticket, as_json):
        return
    journal.record(trade_id, digest, day)
    _warn(journal)
    if generated and earlier is None:  # a typed --trade-id is known already
        click.echo(f"submitting trade {trade_id} (retry with --trade-id {trade_id} to be safe)", err=True)
    try:
        if tplus > 0:
            submit_to_cycle(
                session, exchange, trade_id, buyer, seller, instrument, qty, price, tplus, day, as_json
            )
            journal.resolve(trade_id, "accepted")
            return
        status = session.send(session.signer(exchange).sign("settlement", "settle", ticket))
        receipt = receipt_of(status)
    except ClearchainError as exc:
        _settle_journal_after(session, journal, exchange, ticket, exc, retry, as_json)
        return
    finally:
        _warn(journal)
    journal.resolve(trade_id, "settled" if receipt.get("ok") else f"failed:{receipt.get('code')}")
    _warn(journal)
    if not receipt.get("ok") and receipt.get("code") == "duplicate_trade_id" and retry:
        if _report_recorded(session, journal, exchange, ticket, as_json):
            return
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


def _warn(journal: Journal) -> None:
    """Print the journal's one-line warnings on stderr (once each)."""
    for line in journal.warnings:
        click.echo(f"warning: {line}", err=True)
    journal.warnings.clear()


def _recorded_trade(session: Session, exchange: str, trade_id: str) -> dict[str, Any] | None:
    """The node's record of a settled (or in-cycle) trade, ``GET /trades/{exchange}/{id}``; None
    if it has none (``unknown_trade``, or only a failure: a failed trade id is free to send again).
    The node reads state before its index, so ``index_catching_up`` also means no record."""
    try:
        doc: dict[str, Any] = session.get(f"/trades/{segment(exchange)}/{segment(trade_id)}")
    except ApiError as exc:
        if exc.code in ("unknown_trade", "index_catching_up"):
            return None
        raise
    return None if doc.get("status") == FAILED_STATUS else doc


def _report_recorded(
    session: Session, journal: Journal, exchange: str, ticket: list[Any], as_json: bool
) -> bool:
    """If the chain already records trade ``ticket[0]``, report that first outcome, resolve the
    journal's intent, and return True."""
    record = _recorded_trade(session, exchange, ticket[0])
    if record is None:
        return False
    journal.resolve(ticket[0], str(record["status"]))
    _warn(journal)
    if as_json:
        echo_json({"exchange": exchange, "trade_id": ticket[0], "ticket": ticket, "already": record})
    else:
        click.echo(
            f"already {record['status']} {ticket[0]} at height {record['height']} (by the earlier submission; "
            "nothing sent again)"
        )
    return True


def _settle_journal_after(
    session: Session, journal: Journal, exchange: str, ticket: list[Any], exc: ClearchainError, retry: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """After sending raised ``exc``: a definitive failure (a receipt's code, a node's refusal)
    resolves the intent; no known outcome (a timeout, an unreachable node) leaves it for a retry.
    Always raises, with the trade id in the message."""
    trade_id = ticket[0]
    if (
        retry
        and exc.code == "duplicate_trade_id"
        and _report_recorded(session, journal, exchange, ticket, as_json)
    ):
        return
    if has_no_outcome(exc):
        raise CliError(
            exc.code,
            f"trade {trade_id}: {exc.message}; its outcome is not known: run the same command again "
            f"(it reuses {trade_id}) or look with: clearchain trade status {trade_id}",
        ) from exc
    journal.resolve(trade_id, f"failed:{exc.code}")
    raise CliError(exc.code, f"trade {trade_id} failed: {exc.message}") from exc


def _tplus(text: str) -> int:
    """N of ``T+N`` (``T`` alone is T+0); InputError ``bad_tenor`` otherwise."""
    return parse_tenor(text, TPLUS_MAX, "settlement")


# --- status -----------------------------------------------------------------------------------
@trade.command("status")
@click.argument("trade_id", metavar="ID")
@exchange_option
@reading_command
def trade_status(trade_id: str, exchange: str, session: Session, as_json: bool) -> None:
    """Whether trade ID settled, or failed on chain and why (unknown_trade: neither)."""
    doc = session.get(f"/trades/{segment(exchange)}/{segment(parse_id(trade_id, 'trade id'))}")
    if as_json:
        echo_json(doc)
        return
    line = f"trade {doc['trade_id']} ({doc['exchange']}): {doc['status']} at height {doc['height']}"
    if doc["status"] == FAILED_STATUS:
        line += f": {doc['code']}: {printable(str(doc['message']))}"
        line += f" (tx {doc['tx']})" if doc.get("tx") else " (at its cycle's close)"
    click.echo(line)


# --- import -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Row:
    line: int
    ticket: list[Any]


def read_trades_csv(
    path: Path, session: Session, progress: Callable[[int, int], None] | None = None
) -> list[Row]:
    """Every row of the file as a ticket, checked before anything is sent. Raises CliError
    (``bad_csv``, ``bad_id``, ``unknown_instrument``, ``bad_amount``, ``duplicate_trade_id``)
    naming the file and line; cells are echoed ``printable``.

    Sized up before anything is parsed into memory: a file over ``IMPORT_BYTES_MAX`` is refused
    at once (from its size), one over ``IMPORT_TRADES_MAX`` rows as soon as a first pass that
    only counts rows (csv's C reader, ~1.5 M rows/s, constant memory) crosses the limit. Then
    ``progress(rows read, rows in all)`` is called every ``PROGRESS_ROWS`` rows of the real read."""
    rows: list[Row] = []
    first_line: dict[str, int] = {}
    today = ticket_date(None)  # one date for the rows without one, even across midnight
    line = 1
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError("bad_csv", f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > IMPORT_BYTES_MAX:
        raise InputError(
            "bad_csv",
            f"{path}: {size:,} bytes, more than {IMPORT_BYTES_MAX:,} (what {IMPORT_TRADES_MAX:,} trades "
            "of the longest ids and amounts take); split the file",
        )
    limit = csv.field_size_limit(CSV_FIELD_CHARS_MAX)  # process-wide: restored below
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            next(reader, [])
            total = 0
            for cells in reader:
                line = reader.line_num
                if cells:
                    total += 1
                    if total > IMPORT_TRADES_MAX:
                        raise InputError(
                            "bad_csv",
                            f"{path}: more than {IMPORT_TRADES_MAX:,} trades (line {line:,}); split the file",
                        )
        line = 1
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM (Excel) is not a column
            reader = csv.reader(handle, skipinitialspace=True)  # `a, "b"` is a quoted "b"
            columns = _header(path, next(reader, []))
            for cells in reader:
                line = reader.line_num
                if not cells:
                    continue  # a blank line, as csv.DictReader skips it
                rows.append(_read_row(path, line, columns, cells, session, first_line, today))
                if len(rows) > IMPORT_TRADES_MAX:  # the file grew since it was counted
                    raise InputError(
                        "bad_csv", f"{path}: more than {IMPORT_TRADES_MAX:,} trades; split the file"
                    )
                if progress is not None and len(rows) % PROGRESS_ROWS == 0:
                    progress(len(rows), max(total, len(rows)))
    except OSError as exc:
        raise InputError("bad_csv", f"cannot read {path}: {exc.strerror or exc}") from exc
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise InputError(
                "bad_csv",
                f"{path}: field too long on line {line + 1} (at most {CSV_FIELD_CHARS_MAX:,} characters)",
            ) from None
        raise InputError("bad_csv", f"{path} line {line + 1}: not a CSV row ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            "bad_csv", f"{path}: not a UTF-8 CSV file ({exc.reason} at byte {exc.start:,})"
        ) from None
    finally:
        csv.field_size_limit(limit)
    if not rows:
        raise InputError("bad_csv", f"{path} holds no trades")
    return rows


def _header(path: Path, cells: list[str]) -> list[str]:
    """The column names of header ``cells``: each of CSV_COLUMNS once, in any order."""
    columns = [c.strip() for c in cells]
    known = CSV_COLUMNS + CSV_OPTIONAL_COLUMNS
    missing = [c for c in CSV_COLUMNS if c not in columns]
    extra = [printable(c) for c in columns if c not in known]
    twice = sorted({c for c in columns if c in known and columns.count(c) > 1})
    if missing or extra or twice:
        raise InputError(
            "bad_csv",
            f"{path} line 1: the header must name the columns {','.join(CSV_COLUMNS)} once each "
            f"(and optionally {','.join(CSV_OPTIONAL_COLUMNS)})"
            + (f"; column {','.join(twice)} appears more than once" if twice else "")
            + (f"; missing {','.join(missing)}" if missing else "")
            + (f"; unknown {','.join(extra)}" if extra else ""),
        )
    return columns


def _read_row(
    path: Path, line: int, columns: list[str], cells: list[str], session: Session, first_line: dict[str, int],
    today: int,
) -> Row:  # fmt: skip
    if len(cells) != len(columns):
        raise InputError(
            "bad_csv", f"{path} line {line}: expected {len(columns)} fields ({','.join(columns)})"
        )
    values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
    trade_id = values["trade_id"]
    if trade_id in first_line:
        raise CliError(
            "duplicate_trade_id",
            f"{path} line {line}: trade id {printable(trade_id)} is also on line {first_line[trade_id]}",
        )
    try:
        dated = values.get("trade_date")
        ticket = make_ticket(
            session,
            trade_id,
            values["buyer"],
            values["seller"],
            values["instrument"],
            values["quantity"],
            values["price"],
            today if dated is None else parse_trade_date(dated),
        )
    except ClearchainError as exc:
        refused = InputError if isinstance(exc, InputError) else CliError  # keeps the exit status
        raise refused(exc.code, f"{path} line {line}: {printable(exc.message)}") from exc
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
    already_settled: int = 0
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    txs: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # trade id -> its row's outcome
    report: str | None = None

    def fail(self, code: str, trade_id: str, line: int | None, message: str) -> None:
        self.failed += 1
        self.outcomes[trade_id] = (FAILED, code)
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
                self.outcomes[str(fields.get("trade_id"))] = (SETTLED, "")
            elif name == "trade_failed":
                tid = str(fields.get("trade_id"))
                self.fail(str(fields.get("code")), tid, lines.get(tid), str(fields.get("message")))

    def mark_already_settled(self, trade_id: str) -> None:
        """A ``duplicate_trade_id`` failure whose id the chain records as settled: a row an
        earlier run settled, not a failure of this one."""
        self.failed -= 1
        self.already_settled += 1
        self.outcomes[trade_id] = (ALREADY_SETTLED, "")
        entry = self.failures["duplicate_trade_id"]
        entry["count"] -= 1
        if entry["count"] == 0:
            del self.failures["duplicate_trade_id"]

    def to_json(self) -> dict[str, Any]:
        failures = sorted(self.failures.values(), key=lambda f: (-f["count"], f["code"]))
        return {"file": self.file, "exchange": self.exchange, "trades": self.trades, "batches": self.batches,
                "settled": self.settled, "already_settled": self.already_settled, "failed": self.failed,
                "no_outcome": self.no_outcome, "failures": failures, "txs": self.txs,
                "report": self.report}  # fmt: skip

    def text(self) -> str:
        heights = [t["height"] for t in self.txs]
        where = f", heights {min(heights)}-{max(heights)}" if heights else ""
        lines = [
            f"{self.file}: {self.trades:,} trades in {self.batches} batches from {self.exchange}{where}",
            f"settled  {self.settled:,}",
            f"failed   {self.failed:,}",
        ]
        if self.already_settled:
            lines.insert(
                2, f"already settled {self.already_settled:,} (by an earlier submission of the same trade id)"
            )
        if self.no_outcome:
            lines.append(f"no outcome {self.no_outcome:,} (not sent, or not committed in time)")
        if self.report:
            lines.append(f"report   {self.report} (the outcome of every line)")
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
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the outcome of every line (default: FILE.report.csv next to FILE.csv).",
)
@exchange_option
@session_options
@json_option
def trade_import(
    path: Path,
    batch_size: int,
    in_flight: int,
    report_path: Path | None,
    exchange: str,
    node_url: str | None,
    keys_dir: Path,
    as_json: bool,
) -> None:
    """Settle every trade in FILE.csv (columns: trade_id,buyer,seller,instrument,quantity,price).

    Safe to run again: trade ids settle once, and a row an earlier run settled is reported as
    already settled. The outcome of every line is written to a report CSV."""
    session = Session(node_url, keys_dir)
    rows = read_trades_csv(path, session, None if as_json else _echo_progress)
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
    if "duplicate_trade_id" in summary.failures:
        aborted = _find_already_settled(session, summary) or aborted
    counted = summary.settled + summary.failed + summary.already_settled
    summary.no_outcome = len(rows) - counted
    report = report_path or default_report_path(path)
    try:
        write_report(report, report_rows([(r.line, r.ticket[0]) for r in rows], summary.outcomes))
        summary.report = str(report)
    except OSError as exc:
        click.echo(f"warning: cannot write the report {report}: {exc.strerror or exc}", err=True)
    if as_json:
        echo_json(summary.to_json())
    else:
        click.echo(summary.text())
    if aborted is not None:
        listed = f"; {summary.report} lists the lines of no outcome" if summary.report else ""
        raise CliError(
            aborted.code,
            f"import stopped after {counted:,} of {len(rows):,} trades: {aborted.message}{listed}; "
            "run it again to settle the rest (a trade id settles at most once)",
        )


def _echo_progress(read: int, total: int) -> None:
    click.echo(f"read {read:,} of {total:,} rows", err=True)


def _find_already_settled(session: Session, summary: ImportSummary) -> ClearchainError | None:
    """Ask the node about every ``duplicate_trade_id`` failure: a recorded trade was settled by an
    earlier run. Returns the error that stopped the asking, if any (the rest stay failures)."""
    duplicates = [tid for tid, (outcome, code) in summary.outcomes.items() if code == "duplicate_trade_id"]
    for trade_id in duplicates:
        try:
            if _recorded_trade(session, summary.exchange, trade_id) is not None:
                summary.mark_already_settled(trade_id)
        except ClearchainError as exc:
            return exc
    return None


def _send_pipelined(
    session: Session, signer: Any, batches: list[list[Row]], in_flight: int
) -> Iterator[tuple[dict[str, Any], list[Row]]]:
    """Post the batches in nonce order, keeping up to ``in_flight`` uncommitted, and yield each
    one's committed status, oldest first. A refusal stops the posting (later nonces would only
    leave gaps); the batches already posted will still commit, so they are awaited and yielded
    before the refusal is raised.

    Another signer of the same exchange (a second import, a ``trade submit``) takes nonces this
    one counted on: a batch refused for its nonce at posting, or dropped for it while pending, is
    signed again with the node's ``next_nonce`` and posted again, at most ``NONCE_RETRIES_MAX``
    times in all; a dropped transaction can never commit, so nothing settles twice."""
    pending: deque[tuple[str, list[Row]]] = deque()
    refusal: ClearchainError | None = None
    retries = [0]

    def post(batch: list[Row]) -> str:
        while True:
            stx = signer.sign("settlement", "settle_batch", [[row.ticket for row in batch]])
            try:
                return session.post_async(stx)
            except ClearchainError as exc:
                _renew_nonce(session, signer, exc, retries)

    def wait(tx_hash: str, batch: list[Row]) -> dict[str, Any] | None:
        """The committed status, or None if the batch was dropped for its nonce and posted again."""
        try:
            return session.wait_committed(tx_hash)
        except CliError as exc:
            if exc.code not in NONCE_CODES:
                raise
            _renew_nonce(session, signer, exc, retries)
            pending.append((post(batch), batch))
            return None

    for batch in batches:
        while len(pending) >= in_flight:
            tx_hash, done = pending.popleft()
            status = wait(tx_hash, done)
            if status is not None:
                yield status, done
        try:
            pending.append((post(batch), batch))
        except ClearchainError as exc:
            refusal = exc
            break
    while pending:
        tx_hash, done = pending.popleft()
        status = wait(tx_hash, done)
        if status is not None:
            yield status, done
    if refusal is not None:
        raise refusal


def _renew_nonce(session: Session, signer: Any, exc: ClearchainError, retries: list[int]) -> None:
    """After ``exc``: if it is a nonce conflict and retries are left, set the signer's next nonce
    to the node's; otherwise raise it (a conflict past the bound says another signer is active)."""
    if exc.code not in NONCE_CODES:
        raise exc
    if retries[0] >= NONCE_RETRIES_MAX:
        raise CliError(
            exc.code,
            f"{exc.message}; another signer of {signer.participant} is active (a second import or "
            f"submit?), {NONCE_RETRIES_MAX} fresh nonces were taken too: run this import again when it is done",
        ) from exc
    retries[0] += 1
    signer.next_nonce = int(session.get(f"/participants/{segment(signer.participant)}")["next_nonce"])


def register(main: click.Group) -> None:
    main.add_command(trade)
