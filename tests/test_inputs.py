"""What a person types is read one way: ASCII digits only, required options enforced, a given
trade id valid. Every refusal is a one-line usage error with exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ClearchainError
from cli.amounts import parse_amount, plain_amount
from cli.commands.plumbing import CliError
from cli.commands.trade import _tplus
from cli.inputs import ascii_int
from cli.main import main

NON_ASCII_DIGITS = ["١٠", "１０", "²", "৩", "߁", "𝟙"]


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


@given(st.text(min_size=1, max_size=12).filter(lambda t: not t.isascii()))
def test_an_amount_with_any_non_ascii_character_is_refused(text: str) -> None:
    with pytest.raises(ClearchainError) as info:
        parse_amount(text, 2, 10**15)
    assert info.value.code == "bad_amount"


@given(st.integers(1, 10**15), st.integers(0, 8))
def test_amounts_round_trip(units: int, decimals: int) -> None:
    assert parse_amount(plain_amount(units, decimals), decimals, 10**15) == units


@pytest.mark.parametrize("digits", NON_ASCII_DIGITS)
def test_non_ascii_digits_are_not_numbers(digits: str) -> None:
    with pytest.raises(ValueError):
        ascii_int(digits)
    with pytest.raises(CliError) as info:
        _tplus(f"T+{digits}")
    assert info.value.code == "bad_settlement"


@given(st.integers(-(10**20), 10**20))
def test_ascii_int_reads_what_int_writes(n: int) -> None:
    assert ascii_int(str(n)) == n and ascii_int(f" {n} ") == n and ascii_int(n) == n


@pytest.mark.parametrize("digits", ["１０", "٣"])
def test_integer_options_refuse_non_ascii_digits(digits: str) -> None:
    result = CliRunner().invoke(main, ["net", "logs", "-n", digits])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


SIGNED = [
    (path, cmd) for path, cmd in commands(main) if any(p.name == "signer" and p.required for p in cmd.params)
]


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
    assert result.exit_code == 2 and "--trade-id" in result.output, result.output
