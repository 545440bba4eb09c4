"""Required options are enforced and a given trade id must be valid, for every command: a
refusal is a one-line usage error with exit 2, never a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli.main import main
from tests.test_cli_garbage import COMMANDS

SIGNED = [(path, cmd) for path, cmd in COMMANDS if any(p.name == "signer" and p.required for p in cmd.params)]


def test_there_are_commands_that_require_a_signer() -> None:
    assert len(SIGNED) >= 10, [p for p, _ in SIGNED]


@pytest.mark.parametrize(("path", "command"), SIGNED, ids=[" ".join(p) for p, _ in SIGNED])
def test_a_missing_required_signer_is_a_usage_error(path: tuple[str, ...], command: click.Command) -> None:
    """Every other required argument and option is filled with junk; leaving out ``--as`` must
    stop the command with click's usage error before it reads or sends anything."""

    def junk(param: click.Parameter) -> str:
        if isinstance(param.type, click.Choice):
            return str(param.type.choices[0])
        return "1" if isinstance(param.type, click.types.IntParamType) else "x"

    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            args += [junk(param)] * (param.nargs if param.nargs > 0 else 1)
        elif isinstance(param, click.Option) and param.required and param.name != "signer":
            args += [param.opts[0], junk(param)]
    result = CliRunner().invoke(main, [*path, *args, "--node", "http://127.0.0.1:9"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Missing option '--as'" in result.output, result.output


@pytest.mark.parametrize("trade_id", ["", " ", "a/b", "x" * 65])
def test_a_given_trade_id_must_be_an_id(trade_id: str) -> None:
    args = ["trade", "submit", "--buyer", "A", "--seller", "B", "--instrument", "ACME"]
    result = CliRunner().invoke(main, [*args, "--qty", "1", "--price", "1", "--trade-id", trade_id])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "bad_id" in result.output, result.output
