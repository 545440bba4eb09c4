"""The CLI's exit status for an error code, as docs/CLI.md gives it: 2 for input refused before
anything was sent (cli/inputs.py InputError), 1 for every other failure."""

from __future__ import annotations

INPUT_CODES = frozenset(
    {"bad_amount", "bad_csv", "bad_date", "bad_id", "bad_node_url", "bad_number", "bad_tenor"}
)


def exit_status(code: str) -> int:
    return 2 if code in INPUT_CODES else 1
