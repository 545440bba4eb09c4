"""Reserves: the custodian's attestation (custody.attest_reserves), the report that sets it
against client and house balances (contracts/reserves.py), ``GET /reserves`` and the
``clearchain reserves`` commands.

The contract is driven through real blocks; a failed attestation must write nothing but the
sender's nonce. The report is checked against balances computed independently from the genesis
document and the transactions sent, and by a property: client + house totals equal the custody
supply of every asset after any history of deposits, trades and withdrawals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.genesis import Genesis
from chain.limits import AMOUNT_MAX
from chain.policy import nonce_key
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import init_network
from cli.main import main
from contracts.reserves import AssetReserves, Attestation, compute_reserves
from node.config import ConsensusSection
from tests.conftest import Chain
from tests.test_balance_proof import Cli, NodeThread

KIND = {a["id"]: a["kind"] for a in devnet.all_accounts()}
ACCOUNTS = list(KIND)
ASSETS = [i["id"] for i in devnet.INSTRUMENTS]
DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}


def genesis_totals() -> dict[tuple[str, str], int]:
    """(asset, kind) -> total of the dev genesis balances, from the document itself."""
    totals: dict[tuple[str, str], int] = {}
    for account, asset, amount in devnet.all_balances():
        totals[(asset, KIND[account])] = totals.get((asset, KIND[account]), 0) + amount
    return totals


def report(chain: Chain) -> dict[str, AssetReserves]:
    return {r.asset: r for r in compute_reserves(chain.store)}


def state_snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def attest(chain: Chain, asset: str, amount: int, reference: str, sender: str = "custodian") -> SignedTx:
    return chain.tx(sender, "custody", "attest_reserves", [asset, amount, reference])


def fails(chain: Chain, stx: SignedTx, code: str) -> None:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = state_snapshot(chain)
    block, result = chain.run(stx)
    (receipt,) = result.receipts
    assert block.txs == (stx,) and receipt.code == code and receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert state_snapshot(chain) == before


def rejected(chain: Chain, stx: SignedTx, code: str) -> None:
    """``stx`` is left out of the block with ``code``; nothing is written."""
    before = state_snapshot(chain)
    block, result = chain.run(stx)
    assert block.txs == () and [r.error.code for r in result.rejected] == [code]
    assert state_snapshot(chain) == before
    chain.nonces[stx.tx.sender] -= 1  # the nonce stays free


# --- the contract -----------------------------------------------------------------------------
def test_attest_reserves_records_the_latest(chain: Chain) -> None:
    block, result = chain.run(attest(chain, "USD", 1_850_000_00, "stmt-1"))
    (receipt,) = result.receipts
    assert receipt.ok and receipt.event_fields(0) == {
        "asset": "USD",
        "amount": 1_850_000_00,
        "reference": "stmt-1",
        "custodian": "custodian",
    }
    assert chain.state().get(b"custody/reserve/USD") == (1_850_000_00, "stmt-1", block.height, "custodian")
    # A later statement replaces it; zero is a statement too; other assets are untouched.
    block2, _ = chain.run(attest(chain, "USD", 0, "stmt-2"), attest(chain, "BTC", AMOUNT_MAX, "wallet-9"))
    assert chain.state().get(b"custody/reserve/USD") == (0, "stmt-2", block2.height, "custodian")
    assert chain.state().get(b"custody/reserve/BTC") == (AMOUNT_MAX, "wallet-9", block2.height, "custodian")
    assert chain.state().get(b"custody/reserve/ACME") is None
    # It moves no money.
    assert _totals(chain) == genesis_totals()


def _totals(chain: Chain) -> dict[tuple[str, str], int]:
    out = {}
    for r in compute_reserves(chain.store):
        if r.client_total:
            out[(r.asset, "client")] = r.client_total
        if r.house_total:
            out[(r.asset, "house")] = r.house_total
    return out


@pytest.mark.parametrize("sender", ["member-a", "xchg-alpha", "admin", "oracle-1"])
def test_only_a_custodian_attests(chain: Chain, sender: str) -> None:
    fails(chain, attest(chain, "USD", 1, "stmt-1", sender=sender), "not_custodian")


def test_attest_reserves_rules(chain: Chain) -> None:
    fails(chain, attest(chain, "NOPE", 1, "stmt-1"), "unknown_instrument")
    rejected(chain, attest(chain, "USD", -1, "stmt-1"), "bad_arguments")
    rejected(chain, attest(chain, "USD", AMOUNT_MAX + 1, "stmt-1"), "bad_arguments")
    rejected(chain, attest(chain, "USD", 1, "stmt/1"), "bad_arguments")
    rejected(chain, attest(chain, "USD", "1", "stmt-1"), "bad_arguments")  # type: ignore[arg-type]
    rejected(chain, chain.tx("custodian", "custody", "attest_reserves", ["USD", 1]), "bad_arguments")
    # After all that, a good one still applies (the nonces were left free).
    chain.run(attest(chain, "USD", 5, "stmt-ok"))
    assert chain.state().get(b"custody/reserve/USD")[:2] == (5, "stmt-ok")


def test_a_failed_attestation_in_a_block_leaves_the_other(chain: Chain) -> None:
    _, result = chain.run(attest(chain, "NOPE", 1, "a"), attest(chain, "USD", 7, "b"))
    assert [r.code for r in result.receipts] == ["unknown_instrument", "ok"]
    assert chain.state().get(b"custody/reserve/NOPE") is None
    assert chain.state().get(b"custody/reserve/USD")[:2] == (7, "b")


# --- the computation --------------------------------------------------------------------------
def test_report_at_genesis_splits_client_and_house(chain: Chain, genesis: Genesis) -> None:
    totals = genesis_totals()
    rows = compute_reserves(chain.store)
    assert [r.asset for r in rows] == sorted(ASSETS)
    for r in rows:
        assert r.decimals == DECIMALS[r.asset]
        assert r.client_total == totals.get((r.asset, "client"), 0)
        assert r.house_total == totals.get((r.asset, "house"), 0)
        assert r.supply == r.client_total + r.house_total
        assert r.attested is None and r.coverage is None and not r.is_shortfall
    usd = report(chain)["USD"]
    assert (usd.client_total, usd.house_total) == (
        1_850_000_00,
        114_300_000_00,
    )  # members 100M; bond, dividend, fund funds 14.3M


def test_coverage_sign_and_locked_amounts(chain: Chain) -> None:
    # A withdrawal request locks; the locked amount is still the client's.
    chain.run(chain.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 100_00]))
    assert report(chain)["USD"].client_total == 1_850_000_00
    client = report(chain)["USD"].client_total
    for attested, coverage in ((client - 1, -1), (client, 0), (client + 12_345, 12_345)):
        block, _ = chain.run(attest(chain, "USD", attested, f"s{attested}"))
        usd = report(chain)["USD"]
        assert usd.attested == Attestation(attested, f"s{attested}", block.height, "custodian")
        assert usd.coverage == coverage and usd.is_shortfall == (coverage < 0)
    # Confirming the withdrawal takes it off the ledger: the client total and supply fall.
    chain.run(chain.tx("custodian", "custody", "confirm_withdrawal", [1]))
    usd = report(chain)["USD"]
    assert usd.client_total == client - 100_00 and usd.supply == usd.client_total + usd.house_total
    assert usd.coverage == 12_345 + 100_00


def test_new_accounts_count_by_their_kind(chain: Chain) -> None:
    chain.run(
        chain.tx("member-a", "accounts", "open", ["A-C009", "client", "client-009"]),
        chain.tx("member-a", "accounts", "open", ["A-H2", "house", None]),
    )
    chain.run(
        chain.tx("custodian", "custody", "deposit", ["A-C009", "ACME", 7, "w1"]),
        chain.tx("custodian", "custody", "deposit", ["A-H2", "ACME", 11, "w2"]),
    )
    acme = report(chain)["ACME"]
    totals = genesis_totals()
    assert acme.client_total == totals[("ACME", "client")] + 7
    assert acme.house_total == totals[("ACME", "house")] + 11


def test_report_reads_a_block_overlay(chain: Chain) -> None:
    from chain.state import BlockState

    state = BlockState(chain.store)
    state.begin()
    state.put(b"accounts/bal/B-HOUSE/ACME", (1, 2))
    state.put(b"custody/reserve/ACME", (5, "r", 3, "custodian"))
    state.commit_tx()
    acme = {r.asset: r for r in compute_reserves(state)}["ACME"]
    assert acme.house_total == genesis_totals()[("ACME", "house")] - 100_000 + 3
    assert acme.coverage == 5 - acme.client_total


trade_st = st.tuples(
    st.sampled_from(ACCOUNTS),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(["ACME", "GLOBEX", "TBILL", "BTC"]),
    st.integers(1, 10**6),
    st.integers(1, 10**6),
)
step_st = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(ACCOUNTS), st.sampled_from(ASSETS), st.integers(1, 10**10)),
    st.tuples(st.just("trade"), trade_st),
    st.tuples(st.just("withdraw"), st.sampled_from(ACCOUNTS), st.sampled_from(ASSETS), st.integers(1, 10**8)),
    st.tuples(st.just("confirm"), st.integers(1, 4)),
    st.tuples(st.just("reject"), st.integers(1, 4)),
    st.tuples(st.just("attest"), st.sampled_from(ASSETS), st.integers(0, 10**12)),
)


@settings(max_examples=25)
@given(st.lists(st.lists(step_st, min_size=1, max_size=5), min_size=1, max_size=4))
def test_client_plus_house_is_supply_after_any_history(genesis: Genesis, blocks: list[list[Any]]) -> None:
    chain = Chain(Store.in_memory(), genesis)
    n = 0
    for steps in blocks:
        txs = []
        for step in steps:
            n += 1
            txs.append(_tx(chain, n, step))
        chain.run(*txs)
        for r in compute_reserves(chain.store):
            assert r.client_total + r.house_total == r.supply, r
            assert r.client_total >= 0 and r.house_total >= 0
            reserve = chain.state().get(b"custody/reserve/" + r.asset.encode())
            assert r.coverage == (None if reserve is None else reserve[0] - r.client_total)


def _tx(chain: Chain, n: int, step: Any) -> SignedTx:
    kind = step[0]
    if kind == "deposit":
        return chain.tx("custodian", "custody", "deposit", [step[1], step[2], step[3], f"w{n}"])
    if kind == "trade":
        buyer, seller, instrument, qty, price = step[1]
        return chain.tx(
            "xchg-alpha", "settlement", "settle", [f"T{n}", buyer, seller, instrument, qty, price, DAY]
        )
    if kind == "withdraw":
        owner = "member-a" if step[1].startswith("A-") else "member-b"
        return chain.tx(owner, "custody", "request_withdrawal", [step[1], step[2], step[3]])
    if kind in ("confirm", "reject"):
        args = [step[1]] if kind == "confirm" else [step[1], "no"]
        return chain.tx("custodian", "custody", f"{kind}_withdrawal", args)
    return chain.tx("custodian", "custody", "attest_reserves", [step[1], step[2], f"s{n}"])


# --- the API and the commands -----------------------------------------------------------------
@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, NodeThread]]:
    directory = tmp_path_factory.mktemp("reserves") / "net"
    init_network(directory, validators=1, base_port=0, consensus=ConsensusSection(commit_wait_ms=10))
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Cli(directory, node.url), node
    finally:
        node.stop()


@pytest.mark.io
def test_api_reports_the_head(cli: tuple[Cli, NodeThread]) -> None:
    runner, nt = cli
    runner.ok("reserves", "attest", "--asset", "USD", "--amount", "1850000.00", "--reference", "api-1")
    doc = Client(runner.url).get("/reserves")
    assert set(doc) == {"height", "state_root", "block_hash", "assets"}
    block = Client(runner.url).get(f"/blocks/{doc['height']}")
    assert (doc["state_root"], doc["block_hash"]) == (block["header"]["state_root"], block["hash"])
    assert nt.node is not None
    expected = nt.on_loop(lambda: [r for r in compute_reserves(nt.node.store)])  # type: ignore[union-attr]
    assert [a["asset"] for a in doc["assets"]] == [r.asset for r in expected]
    for a, r in zip(doc["assets"], expected, strict=True):
        assert set(a) == {
            "asset",
            "decimals",
            "client_total",
            "house_total",
            "supply",
            "attested",
            "coverage",
        }
        assert (a["client_total"], a["house_total"], a["supply"], a["coverage"], a["decimals"]) == (
            r.client_total, r.house_total, r.supply, r.coverage, r.decimals,
        )  # fmt: skip
    usd = next(a for a in doc["assets"] if a["asset"] == "USD")
    assert usd["attested"]["amount"] == 1_850_000_00 and usd["attested"]["reference"] == "api-1"
    assert (
        usd["attested"]["custodian"] == "custodian" and usd["coverage"] == 1_850_000_00 - usd["client_total"]
    )
    assert next(a for a in doc["assets"] if a["asset"] == "ACME")["attested"] is None


@pytest.mark.io
def test_cli_table_marks_shortfalls(cli: tuple[Cli, NodeThread]) -> None:
    runner, _ = cli
    runner.ok("reserves", "attest", "--asset", "ACME", "--amount", "0", "--reference", "vault-0")
    r = runner.ok("reserves", "attest", "--asset", "BTC", "--amount", "0.5", "--reference", "cold-1")
    assert r.stdout.startswith("attested reserves of BTC 0.50000000 (ref cold-1) as custodian (height ")
    doc = json.loads(runner.ok("reserves", "--json").stdout)
    text = runner.ok("reserves").stdout
    lines = text.splitlines()
    # Heartbeat blocks may pass between the two calls; the state does not change.
    assert lines[0].startswith("reserves at height ") and lines[0].endswith(
        f", state root {doc['state_root']}"
    )
    rows = {line.split()[0]: line for line in lines[2:] if line and not line.startswith("SHORTFALL")}
    acme = next(a for a in doc["assets"] if a["asset"] == "ACME")
    assert f"{acme['client_total']:,}" in rows["ACME"] and "vault-0" in rows["ACME"]
    assert rows["ACME"].endswith(f"-{acme['client_total']:,}  SHORTFALL")
    assert f"SHORTFALL ACME: clients hold {acme['client_total']:,}, the custodian attests 0" in text
    assert "not attested" in rows["GLOBEX"] and "SHORTFALL" not in rows["GLOBEX"]
    btc = next(a for a in doc["assets"] if a["asset"] == "BTC")
    assert btc["client_total"] == 0 and rows["BTC"].endswith("+0.50000000")
    # Failures: one line, a stable code.
    runner.fails(
        "unknown_instrument", "reserves", "attest", "--asset", "NOPE", "--amount", "1", "--reference", "x"
    )
    runner.fails(
        "bad_amount", "reserves", "attest", "--asset", "USD", "--amount", "1.001", "--reference", "x"
    )
    runner.fails(
        "not_custodian",
        "reserves",
        "attest",
        "--asset",
        "USD",
        "--amount",
        "1",
        "--reference",
        "x",
        "--as",
        "member-a",
    )
    misplaced = runner.runner.invoke(main, ["reserves", "--json", "attest"])
    assert misplaced.exit_code == 2 and "after the subcommand" in misplaced.output


@pytest.mark.io
def test_cli_reserves_needs_a_node() -> None:
    r = CliRunner().invoke(main, ["reserves", "--node", "http://127.0.0.1:9"])
    assert r.exit_code == 1 and r.stderr.startswith("error: node_unreachable:")
