"""The oracle: the median of fresh submissions, the staleness window, ``min_sources``, the price
history by height, out-of-band findings, permissions and all-or-nothing batches, driven through
real blocks; then its CLI and the ``oracle`` scenario against a real node.

Prices are checked against an independent model: the latest submission of each oracle, fresh
when submitted no more than ``staleness_blocks`` before the reading block, and the median as
the middle value (odd count) or the floor of the mean of the two middle values (even count).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.executor import CallEnv
from chain.genesis import Genesis, parse_genesis
from chain.policy import nonce_key
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.main import main
from cli.scenarios import ScenarioRun
from contracts import default_registry, oracle
from contracts.api import Context
from contracts.params import BPS
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_cli import FAST

ORACLES = ["oracle-1", "oracle-2", "oracle-3"]
NOT_ORACLES = sorted(p for p, (roles, _, _) in devnet.participants(4).items() if "oracle" not in roles)
# A node test's network: FAST consensus with a short heartbeat, so waiting for heights is quick.
QUICK = dataclasses.replace(FAST, heartbeat_ms=250)


# --- helpers (also used by tests/test_breakers.py) --------------------------------------------
def make_genesis(**params: int) -> Genesis:
    """The dev genesis with ``params`` ({"oracle.staleness_blocks": 3, ...}) overridden."""
    doc = devnet.dev_genesis_doc()
    doc["params"] = dict(params)
    return parse_genesis(doc)


def new_chain(**params: int) -> Chain:
    return Chain(Store.in_memory(), make_genesis(**params))


def ctx_of(chain: Chain, contract: str = "oracle") -> Context:
    """A read context over the committed state as of the next block (what a call there sees)."""
    return Context(
        chain.state(), CallEnv(chain.genesis.chain_id, chain.ledger.head.height + 1, 0, b""), "", contract
    )


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def run_ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    _, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return tuple(result.receipts)


def run_fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    assert block.txs == (stx,)
    receipt = result.receipts[0]
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    assert nonce_key(stx.tx.sender) in result.state_diff
    assert snapshot(chain) == before
    return receipt


def submit(chain: Chain, who: str, iid: str, price: int) -> SignedTx:
    return chain.tx(who, "oracle", "submit", [iid, price])


def events(receipt: Receipt, name: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    return [(c, n, dict(f)) for c, n, f in receipt.events if name is None or n == name]


def price_now(chain: Chain, iid: str) -> int | None:
    return oracle.current_price(ctx_of(chain), iid)


def model_median(prices: list[int]) -> int:
    ordered = sorted(prices)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return int(Fraction(ordered[n // 2 - 1] + ordered[n // 2], 2).__floor__())


# --- the median -------------------------------------------------------------------------------
def test_median_of_odd_and_even_counts(chain: Chain) -> None:
    (r,) = run_ok(chain, submit(chain, "oracle-1", "ACME", 18_000))
    assert events(r, "price") == [("oracle", "price", {"instrument": "ACME", "price": 18_000, "sources": 1})]
    run_ok(chain, submit(chain, "oracle-2", "ACME", 18_101))
    assert price_now(chain, "ACME") == 18_050  # floor of (18,000 + 18,101) / 2
    (r,) = run_ok(chain, submit(chain, "oracle-3", "ACME", 18_050))
    assert price_now(chain, "ACME") == 18_050
    assert events(r, "price")[0][2] == {"instrument": "ACME", "price": 18_050, "sources": 3}
    run_ok(chain, submit(chain, "oracle-3", "ACME", 18_090))  # an oracle's latest replaces its earlier price
    assert price_now(chain, "ACME") == 18_090
    assert [s[0] for s in oracle.fresh_submissions(ctx_of(chain), "ACME")] == ORACLES


@given(st.lists(st.integers(1, 2**48), min_size=1, max_size=30))
def test_median_matches_the_model(prices: list[int]) -> None:
    assert oracle.median(prices) == model_median(prices)
    assert min(prices) <= oracle.median(prices) <= max(prices)


def test_no_price_until_a_submission(chain: Chain) -> None:
    assert price_now(chain, "GLOBEX") is None
    with pytest.raises(Exception) as exc:
        oracle.require_price(ctx_of(chain), "GLOBEX")
    assert getattr(exc.value, "code", None) == "no_price"


# --- staleness and min_sources ----------------------------------------------------------------
def test_a_price_expires_after_the_staleness_window() -> None:
    chain = new_chain(**{"oracle.staleness_blocks": 3})
    run_ok(chain, submit(chain, "oracle-1", "GLOBEX", 4_000))  # height 1
    run_ok(chain, submit(chain, "oracle-2", "GLOBEX", 4_200))  # height 2
    for _ in range(2):  # heights 3, 4: a read at height 4 still sees height 1 (4 - 3 = 1)
        chain.run()
    ctx = Context(chain.state(), CallEnv(chain.genesis.chain_id, 4, 0, b""), "", "oracle")
    assert oracle.current_price(ctx, "GLOBEX") == 4_100
    ctx = Context(chain.state(), CallEnv(chain.genesis.chain_id, 5, 0, b""), "", "oracle")
    assert [s[0] for s in oracle.fresh_submissions(ctx, "GLOBEX")] == ["oracle-2"]
    assert oracle.current_price(ctx, "GLOBEX") == 4_200
    ctx = Context(chain.state(), CallEnv(chain.genesis.chain_id, 6, 0, b""), "", "oracle")
    assert oracle.current_price(ctx, "GLOBEX") is None
    # the history keeps what was recorded
    assert oracle.price_at(ctx, "GLOBEX", 6) == (4_100, 2)


def test_min_sources() -> None:
    chain = new_chain(**{"oracle.min_sources": 2})
    (r,) = run_ok(chain, submit(chain, "oracle-1", "ACME", 100))
    assert events(r, "price") == [] and price_now(chain, "ACME") is None
    assert oracle.price_at(ctx_of(chain), "ACME", 1) is None  # nothing recorded without a price
    (r,) = run_ok(chain, submit(chain, "oracle-2", "ACME", 104))
    assert events(r, "price")[0][2]["price"] == 102 and price_now(chain, "ACME") == 102


# --- history ----------------------------------------------------------------------------------
def test_price_at_any_height(chain: Chain) -> None:
    chain.run()  # height 1: nothing
    run_ok(chain, submit(chain, "oracle-1", "TBILL", 1_000_000))  # 2
    chain.run()  # 3
    run_ok(
        chain, submit(chain, "oracle-2", "TBILL", 1_000_100), submit(chain, "oracle-3", "TBILL", 1_000_050)
    )  # 4
    run_ok(chain, submit(chain, "oracle-1", "TBILL", 1_000_200))  # 5
    ctx = ctx_of(chain)
    expected = {
        0: None,
        1: None,
        2: (1_000_000, 2),
        3: (1_000_000, 2),
        4: (1_000_050, 4),
        5: (1_000_100, 5),
        99: (1_000_100, 5),
    }
    for h, want in expected.items():
        assert oracle.price_at(ctx, "TBILL", h) == want, h
    assert oracle.price_at(ctx, "TBILL", -5) is None
    assert oracle.price_at(ctx, "TBILL", 2**70) == (1_000_100, 5)
    assert oracle.price_at(ctx, "BTC", 5) is None  # histories are per instrument


def test_price_view() -> None:
    chain = new_chain()
    run_ok(chain, submit(chain, "oracle-2", "ACME", 500), submit(chain, "oracle-1", "ACME", 400))
    registry = default_registry()
    env = CallEnv(chain.genesis.chain_id, 1, 0, b"")
    doc = registry.read_view(chain.state(), env, "oracle", "price", {"instrument": "ACME"})
    assert doc == {
        "instrument": "ACME",
        "price": 450,
        "submissions": [
            {"oracle": "oracle-1", "price": 400, "height": 1},
            {"oracle": "oracle-2", "price": 500, "height": 1},
        ],
    }
    doc = registry.read_view(chain.state(), env, "oracle", "price", {"instrument": "ACME", "height": "0"})
    assert doc == {"instrument": "ACME", "height": 0, "price": None, "recorded_at": None}
    for query, code in [
        ({"instrument": "NOPE"}, "unknown_instrument"),
        ({"instrument": "ACME", "height": "x"}, "bad_query"),
        ({"instrument": "ACME", "height": "-1"}, "bad_query"),
    ]:
        with pytest.raises(Exception) as exc:
            registry.read_view(chain.state(), env, "oracle", "price", query)
        assert getattr(exc.value, "code", None) == code


# --- out of band ------------------------------------------------------------------------------
def test_out_of_band_is_flagged_and_still_counts(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_000), submit(chain, "oracle-2", "HOOLI", 10_200))
    # The centre is the median of the fresh prices with the new one: 10,200 for any new >= 10,200.
    (r,) = run_ok(chain, submit(chain, "oracle-3", "HOOLI", 11_220))  # +10.0%: in band
    assert events(r, "oracle_out_of_band") == []
    (r,) = run_ok(chain, submit(chain, "oracle-3", "HOOLI", 11_221))  # +10.01%: out of band
    assert events(r, "oracle_out_of_band") == [
        (
            "oracle",
            "oracle_out_of_band",
            {
                "oracle": "oracle-3",
                "instrument": "HOOLI",
                "price": 11_221,
                "median": 10_200,
                "band_bps": 1_000,
            },
        )
    ]
    findings = events(r, "finding_recorded")  # the bond contract recorded the finding
    assert [(f["participant"], f["reason"], f["ref"]) for _, _, f in findings] == [
        ("oracle-3", "oracle_out_of_band", "HOOLI@3")
    ]
    assert price_now(chain, "HOOLI") == 10_200  # the median absorbs the outlier
    (r,) = run_ok(chain, submit(chain, "oracle-3", "HOOLI", 9_000))  # centre 10,000: -10.0%, in band
    assert events(r, "oracle_out_of_band") == []
    (r,) = run_ok(chain, submit(chain, "oracle-3", "HOOLI", 8_999))
    assert [f["median"] for _, _, f in events(r, "oracle_out_of_band")] == [10_000]


def test_one_outlier_does_not_make_an_honest_oracle_out_of_band(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_000), submit(chain, "oracle-2", "HOOLI", 10_050))
    (r,) = run_ok(chain, submit(chain, "oracle-3", "HOOLI", 30_000))
    assert len(events(r, "oracle_out_of_band")) == 1
    # the others are now (10,050, 30,000): their own median would be 20,025, half the honest price
    (r,) = run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_020))
    assert events(r, "oracle_out_of_band") == []


def test_band_needs_enough_other_sources(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-1", "UMBRELLA", 1_000))
    (r,) = run_ok(chain, submit(chain, "oracle-2", "UMBRELLA", 5_000))  # one other: no band
    assert events(r, "oracle_out_of_band") == []


# --- permissions and batches ------------------------------------------------------------------
@settings(max_examples=8)
@given(st.sampled_from(NOT_ORACLES))
def test_only_oracles_publish(sender: str) -> None:
    chain = new_chain()
    run_fails(chain, chain.tx(sender, "oracle", "submit", ["ACME", 100]), "not_oracle")
    run_fails(chain, chain.tx(sender, "oracle", "submit_many", [[["ACME", 100]]]), "not_oracle")


def test_bad_instruments(chain: Chain) -> None:
    run_fails(chain, submit(chain, "oracle-1", "NOPE", 100), "unknown_instrument")
    run_fails(chain, submit(chain, "oracle-1", "USD", 100), "instrument_is_cash")
    _, result = chain.run(submit(chain, "oracle-1", "ACME", 0))
    assert [r.error.code for r in result.rejected] == ["bad_arguments"]


def test_submit_many_is_all_or_nothing(chain: Chain) -> None:
    run_fails(
        chain,
        chain.tx("oracle-1", "oracle", "submit_many", [[["ACME", 100], ["NOPE", 5]]]),
        "unknown_instrument",
    )
    run_fails(
        chain,
        chain.tx("oracle-1", "oracle", "submit_many", [[["ACME", 100], ["ACME", 101]]]),
        "duplicate_instrument",
    )
    run_fails(
        chain,
        chain.tx("oracle-1", "oracle", "submit_many", [[["GLOBEX", 100], ["USD", 1]]]),
        "instrument_is_cash",
    )
    assert price_now(chain, "ACME") is None and price_now(chain, "GLOBEX") is None
    (r,) = run_ok(chain, chain.tx("oracle-1", "oracle", "submit_many", [[["ACME", 100], ["GLOBEX", 200]]]))
    assert [f["instrument"] for _, _, f in events(r, "price")] == ["ACME", "GLOBEX"]
    assert price_now(chain, "ACME") == 100 and price_now(chain, "GLOBEX") == 200


# --- properties: the model, determinism -------------------------------------------------------
SUBMISSION = st.tuples(
    st.sampled_from(ORACLES), st.sampled_from(["ACME", "GLOBEX"]), st.integers(900, 1_100), st.integers(0, 3)
)


@settings(max_examples=25)
@given(st.lists(SUBMISSION, min_size=1, max_size=12))
def test_price_follows_the_model(steps: list[tuple[str, str, int, int]]) -> None:
    """After each block the current price and the recorded history equal the model's."""
    staleness = 4
    chain = new_chain(**{"oracle.staleness_blocks": staleness})
    latest: dict[tuple[str, str], tuple[int, int]] = {}
    recorded: dict[str, dict[int, int]] = {"ACME": {}, "GLOBEX": {}}
    for who, iid, price, idle in steps:
        for _ in range(idle):
            chain.run()
        run_ok(chain, submit(chain, who, iid, price))
        height = chain.ledger.head.height
        latest[(who, iid)] = (price, height)
        fresh = [p for (o, i), (p, h) in latest.items() if i == iid and h >= height - staleness]
        recorded[iid][height] = model_median(fresh)
        ctx = Context(chain.state(), CallEnv(chain.genesis.chain_id, height, 0, b""), "", "oracle")
        assert oracle.current_price(ctx, iid) == model_median(fresh)
    ctx = ctx_of(chain)
    for iid, history in recorded.items():
        for h in range(chain.ledger.head.height + 1):
            before = [at for at in history if at <= h]
            want = (history[max(before)], max(before)) if before else None
            assert oracle.price_at(ctx, iid, h) == want


@settings(max_examples=10)
@given(st.lists(SUBMISSION, min_size=1, max_size=10))
def test_determinism(steps: list[tuple[str, str, int, int]]) -> None:
    """The same transactions on two fresh chains give the same state roots, block by block."""
    roots = []
    for _ in range(2):
        chain = new_chain(**{"oracle.staleness_blocks": 3})
        seen = []
        for who, iid, price, idle in steps:
            for _ in range(idle):
                chain.run()
            block, _ = chain.run(submit(chain, who, iid, price * (1 + idle)))  # wild moves too
            seen.append(block.header.state_root)
        roots.append(seen)
    assert roots[0] == roots[1]


def test_band_rule_matches_integer_model() -> None:
    """The band test is exact integer arithmetic: |p - m| * 10,000 > band * m."""
    for m, p, out in [
        (10_000, 11_000, False),
        (10_000, 11_001, True),
        (10_000, 9_000, False),
        (10_000, 8_999, True),
    ]:
        assert (abs(p - m) * BPS > 1_000 * m) is out


# --- against a node: the CLI and the scenario -------------------------------------------------
@dataclasses.dataclass
class NodeNet:
    dir: Path
    url: str

    def cli(self, *args: str, keys: bool = True) -> tuple[int, str, str]:
        extra = ["--node", self.url] + (["--keys-dir", str(self.dir / "keys")] if keys else [])
        result = CliRunner().invoke(main, [*args, *extra])
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def node_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeNet]:
    directory = tmp_path_factory.mktemp("oracle") / "net"
    init_network(directory, validators=1, base_port=0, consensus=QUICK)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield NodeNet(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_oracle_cli(node_net: NodeNet) -> None:
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "40.00", "--as", "oracle-1")
    assert code == 0, out + err
    assert "oracle-1 published GLOBEX 40.00; median 40.00 from 1 sources" in out
    code, out, err = node_net.cli("oracle", "submit-many", "GLOBEX=40.10", "BTC=65000.5", "--as", "oracle-2")
    assert code == 0, out + err
    assert "GLOBEX: median 40.05 from 2 sources" in out and "BTC: median 65,000.50 from 1 sources" in out
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "60.00", "--as", "oracle-3")
    assert code == 0 and "OUT OF BAND: oracle-3 GLOBEX 60.00 vs the median 40.10" in out
    code, out, err = node_net.cli("oracle", "price", "GLOBEX", "--json", keys=False)
    doc = json.loads(out)
    assert doc["price"] == 4010 and [s["oracle"] for s in doc["submissions"]] == ORACLES
    code, out, err = node_net.cli("oracle", "price", "GLOBEX", keys=False)
    assert code == 0 and out.startswith("GLOBEX: 40.10") and "oracle-3" in out
    code, out, err = node_net.cli("oracle", "price", "GLOBEX", "--height", "0", keys=False)
    assert code == 0 and "GLOBEX at height 0: none" in out
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "40.001", "--as", "oracle-1")
    assert code == 2 and err.startswith("error: bad_amount:")
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "40.00", "--as", "member-a")
    assert code == 1 and err.startswith("error: not_oracle:")
    code, out, err = node_net.cli("oracle", "submit", "USD", "1", "--as", "oracle-1")
    assert code == 1 and err.startswith("error: instrument_is_cash:")


@pytest.mark.io
def test_oracle_scenario_on_a_node(node_net: NodeNet) -> None:
    from cli.scenarios import oracle as scenario

    lines: list[str] = []
    run = ScenarioRun(Client(node_net.url), node_net.dir / "keys", node_net.dir, echo=lines.append)
    scenario.run(run)  # after test_oracle_cli: UMBRELLA is fresh, but other prices exist
    assert any("out of band" in line for line in lines), lines
    assert any("has expired" in line for line in lines), lines
