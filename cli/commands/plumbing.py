"""What every ``clearchain`` command shares, written once: the error boundary, the common options
and the plain-text and JSON output.

- **Errors.** ``ClearchainGroup`` turns every expected failure (``ClearchainError``: a node's
  refusal, a failed transaction, bad input) into one line, ``error: <code>: <message>``, on
  stderr and exit status 1, or 2 for a malformed command line (``cli.inputs.InputError``);
  a traceback is a bug.
- **Options.** ``--node URL`` (the node's API; ``cli.client.default_node_url`` when absent),
  ``--keys-dir`` (the participant key files), ``--as PARTICIPANT`` (who signs) and ``--json``.
  ``reading_options`` is what a reading command takes, ``signing_options`` what a signing one
  takes (``read_options`` and ``session_options`` without ``--json`` and ``--as``).
- **Output.** ``echo_json``, aligned ``table`` and ``fields_text``, ``time_text`` for block times,
  and ``echo_sent``, the one line a signing command prints for its committed transaction.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from chain.errors import ClearchainError
from cli.inputs import ascii_number_type, parse_node_url

F = TypeVar("F", bound=Callable[..., Any])
KEYS_ENV = "CLEARCHAIN_KEYS"
DEFAULT_KEYS_DIR = Path(".devnet/net/keys")
JSON_TABLE_HELP = "Print JSON instead of a table."
Events = list[tuple[str, str, dict[str, Any]]]  # a receipt's events as (contract, name, fields)


class CliError(ClearchainError):
    """A command that cannot do what it was asked (bad input, a failed transaction ...)."""


# --- the error boundary -----------------------------------------------------------------------
class ClearchainGroup(click.Group):
    """Turns expected errors into one line and a non-zero exit: 2 for input refused before
    anything was sent (``cli.inputs.InputError``, as click's usage errors), else 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        ascii_numbers(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ClearchainError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            sys.exit(getattr(exc, "exit_status", 1))


def ascii_numbers(command: click.Command) -> None:
    """Every number option and argument under ``command`` takes ASCII digits only: click converts
    with ``int()``, which reads "١٠" and "1_000" as 10 and 1000 (cli.inputs.ascii_number_type)."""
    for param in command.params:
        param.type = ascii_number_type(param.type)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            ascii_numbers(sub)


# --- options ----------------------------------------------------------------------------------
def node_url_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--node`` checked once, as it is parsed (InputError ``bad_node_url``)."""
    return None if value is None else parse_node_url(value)


def node_option(f: F) -> F:
    return click.option(
        "--node",
        "node_url",
        default=None,
        callback=node_url_callback,
        metavar="URL",
        help="The node's API (default: $CLEARCHAIN_NODE, else node0 of .devnet/net, else http://127.0.0.1:26601).",
    )(f)


def keys_dir_option(f: F) -> F:
    return click.option(
        "--keys-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar=KEYS_ENV,
        default=DEFAULT_KEYS_DIR,
        show_default=True,
        help=f"Folder of key files (or ${KEYS_ENV}).",
    )(f)


def json_flag(help_text: str | None = JSON_TABLE_HELP) -> Callable[[F], F]:
    """``--json``: the command prints JSON (its parameter is ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


json_option = json_flag()


def as_option(default: str | None = None, required: bool = False, help_text: str = "") -> Callable[[F], F]:
    """``--as PARTICIPANT``: who signs the transaction."""

    def decorate(f: F) -> F:
        text = help_text or "The participant that signs."
        if default:
            text += f" [default: {default}]"
        # An explicit default=None makes click skip the required check: pass it only when set.
        extra: dict[str, Any] = {"default": default} if default is not None else {}
        return click.option("--as", "signer", required=required, metavar="PARTICIPANT", help=text, **extra)(f)

    return decorate


def read_options(f: F) -> F:
    """``--node``, and ``--keys-dir`` accepted but unused, so that every client command takes the
    same pair of options (a script or alias can pass both to any of them)."""
    keys_dir = click.option("--keys-dir", hidden=True, expose_value=False, type=click.Path(path_type=Path))
    return node_option(keys_dir(f))


def session_options(f: F) -> F:
    """``--node`` and ``--keys-dir``: every command that signs."""
    return node_option(keys_dir_option(f))


json_out_option = click.option("--json-out", type=click.Path(path_type=Path), default=None)


def signing_options(
    default: str | None = None, required: bool = False, help_text: str = ""
) -> Callable[[F], F]:
    """``--as``, ``--node``, ``--keys-dir`` and ``--json``: a command that signs a transaction."""

    def decorate(f: F) -> F:
        return as_option(default, required, help_text)(session_options(json_option(f)))

    return decorate


def reading_options(f: F) -> F:
    """``--node`` (and the unused ``--keys-dir``) and ``--json``: a command that reads."""
    return read_options(json_option(f))


# --- output -----------------------------------------------------------------------------------
def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def write_json_out(path: Path | None, doc: Any) -> None:
    """``--json-out PATH``: the command's figures as JSON in PATH, if it was given."""
    if path:
        path.write_text(json.dumps(doc, indent=2) + "\n")


def where(status: dict[str, Any]) -> str:
    """Where a committed transaction is: ``height H, tx HASH``."""
    return f"height {status['height']}, tx {status['hash']}"


def echo_sent(status: dict[str, Any], as_json: bool, line: str) -> None:
    """What a signing command prints for its committed transaction: the status as JSON, or
    ``line (height H, tx HASH)``."""
    if as_json:
        echo_json(status)
    else:
        click.echo(f"{line} ({where(status)})")


def events_named(events: Events, contract: str | None, name: str) -> list[dict[str, Any]]:
    """The fields of every event ``contract.name`` in ``events`` (of any contract if ``contract`` is
    None), in order."""
    return [f for c, n, f in events if n == name and contract in (None, c)]


def event_named(events: Events, contract: str | None, name: str) -> dict[str, Any]:
    """The fields of the first event ``contract.name``, ``{}`` if there is none."""
    return next(iter(events_named(events, contract, name)), {})


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """Plain-text columns, two spaces apart; columns whose index is in ``right`` align right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def fields_text(pairs: Sequence[tuple[str, Any]]) -> str:
    """``name  value`` lines with the names aligned (a one-record view)."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {'' if v is None else v}" for k, v in pairs)


def time_text(time_ms: int | None) -> str:
    """A block time in UTC, to the millisecond."""
    if time_ms is None:
        return ""
    seconds, ms = divmod(int(time_ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"
