"""The reconciliation report of a ``trade import``: one line per row of the input and its outcome.

An import that stops half way (a node down, a commit that timed out) leaves rows whose outcome
is not known; the summary's counts do not say which. The report does: a CSV file with columns
``line,trade_id,outcome,code``, where ``outcome`` is ``settled``, ``already_settled`` (the trade
id was settled before, e.g. by an earlier run of the same file), ``failed`` (with the failure's
``code``) or ``no_outcome`` (not sent, or sent and not seen to commit: run the import again, the
chain settles each trade id at most once). It is written next to the input as
``<name>.report.csv`` unless ``--report PATH`` says where, atomically (a temporary file and
``os.replace``), so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path

REPORT_COLUMNS = ("line", "trade_id", "outcome", "code")
SETTLED = "settled"
ALREADY_SETTLED = "already_settled"
FAILED = "failed"
NO_OUTCOME = "no_outcome"

Outcome = tuple[str, str]  # (outcome, failure code or "")


def default_report_path(path: Path) -> Path:
    """``trades.csv`` -> ``trades.report.csv``, in the same folder."""
    return path.with_name(path.stem + ".report.csv")


def report_rows(rows: list[tuple[int, str]], outcomes: dict[str, Outcome]) -> list[tuple[int, str, str, str]]:
    """(line, trade id, outcome, code) of every input row, ``no_outcome`` where none is known."""
    return [(line, tid, *outcomes.get(tid, (NO_OUTCOME, ""))) for line, tid in rows]


def write_report(path: Path, rows: list[tuple[int, str, str, str]]) -> None:
    """Write the report CSV atomically. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
