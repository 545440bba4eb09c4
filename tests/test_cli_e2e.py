"""The user's path, as subprocesses: ``net init``, ``net up``, ``trade import``, ``account show
--json``, ``net down``.

The balances the network reports are checked against an independent replay of the same CSV on
an in-process ledger (the solo producer, no network): the network must settle exactly what the
rules settle, no more, no less.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.state import BlockState
from chain.store import Store
from chain.tx import Tx
from cli.localnet import devnet
from cli.localnet.process import CODE_ROOT as REPO
from contracts import default_registry
from contracts.accounts import balance_in

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

ACCOUNTS = [a["id"] for a in devnet.all_accounts()]
DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}
CURRENCY = {i["id"]: i.get("currency") for i in devnet.INSTRUMENTS}


def clearchain(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _minor(text: str, decimals: int) -> int:
    value = Decimal(text) * (10**decimals)
    assert value == value.to_integral_value()
    return int(value)


def _replay(rows: list[dict[str, str]], batch_size: int) -> dict[tuple[str, str], tuple[int, int]]:
    """The expected balances: the same tickets, in the same batches, on a solo in-process ledger."""
    genesis = parse_genesis(devnet.dev_genesis_doc())
    store = Store.in_memory()
    ledger = Ledger(store, genesis, default_registry())
    producer = SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)])
    tickets = []
    for r in rows:
        iid = r["instrument"]
        price_decimals = DECIMALS.get(CURRENCY.get(iid) or "", 0)
        qty = _minor(r["quantity"], DECIMALS[iid]) if iid in DECIMALS else int(Decimal(r["quantity"]))
        # Dated the replay chain's day: the network's tickets carry today's date, which the solo
        # ledger (at genesis time) would refuse as in the future; the outcome is the same.
        ticket = [r["trade_id"], r["buyer"], r["seller"], iid, qty, _minor(r["price"], price_decimals)]
        tickets.append([*ticket, devnet.GENESIS_DAY])
    nonce = 0
    for i in range(0, len(tickets), batch_size):
        nonce += 1
        stx = Tx(
            genesis.chain_id,
            "xchg-alpha",
            nonce,
            "settlement",
            "settle_batch",
            [tickets[i : i + batch_size]],
            0,
        )
        producer.produce([stx.sign(devnet.signing_keys("xchg-alpha"))])
    state = BlockState(store)
    return {(a, s): balance_in(state, a, s) for a in ACCOUNTS for s in DECIMALS}


@pytest.mark.slow
def test_net_up_trade_import_account_show_net_down(tmp_path: Path) -> None:
    net = tmp_path / "net"
    trades = REPO / "examples" / "trades.csv"
    with trades.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 1000
    r = clearchain("net", "init", "--dir", str(net), "--base-port", "0")
    assert r.returncode == 0, r.stderr
    try:
        r = clearchain("net", "up", "--dir", str(net))
        assert r.returncode == 0, r.stdout + r.stderr
        node = "http://" + json.loads((net / "network.json").read_text())["nodes"][1]["rpc"]
        common = ["--node", node, "--keys-dir", str(net / "keys")]
        r = clearchain("trade", "import", str(trades), "--batch-size", "1000", "--json", *common, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        summary = json.loads(r.stdout)
        expected = _replay(rows, 1000)
        assert summary["settled"] + summary["failed"] == len(rows)
        assert summary["failed"] > 0 and summary["settled"] > summary["failed"]
        for account in ACCOUNTS:
            r = clearchain("account", "show", account, "--json", *common)
            assert r.returncode == 0, r.stderr
            shown = {b["asset"]: (b["available"], b["locked"]) for b in json.loads(r.stdout)["balances"]}
            for asset in DECIMALS:
                assert shown.get(asset, (0, 0)) == expected[(account, asset)], (account, asset)
        r = clearchain("account", "show", "NO-SUCH", *common)
        assert r.returncode == 1 and "error: unknown_account:" in r.stderr
    finally:
        r = clearchain("net", "down", "--dir", str(net))
    assert r.returncode == 0 and "stopped 4 node(s)" in r.stdout, r.stdout + r.stderr
