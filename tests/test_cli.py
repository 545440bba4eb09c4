"""The API client commands (cli/commands/) against a real single-validator node.

The node runs in this process, on its own event loop in a background thread, with real sockets
and a LevelDB store; every command goes through click's CliRunner and the node's HTTP API only,
signing with the key files ``net init`` wrote. Covers: keys, deposit and balances, trade submit
(settled and failed), trade import with failing rows, trade status, withdrawals, account open,
history, tx and block readers, and the one-line errors. The amount conversions are tested alone
first (they are pure).
"""

from __future__ import annotations

import json
import shlex
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from chain.keys import KeyPair
from cli.amounts import AmountError, format_amount, parse_amount, plain_amount
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.main import main
from cli.trade_dates import date_text, today
from node.config import ConsensusSection
from tests.exits import exit_status
from tests.netutil import NodeThread

FAST = ConsensusSection(commit_wait_ms=10)


# --- amounts (pure) ---------------------------------------------------------------------------
def test_parse_amount_is_exact() -> None:
    assert parse_amount("1.5", 2, 10**9) == 150
    assert parse_amount("182.50", 2, 10**9) == 18250
    assert parse_amount("182.500", 2, 10**9) == 18250  # trailing zeros are exact
    assert parse_amount("0.1", 8, 10**18) == 10_000_000
    assert parse_amount("7", 0, 10) == 7
    for bad in ("1.234", "-1", "1e3", "1,000", "", ".5", "0", "0.00", "nan", "1.5.0"):
        with pytest.raises(AmountError) as exc:
            parse_amount(bad, 2, 10**9)
        assert exc.value.code == "bad_amount", bad
    with pytest.raises(AmountError):
        parse_amount("1.5", 0, 10**9)  # ACME has no decimals
    with pytest.raises(AmountError):
        parse_amount("11", 0, 10)  # above the maximum


def test_format_amount() -> None:
    assert format_amount(125_000_000, 2) == "1,250,000.00"
    assert format_amount(-912_500, 2, signed=True) == "-9,125.00"
    assert format_amount(500, 0, signed=True) == "+500"
    assert format_amount(50_000_000, 8) == "0.50000000"


@given(st.integers(1, 2**62), st.integers(0, 18))
def test_plain_amount_round_trips(units: int, decimals: int) -> None:
    assert parse_amount(plain_amount(units, decimals), decimals, 2**62) == units


# --- the node ---------------------------------------------------------------------------------
class Net:
    """Runs ``clearchain`` commands, given as one shell-like string, against the node."""

    def __init__(self, directory: Path, url: str) -> None:
        self.dir = directory
        self.keys = directory / "keys"
        self.url = url
        self.runner = CliRunner()

    def run(self, command: str, keys: Path | None = None) -> Result:
        """``clearchain COMMAND --node URL --keys-dir DIR`` (every client command takes both)."""
        args = [*shlex.split(command), "--node", self.url, "--keys-dir", str(keys or self.keys)]
        return self.runner.invoke(main, args)

    def ok(self, command: str, keys: Path | None = None) -> Result:
        result = self.run(command, keys=keys)
        assert result.exit_code == 0, f"{command}: {result.output}"
        return result

    def json(self, command: str) -> Any:
        return json.loads(self.ok(command + " --json").stdout)

    def fails(self, code: str, command: str, keys: Path | None = None) -> Result:
        """The command exits 1 (2: bad input) with one line on stderr: ``error: CODE: ...``."""
        result = self.run(command, keys=keys)
        assert result.exit_code == exit_status(code), f"{command}: {result.output}"
        assert result.stderr.startswith(f"error: {code}:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result

    def available(self, account: str, asset: str) -> int:
        doc = self.json(f"account show {account}")
        return next((b["available"] for b in doc["balances"] if b["asset"] == asset), 0)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("cli") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Net(directory, node.url)
    finally:
        node.stop()


# --- keys -------------------------------------------------------------------------------------
def test_keys_new_list_show_export(tmp_path: Path) -> None:
    runner = CliRunner()
    keys = tmp_path / "keys"
    r = runner.invoke(main, ["keys", "new", "member-c/user", "--keys-dir", str(keys), "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    path = keys / "member-c.user.key"
    assert made["path"] == str(path) and stat.S_IMODE(path.stat().st_mode) == 0o600
    r = runner.invoke(main, ["keys", "new", "member-c/user", "--keys-dir", str(keys)])
    assert r.exit_code == 1 and "error: key_exists:" in r.stderr
    assert path.read_text().strip() != ""  # not overwritten
    r = runner.invoke(main, ["keys", "show", "member-c/user", "--keys-dir", str(keys)])
    assert r.exit_code == 0 and r.stdout.strip() == made["public_key"]
    r = runner.invoke(main, ["keys", "list", "--keys-dir", str(keys), "--json"])
    listed = json.loads(r.stdout)["keys"]
    assert listed == [{"name": "member-c.user", "public_key": made["public_key"], "error": None}]
    r = runner.invoke(main, ["keys", "list", "--keys-dir", str(keys)])
    assert "member-c.user" in r.stdout and made["public_key"] in r.stdout
    r = runner.invoke(main, ["keys", "export", "member-c.user", "--keys-dir", str(keys)])
    assert r.exit_code == 0 and "SECRET" in r.stderr
    assert KeyPair.from_seed(bytes.fromhex(r.stdout.strip())).key_id == made["public_key"]
    r = runner.invoke(main, ["keys", "show", "nobody", "--keys-dir", str(keys)])
    assert r.exit_code == 1 and "error: key_missing:" in r.stderr
    r = runner.invoke(main, ["keys", "new", "../escape", "--keys-dir", str(keys)])
    assert r.exit_code == 1 and "error: bad_key_name:" in r.stderr


@pytest.mark.io
def test_keys_list_of_a_network(net: Net) -> None:
    r = CliRunner().invoke(main, ["keys", "list", "--keys-dir", str(net.keys), "--json"])
    listed = {k["name"]: k["public_key"] for k in json.loads(r.stdout)["keys"]}
    assert listed["member-a.user"] == KeyPair.dev("member-a/user").key_id
    assert len(listed) == sum(len(names) for _, _, names in devnet.participants(1).values())


# --- custody and accounts ---------------------------------------------------------------------
@pytest.mark.io
def test_deposit_then_account_show(net: Net) -> None:
    before = net.available("A-C001", "USD")
    r = net.ok("deposit --account A-C001 --asset USD --amount 1234.56 --reference wire-cli-1")
    assert "deposited USD 1,234.56 into A-C001" in r.stdout
    doc = net.json("account show A-C001")
    usd = next(b for b in doc["balances"] if b["asset"] == "USD")
    assert usd["available"] == before + 123456 and usd["decimals"] == 2
    shown = net.ok("account show A-C001").stdout
    assert "client account of member-a" in shown and usd["display"] in shown
    net.fails("duplicate_deposit", "deposit --account A-C001 --asset USD --amount 1 --reference wire-cli-1")
    history = net.json("account history A-C001")
    deposits = [m for m in history["movements"] if m["event"] == "deposited" and m["ref"] == "wire-cli-1"]
    assert [m["delta"] for m in deposits] == [123456]
    assert "wire-cli-1" in net.ok("account history A-C001 --limit 1000").stdout


@pytest.mark.io
def test_withdrawal_request_reject_cancel_confirm(net: Net) -> None:
    before = net.available("B-C002", "USD")
    wid = net.ok("withdraw request --account B-C002 --asset USD --amount 100.00").stdout.split()[1]
    usd = next(b for b in net.json("account show B-C002")["balances"] if b["asset"] == "USD")
    assert (usd["available"], usd["locked"], usd["locked_display"]) == (before - 10000, 10000, "100.00")
    net.ok(f"withdraw reject {wid} --reason 'name mismatch'")
    net.fails("withdrawal_not_pending", f"withdraw cancel {wid} --as member-b")
    wid = net.ok("withdraw request --account B-C002 --asset USD --amount 5").stdout.split()[1]
    net.ok(f"withdraw cancel {wid} --as member-b")
    wid = net.ok("withdraw request --account B-C002 --asset USD --amount 0.01 --as member-b").stdout.split()[
        1
    ]
    assert "left B-C002" in net.ok(f"withdraw confirm {wid}").stdout
    assert net.available("B-C002", "USD") == before - 1
    net.fails("not_account_owner", "withdraw request --account B-C002 --asset USD --amount 1 --as member-a")


@pytest.mark.io
def test_account_open(net: Net) -> None:
    net.ok("account open A-C900 --kind client --client client-900 --as member-a")
    doc = net.json("account show A-C900")
    assert (doc["owner"], doc["kind"], doc["client"], doc["balances"]) == (
        "member-a",
        "client",
        "client-900",
        [],
    )
    net.fails("account_exists", "account open A-C900 --kind house --as member-a")
    net.fails("bad_arguments", "account open A-C901 --kind house --client x --as member-a")


@pytest.mark.io
def test_account_list_pages(net: Net) -> None:
    every = net.json("account list --limit 1000")
    ids = [a["id"] for a in every["accounts"]]
    assert ids == sorted(ids) and {"A-C001", "B-HOUSE"} <= set(ids) and every["next"] is None
    walked: list[str] = []
    after = ""
    for _ in range(100):
        page = net.json("account list --limit 2" + (f" --after {after}" if after else ""))
        walked += [a["id"] for a in page["accounts"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert walked == ids
    text = net.ok("account list --limit 2").stdout
    assert text.splitlines()[0].split() == ["account", "owner", "kind", "client", "status", "assets"]
    assert f"more: clearchain account list --after {ids[1]} --limit 2" in text
    b_accounts = [a["id"] for a in every["accounts"] if a["owner"] == "member-b"]
    assert [a["id"] for a in net.json("account list --owner member-b")["accounts"]] == b_accounts
    assert "B-C001   member-b  client  client-101  active" in net.ok("account list --owner member-b").stdout
    assert net.ok("account list --owner nobody").stdout.strip() == "no accounts of nobody"
    net.fails("bad_id", "account list --after 'a b'")
    net.fails("bad_id", "account list --owner @")


@pytest.mark.io
def test_withdraw_show_and_the_pending_list(net: Net) -> None:
    first = int(net.ok("withdraw request --account B-C001 --asset USD --amount 12.34").stdout.split()[1])
    second = int(net.ok("withdraw request --account B-C001 --asset USD --amount 0.5").stdout.split()[1])
    shown = net.ok(f"withdraw show {first}").stdout.strip()
    assert shown.startswith(
        f"withdrawal {first}: USD 12.34 from B-C001, pending (requested by member-b at height "
    )
    pending = [w["id"] for w in net.json("withdraw list")["withdrawals"]]
    assert {first, second} <= set(pending) and pending == sorted(pending)
    page = net.json(f"withdraw list --after {first - 1} --limit 1")
    assert [w["id"] for w in page["withdrawals"]] == [first] and page["next"] == first
    assert (
        f"more: clearchain withdraw list --after {first} --limit 1"
        in net.ok(f"withdraw list --after {first - 1} --limit 1").stdout
    )
    net.ok(f"withdraw confirm {first}")
    net.ok(f"withdraw cancel {second} --as member-b")
    doc = net.json(f"withdraw show {first}")
    assert (doc["status"], doc["amount"], doc["requested_by"]) == ("confirmed", 1234, "member-b")
    assert doc["requested_height"] < doc["height"]
    assert (
        f", confirmed at height {doc['height']} (requested by member-b"
        in net.ok(f"withdraw show {first}").stdout
    )
    after = [w["id"] for w in net.json("withdraw list")["withdrawals"]]
    assert first not in after and second not in after
    assert (
        net.ok(f"withdraw list --after {second}").stdout.strip() == f"no pending withdrawals after {second}"
    )
    net.fails("unknown_withdrawal", "withdraw show 999999")


# --- trades -----------------------------------------------------------------------------------
@pytest.mark.io
def test_trade_submit_settles_then_status_tx_and_block(net: Net) -> None:
    r = net.ok(
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 10 --price 182.50 --trade-id CLI-T1"
    )
    assert "settled CLI-T1: A-C001 buys 10 ACME from B-C001 at USD 182.50, pays USD 1,825.00" in r.stdout
    assert net.ok("trade status CLI-T1").stdout.startswith("trade CLI-T1 (xchg-alpha): settled at height")
    assert net.json("trade status CLI-T1")["status"] == "settled"
    before = today()
    doc = net.json("trade submit --buyer A-C002 --seller B-HOUSE --instrument BTC --qty 0.5 --price 97000")
    assert doc["ticket"][4:6] == [50_000_000, 9_700_000] and doc["trade_id"].startswith("T-")
    assert before <= doc["ticket"][6] <= today()  # dated today by the local clock
    tx_hash, height = doc["tx"]["hash"], doc["tx"]["height"]
    shown = net.json(f"tx show {tx_hash}")
    assert shown["status"] == "committed" and shown["receipt"]["ok"] and shown["height"] == height
    assert "settlement.trade_settled" in net.ok(f"tx show {tx_hash}").stdout
    block = net.json(f"block show {height}")
    assert tx_hash in block["txs"] and block["height"] == height
    assert tx_hash in net.ok(f"block show {height}").stdout
    assert net.json("block show latest")["height"] >= height
    listed = net.json(f"block list --from 1 --to {height}")
    assert [b["height"] for b in listed["blocks"]] == list(range(1, height + 1))
    assert listed["blocks"][-1]["txs"] == 1
    assert [b["height"] for b in net.json("block list --from 0 --to 1")["blocks"]] == [0, 1]
    assert "none (genesis)" in net.ok("block show 0").stdout
    assert f"\n{height:>6}  {block['hash']}" in "\n" + net.ok("block list").stdout
    net.fails("unknown_tx", "tx show " + "00" * 32)
    net.fails("block_not_found", "block show 999999")


@pytest.mark.io
def test_trade_submit_failure_shows_code(net: Net) -> None:
    r = net.fails(
        "insufficient_securities",
        "trade submit --buyer A-HOUSE --seller B-C002 --instrument ACME --qty 10 --price 182.50 --trade-id CLI-F1",
    )
    assert "trade CLI-F1 failed: B-C002 has 0 ACME, delivers 10 ACME" in r.stderr
    shown = net.ok("trade status CLI-F1").stdout  # it failed on chain: the node says so, and why
    assert shown.startswith("trade CLI-F1 (xchg-alpha): failed at height ") and (
        ": insufficient_securities: B-C002 has 0 ACME, delivers 10 ACME (tx " in shown
    ), shown
    doc = net.json("trade status CLI-F1")
    assert (doc["status"], doc["code"]) == ("failed", "insufficient_securities") and len(doc["tx"]) == 64
    net.fails("bad_id", "trade status 'a b'")
    net.fails(
        "same_account",
        "trade submit --buyer A-HOUSE --seller A-HOUSE --instrument ACME --qty 1 --price 1 --trade-id CLI-F2",
    )
    net.fails(
        "duplicate_trade_id",
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-id CLI-T1",
    )


TRADES_CSV = """trade_id,buyer,seller,instrument,quantity,price
IMP-1,A-C001,B-HOUSE,ACME,5,182.50
IMP-2,B-C001,A-HOUSE,TBILL,1.2345,99.50
IMP-3,A-HOUSE,A-HOUSE,ACME,1,180
IMP-4,Z-NOBODY,B-HOUSE,GLOBEX,1,41.10
IMP-5,B-C002,A-HOUSE,ACME,90000,182.50
IMP-6,A-C001,B-C001,USD,10.00,1
IMP-7,A-C002,B-HOUSE,BTC,0.00010000,97000.00
"""


@pytest.mark.io
def test_trade_import(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(TRADES_CSV)
    summary = net.json(f"trade import {path} --batch-size 2 --in-flight 2")
    counts = {k: summary[k] for k in ("trades", "batches", "settled", "failed", "no_outcome")}
    assert counts == {"trades": 7, "batches": 4, "settled": 3, "failed": 4, "no_outcome": 0}
    by_code = {f["code"]: (f["count"], f["example"]["trade_id"]) for f in summary["failures"]}
    assert by_code == {
        "same_account": (1, "IMP-3"),
        "unknown_account": (1, "IMP-4"),
        "insufficient_cash": (1, "IMP-5"),
        "instrument_is_cash": (1, "IMP-6"),
    }
    example = next(f["example"] for f in summary["failures"] if f["code"] == "unknown_account")
    assert example == {"trade_id": "IMP-4", "line": 5, "message": "no account Z-NOBODY"}
    assert [t["trades"] for t in summary["txs"]] == [2, 2, 2, 1]
    assert net.json("trade status IMP-2")["status"] == "settled"
    again = net.ok(f"trade import {path}").stdout  # settled trade ids are final
    assert "settled  0" in again and "failed   4" in again and "already settled 3" in again


@pytest.mark.io
def test_trade_import_shows_progress_and_refuses_a_large_file_at_once(
    net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.commands import trade as trade_commands

    path = tmp_path / "progress.csv"
    header = "trade_id,buyer,seller,instrument,quantity,price\n"
    path.write_text(header + "".join(f"PRG-{i},A-C001,B-HOUSE,ACME,1,182.50\n" for i in range(5)))
    monkeypatch.setattr(trade_commands, "PROGRESS_ROWS", 2)
    shown = net.ok(f"trade import {path}")
    assert "read 2 of 5 rows\nread 4 of 5 rows\n" in shown.stderr and "settled  5" in shown.stdout
    quiet = net.run(f"trade import {path} --json")  # JSON output: no progress lines
    assert quiet.exit_code == 0 and "read " not in quiet.stderr, quiet.stderr
    monkeypatch.setattr(trade_commands, "IMPORT_BYTES_MAX", 64)
    refused = net.fails("bad_csv", f"trade import {path}")
    assert "more than 64 (what 1,000,000 trades" in refused.stderr


@pytest.mark.io
def test_trade_import_refuses_a_bad_row_before_sending(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    header = "trade_id,buyer,seller,instrument,quantity,price\n"
    path.write_text(header + "BAD-1,A-C001,B-HOUSE,ACME,1,182.50\nBAD-2,A-C001,B-HOUSE,ACME,1.5,182.50\n")
    assert f"{path} line 3: quantity 1.5" in net.fails("bad_amount", f"trade import {path}").stderr
    net.fails("unknown_trade", "trade status BAD-1")  # nothing was sent
    path.write_text("trade_id,buyer,seller,instrument,qty,price\n")
    net.fails("bad_csv", f"trade import {path}")
    path.write_text(header + "D-1,A-C001,B-HOUSE,NOPE,1,1\n")
    net.fails("unknown_instrument", f"trade import {path}")
    path.write_text(header + "D-1,A-C001,B-HOUSE,ACME,1,1\nD-1,A-C001,B-HOUSE,ACME,1,1\n")
    net.fails("duplicate_trade_id", f"trade import {path}")
    path.write_text(header + "D-1,A-C001,B-HOUSE,ACME,1\n")
    net.fails("bad_csv", f"trade import {path}")


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.io
def test_one_line_errors(net: Net, tmp_path: Path) -> None:
    net.fails("unknown_account", "account show NO-SUCH")
    net.fails("unknown_account", "account history NO-SUCH")
    r = CliRunner().invoke(main, ["account", "show", "A-C001", "--node", "http://127.0.0.1:1"])
    assert r.exit_code == 1 and r.stderr.startswith("error: node_unreachable:")
    net.fails("bad_amount", "deposit --account A-C001 --asset USD --amount 1.234 --reference w-x")
    net.fails(
        "bad_amount", "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1.5 --price 1"
    )
    net.fails(
        "bad_tenor",
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --settlement T-2",
    )
    for bad in ("2026-13-01", "yesterday", "2026-1-1", ""):
        r = net.fails(
            "bad_date",
            f"trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-date '{bad}'",
        )
        assert "is not a date YYYY-MM-DD" in r.stderr
    net.fails(
        "bad_date",
        "cycle submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-date 1",
    )
    old = date_text(today() - 30)
    r = net.fails(
        "trade_expired",
        f"trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-date {old} --trade-id OLD-1",
    )
    assert "older than the 7-day window of trade ids" in r.stderr
    dated = net.json(
        f"trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-date {date_text(today() - 1)}"
    )
    assert (
        dated["ticket"][6] == today() - 1
        and net.json(f"trade status {dated['trade_id']}")["trade_date"] == today() - 1
    )
    accepted = net.json(
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --settlement T+2 --trade-id TP2-1"
    )
    assert accepted["accepted"]["tplus"] == 2 and accepted["trade_id"] == "TP2-1"
    net.fails(
        "duplicate_trade_id",
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 1 --price 1 --trade-id TP2-1",
    )
    net.fails("unknown_instrument", "deposit --account A-C001 --asset EUR --amount 1 --reference w-y")
    net.fails(
        "unknown_participant", "deposit --account A-C001 --asset USD --amount 1 --reference w-z --as nobody"
    )
    partial = tmp_path / "keys"
    partial.mkdir()
    shutil.copy2(net.keys / "member-a.user.key", partial / "member-a.user.key")
    r = net.fails("not_enough_keys", "account open A-C950 --kind house --as member-a", keys=partial)
    assert "member-a signs with 2 of its 3 keys" in r.stderr and "(member-a.user)" in r.stderr
