"""The one parser of user input (cli/inputs.py) and the CSV import that uses it.

Properties: anything with a non-ASCII character is refused as an amount, a tenor, an id, a node
URL; amounts round-trip through ``plain_amount``; ``printable`` leaves nothing a terminal would
act on. Then ``read_trades_csv`` on small files, with a stand-in for the node's instrument list
(no network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ClearchainError
from chain.ids import is_valid_id
from chain.limits import ID_CHARS_MAX
from cli.commands import trade as trade_commands
from cli.commands.plumbing import CliError
from cli.commands.trade import CSV_FIELD_CHARS_MAX, read_trades_csv
from cli.inputs import (
    AmountError,
    InputError,
    parse_amount,
    parse_id,
    parse_int,
    parse_node_url,
    parse_tenor,
    plain_amount,
    printable,
)

# Text with at least one non-ASCII character somewhere (digits of other scripts included).
non_ascii = st.tuples(st.text(max_size=5), st.characters(min_codepoint=128), st.text(max_size=5)).map("".join)
UNICODE_DIGITS = ["١٠", "１０", "１٠", "²", "٣", "۵", "߁", "𝟙"]


# --- amounts ----------------------------------------------------------------------------------
@given(non_ascii)
def test_amount_with_a_non_ascii_char_is_refused(text: str) -> None:
    with pytest.raises(AmountError) as err:
        parse_amount(text, 8, 10**18)
    assert err.value.code == "bad_amount"


@pytest.mark.parametrize("text", UNICODE_DIGITS + ["1.٥", "٠.5", "1\u00a0000"])
def test_unicode_digits_are_not_numbers(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, 2, 10**9)
    with pytest.raises(InputError) as err:
        parse_int(text, "count")
    assert err.value.code == "bad_number"


@given(st.integers(0, 18), st.integers(1, 10**18))
def test_amount_round_trip(decimals: int, units: int) -> None:
    assert parse_amount(plain_amount(units, decimals), decimals, 10**18) == units


def test_parse_int() -> None:
    assert parse_int(" 42 ", "n") == 42
    assert parse_int("-3", "n", minimum=-5) == -3
    for bad in ("", "-3", "1e3", "1_000", "0x10", "+1", "4" * 30):
        with pytest.raises(InputError):
            parse_int(bad, "n")
    with pytest.raises(InputError):
        parse_int("31", "n", maximum=30)


# --- tenors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "n"), [("T", 0), ("T+0", 0), ("t+3", 3), (" T + 2 ", 2), ("T+30", 30)])
def test_tenor(text: str, n: int) -> None:
    assert parse_tenor(text, 30) == n


@pytest.mark.parametrize("text", ["T+٣", "T+²", "T+３", "T+31", "T-1", "T+", "", "3", "T+1.5", "T++1"])
def test_bad_tenor(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_tenor(text, 30)
    assert err.value.code == "bad_tenor"


@given(non_ascii)
def test_tenor_with_a_non_ascii_char_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_tenor("T+" + text, 30)
    with pytest.raises(InputError):
        parse_tenor(text, 30)


# --- ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [".", "..", "...", "." * ID_CHARS_MAX, "", "a/b", "a b", "x" * 65, "é"])
def test_bad_ids(text: str) -> None:
    assert not is_valid_id(text)
    with pytest.raises(InputError) as err:
        parse_id(text, "trade id")
    assert err.value.code == "bad_id"


@pytest.mark.parametrize("text", ["A-C001", "a.", ".a", "x" * 64, "T-1:2_3"])
def test_good_ids(text: str) -> None:
    assert parse_id(text) == text


@given(non_ascii)
def test_id_with_a_non_ascii_char_is_refused(text: str) -> None:
    assert not is_valid_id(text)


# --- node URLs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "url"),
    [("http://127.0.0.1:26601", "http://127.0.0.1:26601"), ("https://node.example/api/", "https://node.example/api"),
     ("http://[::1]:80", "http://[::1]:80")],
)  # fmt: skip
def test_node_url(text: str, url: str) -> None:
    assert parse_node_url(text) == url


@pytest.mark.parametrize(
    "text",
    ["not a url", "http://[::1", "ftp://127.0.0.1:21", "127.0.0.1:29401", "http://", "http://h:99999",
     "http://h:x", "http://u:p@h:1", "http://h:1/?q", "http://h:0", "", "http://h\x1b:1", "http://é:1"],
)  # fmt: skip
def test_bad_node_url(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_node_url(text)
    assert err.value.code == "bad_node_url"
    assert "\n" not in err.value.message and "\x1b" not in err.value.message


def test_bare_host_port_gets_a_hint() -> None:
    with pytest.raises(InputError) as err:
        parse_node_url("127.0.0.1:29401")
    assert "did you mean http://127.0.0.1:29401" in err.value.message


@given(st.text(max_size=40))
def test_node_url_never_raises_anything_else(text: str) -> None:
    try:
        url = parse_node_url(text)
    except InputError:
        return
    assert url.startswith(("http://", "https://")) and url.isascii()


# --- printable --------------------------------------------------------------------------------
@given(st.text())
def test_printable_leaves_no_control_characters(text: str) -> None:
    out = printable(text)
    assert out.isprintable()
    assert printable(out) == out
    if text.isprintable():
        assert out == text


def test_printable_escapes_like_repr() -> None:
    assert printable("a\x1b[2Jb\x00\u202e") == "a\\x1b[2Jb\\x00\\u202e"


# --- CSV import -------------------------------------------------------------------------------
class Instruments:
    """What read_trades_csv asks of a Session: the instruments, from no node."""

    known = {"ACME": {"id": "ACME", "decimals": 0, "currency": "USD"}, "USD": {"id": "USD", "decimals": 2}}

    def instrument(self, iid: str) -> dict[str, Any]:
        if iid not in self.known:
            raise CliError("unknown_instrument", f"no instrument {iid}")
        return self.known[iid]

    def decimals(self, asset: str) -> int:
        return int(self.instrument(asset)["decimals"])


HEADER = "trade_id,buyer,seller,instrument,quantity,price\n"


TODAY = 20_454  # what the CLI takes for today in these tests (2026-01-01), whatever the clock says


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trade_commands, "ticket_date", lambda given: TODAY if given is None else given)


def read(tmp_path: Path, text: str | bytes) -> list[list[Any]]:
    path = tmp_path / "t.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return [row.ticket for row in read_trades_csv(path, Instruments())]  # type: ignore[arg-type]


def refused(tmp_path: Path, text: str | bytes, code: str = "bad_csv") -> str:
    with pytest.raises(ClearchainError) as err:
        read(tmp_path, text)
    assert err.value.code == code, err.value.message
    assert err.value.message.isprintable(), err.value.message
    return err.value.message


def test_csv_reads_tickets(tmp_path: Path) -> None:
    assert read(tmp_path, HEADER + 'T-1,A-C001,B-HOUSE,ACME,2,"182.50"\n\nT-2, A, B, ACME, 1, "1.5"\n') == [
        ["T-1", "A-C001", "B-HOUSE", "ACME", 2, 18250, TODAY],
        ["T-2", "A", "B", "ACME", 1, 150, TODAY],
    ]


def test_csv_columns_in_any_order(tmp_path: Path) -> None:
    text = "price,quantity,instrument,seller,buyer,trade_id\n1,2,ACME,B,A,T-1\n"
    assert read(tmp_path, text) == [["T-1", "A", "B", "ACME", 2, 100, TODAY]]


def test_csv_trade_date_column_is_optional(tmp_path: Path) -> None:
    text = "trade_id,buyer,seller,instrument,quantity,price,trade_date\nT-1,A,B,ACME,1,1,2026-01-02\nT-2,A,B,ACME,1,1,1970-01-01\n"
    assert read(tmp_path, text) == [
        ["T-1", "A", "B", "ACME", 1, 100, TODAY + 1],
        ["T-2", "A", "B", "ACME", 1, 100, 0],
    ]


@pytest.mark.parametrize(
    "date", ["2026-02-30", "2026-1-2", "02/01/2026", "", "tomorrow", "20260102", "1969-12-31"]
)
def test_csv_bad_trade_date_is_an_input_error_naming_the_line(tmp_path: Path, date: str) -> None:
    text = f"trade_id,buyer,seller,instrument,quantity,price,trade_date\nT-1,A,B,ACME,1,1,2026-01-02\nT-2,A,B,ACME,1,1,{date}\n"
    message = refused(tmp_path, text, "bad_date")
    assert "line 3" in message and "trade date" in message


def test_csv_duplicated_column_is_refused(tmp_path: Path) -> None:
    text = "trade_id,buyer,seller,instrument,quantity,price,price\nT-1,A,B,ACME,1,1,2\n"
    assert "column price appears more than once" in refused(tmp_path, text)


def test_csv_field_too_long(tmp_path: Path) -> None:
    message = refused(
        tmp_path, HEADER + "T-1,A,B,ACME,1,1\nT-2,A,B,ACME,1," + "9" * (CSV_FIELD_CHARS_MAX + 1) + "\n"
    )
    assert "field too long on line 3" in message


def test_csv_not_utf8(tmp_path: Path) -> None:
    assert "not a UTF-8 CSV file" in refused(tmp_path, HEADER.encode() + b"T-1,A,B,ACME,1,\xff\n")


def test_csv_control_characters_are_escaped(tmp_path: Path) -> None:
    message = refused(tmp_path, HEADER + "T-1,A,B,\x1b[2JACME\x00,1,1\n", "unknown_instrument")
    assert "\\x1b[2JACME\\x00" in message
    message = refused(tmp_path, HEADER + "T\x07,A,B,ACME,1,1\nT\x07,A,B,ACME,1,1\n", "bad_id")
    assert "\\x07" in message


def test_csv_unicode_digits_are_refused(tmp_path: Path) -> None:
    assert "line 2" in refused(tmp_path, HEADER + "T-1,A,B,ACME,١٠,1\n", "bad_amount")


def test_csv_wrong_field_count(tmp_path: Path) -> None:
    refused(tmp_path, HEADER + "T-1,A,B,ACME,1\n")
    refused(tmp_path, HEADER + "T-1,A,B,ACME,1,1,1\n")
    refused(tmp_path, HEADER)


class Untouchable(Instruments):
    """A session that must not be asked: the file is refused before any row is parsed."""

    def instrument(self, iid: str) -> dict[str, Any]:
        raise AssertionError("a row was parsed")


def test_csv_larger_than_the_byte_bound_is_refused_from_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trade_commands, "IMPORT_BYTES_MAX", 100)
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "".join(f"T-{i},A,B,ACME,1,1\n" for i in range(4)))  # 48 + 4 * 17 bytes
    with pytest.raises(ClearchainError) as err:
        read_trades_csv(path, Untouchable())  # type: ignore[arg-type]
    assert err.value.code == "bad_csv" and "116 bytes, more than 100" in err.value.message
    path.write_text(HEADER + "".join(f"T-{i},A,B,ACME,1,1\n" for i in range(3)))  # 99 bytes: within the bound
    assert len(read(tmp_path, path.read_text())) == 3


def test_csv_over_the_row_limit_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trade_commands, "IMPORT_TRADES_MAX", 5)
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "".join(f"T-{i},A,B,ACME,1,1\n" for i in range(6)) + "\n")
    with pytest.raises(ClearchainError) as err:
        read_trades_csv(path, Untouchable())  # type: ignore[arg-type]
    assert err.value.code == "bad_csv" and "more than 5 trades (line 7)" in err.value.message
    path.write_text(HEADER + "".join(f"T-{i},A,B,ACME,1,1\n\n" for i in range(5)))  # blank lines don't count
    assert len(read(tmp_path, path.read_text())) == 5


def test_csv_progress_every_n_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trade_commands, "PROGRESS_ROWS", 2)
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "".join(f"T-{i},A,B,ACME,1,1\n" for i in range(5)))
    calls: list[tuple[int, int]] = []
    rows = read_trades_csv(path, Instruments(), lambda done, total: calls.append((done, total)))  # type: ignore[arg-type]
    assert len(rows) == 5 and calls == [(2, 5), (4, 5)]
