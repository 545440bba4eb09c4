"""The submission journal: what ``trade submit`` sent and did not yet see settle or fail.

A ``trade submit`` that times out (``commit_timeout``: the validators did not commit in time)
has no known outcome: the trade may settle a second later, or never. Running the same command
again must not settle a second trade, so before sending, the command appends an *intent* (the
trade id and a digest of the ticket) to this journal, and marks it resolved once the outcome is
known (settled, or failed by a committed receipt or a node's refusal). When the same ticket is
submitted again without ``--trade-id`` while an unresolved intent with the same digest exists,
the command reuses that trade id: the chain refuses a ``duplicate_trade_id``, so one id settles
at most once.

The journal is one small JSON file, ``submissions.json``, in ``$CLEARCHAIN_HOME`` if set, else
in the keys folder (a network's keys folder belongs to one network and one operator). It is
bounded (every unresolved intent, up to ``UNRESOLVED_MAX``, and the last ``RESOLVED_KEPT_MAX``
resolved ones), rewritten atomically (a temporary file and ``os.replace``) under an advisory
lock, and a corrupt file is set aside with a one-line warning rather than a traceback.

The functions on entries (``record_intent``, ``resolve``, ``find_unresolved``) are pure; the
``Journal`` class is the shell that reads and writes the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chain.errors import ClearchainError

try:  # POSIX; elsewhere the journal is written without a lock (one writer at a time).
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

HOME_ENV = "CLEARCHAIN_HOME"
JOURNAL_NAME = "submissions.json"
JOURNAL_VERSION = 1
RESOLVED_KEPT_MAX = 200  # resolved intents kept, newest last (for ``trade status`` hints)
UNRESOLVED_MAX = 1_000  # unresolved intents kept; past it the oldest is forgotten, with a warning
JOURNAL_BYTES_MAX = 4 * 1024 * 1024  # a bigger file is not a journal this module wrote


# Failures after which a sent transaction may still commit: the intent stays unresolved. Every
# other code is definitive: a committed receipt's failure, or a node's refusal of the transaction.
NO_OUTCOME_CODES = frozenset(
    {"commit_timeout", "node_unreachable", "unknown_tx", "no_receipt", "http_error", "duplicate"}
)


def has_no_outcome(exc: ClearchainError) -> bool:
    """Whether a submission that raised ``exc`` may still settle (a timeout, a lost reply, a
    server error), so its trade id must be reused, not replaced."""
    status = getattr(exc, "status", None)
    return exc.code in NO_OUTCOME_CODES or (isinstance(status, int) and status >= 500)


@dataclass(frozen=True, slots=True)
class Intent:
    """One submitted ticket: its trade id, the digest of its content, its outcome once known
    (``None`` while unresolved; ``settled`` or ``failed:<code>``) and its trade date (a day
    number; ``None`` in a journal written before tickets were dated), which a retry sends again."""

    trade_id: str
    digest: str
    outcome: str | None = None
    trade_date: int | None = None

    @property
    def resolved(self) -> bool:
        return self.outcome is not None


def compute_ticket_digest(
    chain_id: str,
    exchange: str,
    buyer: str,
    seller: str,
    instrument: str,
    qty: str,
    price: str,
    settlement: int,
    trade_date: int | None = None,
) -> str:
    """A hex digest of what makes two submissions "the same ticket": the chain, the exchange, the
    accounts, the instrument, quantity and price as typed, the settlement date offset, and the
    trade date when one was typed (without ``--trade-date`` a retry on a later day is still the
    same ticket, and it reuses the earlier intent's date)."""
    fields: list[object] = [
        chain_id,
        exchange,
        buyer,
        seller,
        instrument,
        qty.strip(),
        price.strip(),
        settlement,
    ]
    if trade_date is not None:
        fields.append(trade_date)
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


# --- pure operations on entries ---------------------------------------------------------------
def find_unresolved(entries: list[Intent], digest: str) -> Intent | None:
    """The unresolved intent with ``digest``, if any (there is at most one)."""
    return next((e for e in entries if e.digest == digest and not e.resolved), None)


def record_intent(
    entries: list[Intent], trade_id: str, digest: str, trade_date: int | None = None
) -> tuple[list[Intent], list[Intent]]:
    """Entries with an unresolved intent (``trade_id``, ``digest``) last, and the unresolved
    intents it displaced: another id for the same digest (the user chose a new ``--trade-id``) and
    the oldest past ``UNRESOLVED_MAX``. A resolved entry of the same id is replaced too."""
    displaced = [e for e in entries if not e.resolved and e.digest == digest and e.trade_id != trade_id]
    kept = [e for e in entries if e.trade_id != trade_id and e not in displaced]
    kept.append(Intent(trade_id, digest, None, trade_date))
    kept, dropped = bound(kept)
    return kept, displaced + dropped


def resolve(entries: list[Intent], trade_id: str, outcome: str) -> list[Intent]:
    """Entries with ``trade_id``'s intent marked ``outcome`` and moved last (newest resolved)."""
    assert outcome, "an outcome is a non-empty string"
    found = [e for e in entries if e.trade_id == trade_id]
    kept = [e for e in entries if e.trade_id != trade_id]
    if found:
        kept.append(Intent(trade_id, found[0].digest, outcome, found[0].trade_date))
    return bound(kept)[0]


def bound(entries: list[Intent]) -> tuple[list[Intent], list[Intent]]:
    """(kept, dropped unresolved): the last ``RESOLVED_KEPT_MAX`` resolved and the last
    ``UNRESOLVED_MAX`` unresolved entries, in their order."""
    resolved_left = RESOLVED_KEPT_MAX
    unresolved_left = UNRESOLVED_MAX
    kept: list[Intent] = []
    dropped: list[Intent] = []
    for entry in reversed(entries):
        if entry.resolved:
            if resolved_left > 0:
                kept.append(entry)
                resolved_left -= 1
        elif unresolved_left > 0:
            kept.append(entry)
            unresolved_left -= 1
        else:
            dropped.append(entry)
    kept.reverse()
    return kept, dropped


# --- the file ---------------------------------------------------------------------------------
def journal_path(keys_dir: Path | None) -> Path:
    """``$CLEARCHAIN_HOME/submissions.json``, else ``<keys folder>/submissions.json``."""
    home = os.environ.get(HOME_ENV)
    return Path(home) / JOURNAL_NAME if home else Path(keys_dir or ".") / JOURNAL_NAME


def parse_journal(text: str) -> list[Intent]:
    """Entries of a journal file's text. Raises ValueError if it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") != JOURNAL_VERSION:
        raise ValueError("not a submissions journal of version 1")
    entries = []
    for item in doc.get("entries", []):
        if not isinstance(item, dict) or not isinstance(item.get("trade_id"), str):
            raise ValueError("an entry without a trade id")
        outcome = item.get("outcome")
        if not isinstance(item.get("digest"), str) or not (outcome is None or isinstance(outcome, str)):
            raise ValueError("an entry without a digest")
        trade_date = item.get("trade_date")
        if not (trade_date is None or (type(trade_date) is int and trade_date >= 0)):
            raise ValueError("an entry with a bad trade date")
        entries.append(Intent(item["trade_id"], item["digest"], outcome or None, trade_date))
    return entries


def format_journal(entries: list[Intent]) -> str:
    items = [
        {"trade_id": e.trade_id, "digest": e.digest, "outcome": e.outcome, "trade_date": e.trade_date}
        for e in entries
    ]
    return json.dumps({"version": JOURNAL_VERSION, "entries": items}, indent=1) + "\n"


class Journal:
    """The journal file at ``path``; every change is read, applied and rewritten under a lock.

    ``warnings`` collects one-line notes (a corrupt file set aside, an unwritable folder, an
    intent forgotten past the bound) for the command to print; the journal never raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def unresolved(self, digest: str) -> Intent | None:
        with self._locked():
            return find_unresolved(self._read(), digest)

    def entry(self, trade_id: str) -> Intent | None:
        """The intent of ``trade_id``, resolved or not."""
        with self._locked():
            return next((e for e in self._read() if e.trade_id == trade_id), None)

    def record(self, trade_id: str, digest: str, trade_date: int | None = None) -> None:
        with self._locked():
            entries, displaced = record_intent(self._read(), trade_id, digest, trade_date)
            self._write(entries)
        for e in displaced:
            self.warnings.append(
                f"forgot earlier submission {e.trade_id} of no known outcome; look: clearchain trade status {e.trade_id}"
            )

    def resolve(self, trade_id: str, outcome: str) -> None:
        with self._locked():
            self._write(resolve(self._read(), trade_id, outcome))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError:
            yield  # unwritable: _write says so
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read(self) -> list[Intent]:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(JOURNAL_BYTES_MAX + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.warnings.append(f"cannot read the submissions journal {self.path}: {exc.strerror or exc}")
            return []
        try:
            if len(raw) > JOURNAL_BYTES_MAX:
                raise ValueError(f"larger than {JOURNAL_BYTES_MAX:,} bytes")
            return parse_journal(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            self.warnings.append(
                f"the submissions journal {self.path} is corrupt ({exc}); set aside as {aside.name}"
            )
            return []

    def _write(self, entries: list[Intent]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(format_journal(entries))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            self.warnings.append(f"cannot write the submissions journal {self.path}: {exc.strerror or exc}")
