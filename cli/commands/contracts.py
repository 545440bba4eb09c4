"""``clearchain contracts | call | view``: any contract, through a node's API.

``contracts`` lists what the node runs (methods with argument names, tasks, views, parameters);
``call`` signs and sends one method call with JSON arguments, for the rare method without its
own command; ``view`` reads a contract's view (``GET /contracts/<contract>/<view>``). The
domain commands (``oracle``, ``cycle``, ``escrow`` ...) live in their own modules, registered by
``cli.main``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli.commands.plumbing import CliError, echo_json, read_options, where
from cli.commands.session import Session, read_view, reading_command, send_call, signing_command


def json_args(text: str) -> list[Any]:
    """Method arguments from a JSON array; ``"0x.."`` strings become bytes (hashes, keys)."""
    try:
        args = json.loads(text, parse_float=_no_float)
    except (ValueError, CliError) as exc:
        raise CliError("bad_arguments", f"ARGS must be a JSON array: {exc}") from None
    if not isinstance(args, list):
        raise CliError("bad_arguments", "ARGS must be a JSON array")
    return [_bytes_in(a) for a in args]


def _no_float(text: str) -> Any:
    raise CliError("bad_arguments", f"{text}: amounts are integers in minor units")


def _bytes_in(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise CliError("bad_arguments", f"{value[:20]}...: not hex after 0x") from None
    if isinstance(value, list):
        return [_bytes_in(v) for v in value]
    return value


@click.command("contracts")
@reading_command
def contracts_cmd(session: Session, as_json: bool) -> None:
    """The contracts the node runs: methods, tasks, views and parameters."""
    doc = session.get("/contracts")
    if as_json:
        echo_json(doc)
        return
    for c in doc["contracts"]:
        click.echo(f"{c['name']}  (code {c['code_hash'][:16]}...)")
        for m in c["methods"]:
            click.echo(f"  method {m['name']}({', '.join(m['args'])})")
        for t in c["tasks"]:
            click.echo(f"  task   {t}")
        for v in c["views"]:
            click.echo(f"  view   {v}")
        for name, p in c["params"].items():
            click.echo(f"  param  {name} = {p['value']}  ({p['min']}..{p['max']})")


@click.command("call")
@click.argument("contract")
@click.argument("method")
@click.argument("args", default="[]")
@signing_command(required=True)
def call_cmd(contract: str, method: str, args: str, signer: str, session: Session, as_json: bool) -> None:
    """Sign and send CONTRACT.METHOD with ARGS, a JSON array (integers in minor units;
    "0x..." for bytes). Prints the receipt's events."""
    status, events = send_call(session, signer, contract, method, json_args(args))
    if as_json:
        echo_json(status)
        return
    click.echo(f"ok: {where(status)}")
    for source, name, fields in events:
        click.echo(f"  {source}.{name} " + " ".join(f"{k}={v}" for k, v in fields.items()))


@click.command("view")
@click.argument("contract")
@click.argument("view")
@click.argument("query", nargs=-1, metavar="[KEY=VALUE]...")
@read_options
def view_cmd(contract: str, view: str, query: tuple[str, ...], node_url: str | None) -> None:
    """Read CONTRACT's VIEW at the head (JSON), e.g. ``view oracle price instrument=ACME``."""
    params = {}
    for item in query:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError("bad_query", f"{item!r}: expected KEY=VALUE")
        params[key] = value
    echo_json(read_view(Session(node_url), contract, view, **params))


def register(main: click.Group) -> None:
    main.add_command(contracts_cmd)
    main.add_command(call_cmd)
    main.add_command(view_cmd)
