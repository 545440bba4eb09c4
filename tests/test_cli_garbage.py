"""Every ``clearchain`` command, run with nothing and with garbage, refuses in one line, exit 2.

The test walks click's command tree from ``cli.main.main`` and invokes each command through
CliRunner with its callback replaced by a stand-in, so nothing is ever sent, started or written
whatever the parser lets through: what is tested is the command line itself. For each command:
(a) no arguments at all, which must be a usage error if the command has a required parameter
(its callback must not run), and (b) each typed option (numbers, choices, files that must exist,
``--node``) given a value of the wrong form, which must be refused before the command runs.
A refusal is exit 2 and exactly one error line (click's ``Error: ...`` after its usage lines, or
``error: <code>: <message>``), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from cli.main import main

NOT_RUN = "the command's callback ran"


def leaves(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaves(command, (*prefix, name))
        else:
            yield (*prefix, name), command


COMMANDS = list(leaves(main))
IDS = [" ".join(path) for path, _ in COMMANDS]


class Ran(Exception):
    """The parser accepted the command line and the (stand-in) callback ran."""


def stand_in(*args: Any, **kwargs: Any) -> None:
    raise Ran(NOT_RUN)


def invoke(monkeypatch: pytest.MonkeyPatch, command: click.Command, args: list[str]) -> Result:
    monkeypatch.setattr(command, "callback", stand_in)
    return CliRunner().invoke(main, args, env={"CLEARCHAIN_NODE": None, "CLEARCHAIN_KEYS": None})


def assert_refused(result: Result, args: list[str]) -> None:
    shown = f"{args}: exit {result.exit_code}\n{result.output}"
    assert not isinstance(result.exception, Ran), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert result.exit_code == 2, shown
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, shown
    assert "Traceback" not in result.output, shown


def is_required(param: click.Parameter) -> bool:
    return bool(param.required)


def garbage_for(param: click.Option) -> list[str]:
    """Values of the wrong form for ``param`` (none if any text is of its form)."""
    kind = param.type
    if param.is_flag or param.count:
        return []
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return ["x", "١٠", "1_000"]  # int() would read the last two as 10 and 1000
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.Path) and kind.exists:
        return ["/nonexistent/clearchain-garbage"]
    if param.name == "node_url":
        return ["not a url"]
    return []


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_no_arguments(monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: click.Command) -> None:
    args = list(path)
    result = invoke(monkeypatch, command, args)
    if any(is_required(p) for p in command.params):
        assert_refused(result, args)
    elif any(getattr(p, "prompt", None) for p in command.params):  # asks first (net reset): no answer
        assert result.exit_code == 1 and "Aborted!" in result.output, result.output
    else:  # nothing is required, so the command line is complete: it reaches the command
        assert isinstance(result.exception, Ran), f"{args}: {result.output}"


GARBAGE = [
    (path, command, param.opts[0], value)
    for path, command in COMMANDS
    for param in command.params
    if isinstance(param, click.Option)
    for value in garbage_for(param)
]


@pytest.mark.parametrize(
    ("path", "command", "option", "value"), GARBAGE, ids=[f"{' '.join(g[0])} {g[2]} {g[3]}" for g in GARBAGE]
)
def test_garbage_option(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: click.Command, option: str, value: str
) -> None:
    args = [*path, option, value]
    result = invoke(monkeypatch, command, args)
    assert_refused(result, args)
    assert option in result.stderr or "bad_node_url" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "node",
    ["not a url", "http://[::1", "127.0.0.1:29401", "ftp://127.0.0.1:21", "http://h:99999", "http://h\x1b:1"],
)
def test_bad_node_url_is_one_line(monkeypatch: pytest.MonkeyPatch, node: str) -> None:
    command = main.commands["account"].commands["show"]  # type: ignore[attr-defined]
    result = invoke(monkeypatch, command, ["account", "show", "A-C001", "--node", node])
    assert_refused(result, [node])
    assert result.stderr.startswith("error: bad_node_url: ") and "\x1b" not in result.stderr


def test_the_tree_is_walked() -> None:
    assert len(COMMANDS) > 50 and len(GARBAGE) > 50
    required_as = [p for p, c in COMMANDS if any(o.name == "signer" and o.required for o in c.params)]
    assert len(required_as) >= 16, required_as


def plausible(param: click.Parameter) -> str:
    """A value of the right form for a required ``param`` (the stand-in callback never uses it)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return str(getattr(kind, "min", None) or 1)
    if isinstance(kind, click.Path):
        return "."
    return "X-1"


REQUIRED_AS = [(p, c) for p, c in COMMANDS if any(o.name == "signer" and o.required for o in c.params)]


@pytest.mark.parametrize(("path", "command"), REQUIRED_AS, ids=[" ".join(p) for p, _ in REQUIRED_AS])
def test_missing_as_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: click.Command
) -> None:
    """Everything else the command requires is given; only ``--as`` is missing."""
    args = list(path)
    for param in command.params:
        if param.required and param.name != "signer":
            value = plausible(param)
            args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    result = invoke(monkeypatch, command, args)
    assert_refused(result, args)
    assert "Missing option '--as'" in result.stderr, result.stderr


@pytest.mark.parametrize("trade_id", ["", " ", "a/b", "x" * 65])
def test_a_given_trade_id_must_be_an_id(trade_id: str) -> None:
    """The real command, not a stand-in: the id is checked before the node is asked."""
    args = ["trade", "submit", "--buyer", "A", "--seller", "B", "--instrument", "ACME"]
    result = CliRunner().invoke(main, [*args, "--qty", "1", "--price", "1", "--trade-id", trade_id])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "bad_id" in result.output, result.output
