"""Circuit breakers and issuer disclosures, driven through real blocks: a wild move halts an
instrument (and settlement then refuses its trades), the window and per-instrument rules, the
re-anchoring after a resume, the disclosure obligations with their deadline tasks (halt, bond
finding, late filing), permissions, views; properties for conservation, no negative balances
and determinism; then the ``breaker`` scenario and the CLI against a real node.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.executor import CallEnv
from chain.receipt import Receipt
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import init_network
from cli.scenarios import ScenarioRun
from contracts import breakers, default_registry, disclosure
from contracts.accounts import BALANCE_PREFIX
from contracts.api import Context
from contracts.disclosure import Disclosure
from contracts.instruments import get_instrument
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_oracle import QUICK, NodeNet, ctx_of, events, new_chain, run_fails, run_ok, submit

PARTICIPANTS = devnet.participants(4)
NOT_ADMINS = sorted(p for p, (roles, _, _) in PARTICIPANTS.items() if "admin" not in roles)
ASSETS = [i["id"] for i in devnet.INSTRUMENTS]
REGISTRY = default_registry()  # answers views over any chain's state


# --- helpers ----------------------------------------------------------------------------------
def status_of(chain: Chain, iid: str) -> str:
    ins = get_instrument(ctx_of(chain), iid)
    assert ins is not None
    return ins.status


def trade(chain: Chain, trade_id: str, iid: str, qty: int = 1, price: int = 100_00) -> SignedTx:
    return chain.tx(
        "xchg-alpha", "settlement", "settle", [trade_id, "A-HOUSE", "B-HOUSE", iid, qty, price, DAY]
    )


def view(chain: Chain, contract: str, name: str, **query: str) -> Any:
    env = CallEnv(chain.genesis.chain_id, chain.ledger.head.height, 0, b"")
    return REGISTRY.read_view(chain.state(), env, contract, name, query)


def doc_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def tripped(receipts: tuple[Receipt, ...]) -> list[dict[str, Any]]:
    return [f for r in receipts for _, _, f in events(r, "breaker_tripped")]


def idle(chain: Chain, until_height: int) -> list[Receipt]:
    """Empty blocks up to ``until_height``; the receipts of the tasks that ran."""
    out: list[Receipt] = []
    while chain.ledger.head.height < until_height:
        _, result = chain.run()
        out.extend(result.receipts)
    return out


# --- the price rule ---------------------------------------------------------------------------
def test_a_wild_move_halts_and_trades_fail(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_000))  # the anchor
    receipts = run_ok(chain, submit(chain, "oracle-1", "HOOLI", 11_000))  # exactly 10%: no halt
    assert tripped(receipts) == [] and status_of(chain, "HOOLI") == "active"
    run_ok(chain, trade(chain, "T-1", "HOOLI"))
    (r,) = run_ok(chain, submit(chain, "oracle-1", "HOOLI", 11_001))  # the submission stands
    assert [(c, n) for c, n, _ in events(r)] == [
        ("oracle", "price"),
        ("instruments", "instrument_halted"),
        ("breakers", "breaker_tripped"),
    ]
    assert events(r, "instrument_halted")[0][2] == {"id": "HOOLI", "reason": "price_move"}
    assert events(r, "breaker_tripped")[0][2] == {
        "instrument": "HOOLI", "reason": "price_move", "price": 11_001, "reference": 10_000,
        "move_bps": 1_000, "window_blocks": 60, "was_active": True,
    }  # fmt: skip
    assert status_of(chain, "HOOLI") == "halted"
    before = chain.balance("A-HOUSE", "HOOLI"), chain.balance("B-HOUSE", "HOOLI")
    run_fails(chain, trade(chain, "T-2", "HOOLI"), "instrument_halted")
    assert (chain.balance("A-HOUSE", "HOOLI"), chain.balance("B-HOUSE", "HOOLI")) == before
    doc = view(chain, "breakers", "status", instrument="HOOLI")
    assert doc["status"] == "halted" and doc["price"] == 11_001 and doc["reference"] is None
    assert doc["last_halt"] == {
        "reason": "price_move",
        "height": 4,
        "price": 11_001,
        "reference": 10_000,
        "move_bps": 1_000,
        "window_blocks": 60,
    }
    run_ok(chain, trade(chain, "T-3", "GLOBEX"))  # other instruments trade on


def test_a_fall_halts_too(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-2", "ACME", 10_000))
    assert tripped(run_ok(chain, submit(chain, "oracle-2", "ACME", 9_000))) == []
    assert [f["price"] for f in tripped(run_ok(chain, submit(chain, "oracle-2", "ACME", 8_999)))] == [8_999]


def test_the_window_forgets_old_prices() -> None:
    """With a 3-block window a slow climb never halts; with the default window it does."""
    outcomes = []
    for rule in (True, False):
        chain = new_chain()
        if rule:
            run_ok(chain, chain.tx("admin", "breakers", "set_rule", ["HOOLI", 3, 1_000]))
        start = chain.ledger.head.height
        run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_000))  # anchor at start + 1
        run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_900))  # +9% vs the anchor
        idle(chain, start + 5)
        receipts = run_ok(chain, submit(chain, "oracle-1", "HOOLI", 11_800))  # +8.3% vs 3 blocks ago
        outcomes.append([(f["reference"], f["window_blocks"]) for f in tripped(receipts)])
    assert outcomes == [[], [(10_000, 60)]]


def test_no_rule_while_halted_and_a_new_anchor_after_a_resume(chain: Chain) -> None:
    run_ok(chain, submit(chain, "oracle-1", "STARK", 10_000))
    run_ok(chain, chain.tx("admin", "instruments", "halt", ["STARK", "news pending"]))
    receipts = run_ok(chain, submit(chain, "oracle-1", "STARK", 20_000))  # halted: prices count, no rule
    assert (
        tripped(receipts) == []
        and ctx_of(chain)
        and view(chain, "oracle", "price", instrument="STARK")["price"] == 20_000
    )
    run_ok(chain, chain.tx("admin", "instruments", "resume", ["STARK"]))
    receipts = run_ok(chain, submit(chain, "oracle-1", "STARK", 21_000))  # the reopening price: the anchor
    assert tripped(receipts) == []
    assert view(chain, "breakers", "status", instrument="STARK")["reference"] == 21_000
    assert tripped(run_ok(chain, submit(chain, "oracle-1", "STARK", 23_100))) == []  # +10%
    (halt,) = tripped(run_ok(chain, submit(chain, "oracle-1", "STARK", 23_101)))
    assert halt["reference"] == 21_000
    # a breaker halt is re-anchored the same way after governance resumes
    run_ok(chain, chain.tx("admin", "instruments", "resume", ["STARK"]))
    assert tripped(run_ok(chain, submit(chain, "oracle-1", "STARK", 30_000))) == []
    assert status_of(chain, "STARK") == "active"


def test_an_unseen_admin_halt_keeps_the_anchor(chain: Chain) -> None:
    """The reference resets only through a halt the breaker saw (docs/CONTRACTS.md, tracking):
    an admin halt and resume with no median in between leaves the anchor as it was."""
    run_ok(chain, submit(chain, "oracle-1", "STARK", 10_000))  # the anchor
    assert chain.state().get(b"breakers/track/STARK")[1:] == (10_000, False)
    run_ok(chain, chain.tx("admin", "instruments", "halt", ["STARK", "news pending"]))
    run_ok(chain, chain.tx("admin", "instruments", "resume", ["STARK"]))
    (halt,) = tripped(run_ok(chain, submit(chain, "oracle-1", "STARK", 11_001)))  # tested at once
    assert halt["reference"] == 10_000
    assert chain.state().get(b"breakers/track/STARK")[1:] == (10_000, True)  # the trip was seen


def test_per_instrument_rules(chain: Chain) -> None:
    run_fails(chain, chain.tx("member-a", "breakers", "set_rule", ["HOOLI", 10, 500]), "not_admin")
    run_fails(chain, chain.tx("admin", "breakers", "set_rule", ["NOPE", 10, 500]), "unknown_instrument")
    run_fails(chain, chain.tx("admin", "breakers", "set_rule", ["USD", 10, 500]), "instrument_is_cash")
    run_fails(
        chain, chain.tx("admin", "breakers", "set_rule", ["HOOLI", 1_000_001, 500]), "param_out_of_bounds"
    )
    run_fails(
        chain, chain.tx("admin", "breakers", "set_rule", ["HOOLI", 10, 1_000_001]), "param_out_of_bounds"
    )
    run_fails(chain, chain.tx("admin", "breakers", "clear_rule", ["HOOLI"]), "no_rule")
    (r,) = run_ok(chain, chain.tx("admin", "breakers", "set_rule", ["HOOLI", 10, 500]))
    assert events(r) == [
        ("breakers", "rule_set", {"instrument": "HOOLI", "window_blocks": 10, "move_bps": 500})
    ]
    doc = view(chain, "breakers", "status", instrument="HOOLI")
    assert (doc["window_blocks"], doc["move_bps"], doc["rule_overridden"]) == (10, 500, True)
    run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_000))
    assert [f["move_bps"] for f in tripped(run_ok(chain, submit(chain, "oracle-1", "HOOLI", 10_501)))] == [
        500
    ]
    run_fails(chain, chain.tx("member-a", "breakers", "clear_rule", ["HOOLI"]), "not_admin")
    run_ok(chain, chain.tx("admin", "breakers", "clear_rule", ["HOOLI"]))
    assert view(chain, "breakers", "status", instrument="HOOLI")["rule_overridden"] is False


def test_halts_view_pages(chain: Chain) -> None:
    for iid in ("ACME", "GLOBEX", "HOOLI"):
        run_ok(chain, submit(chain, "oracle-1", iid, 100))
        run_ok(chain, submit(chain, "oracle-1", iid, 200))
    page = view(chain, "breakers", "halts", limit="2")
    assert [h["instrument"] for h in page["halts"]] == ["ACME", "GLOBEX"] and page["next"] == "GLOBEX"
    page = view(chain, "breakers", "halts", after="GLOBEX")
    assert [(h["instrument"], h["status"], h["reason"]) for h in page["halts"]] == [
        ("HOOLI", "halted", "price_move")
    ]
    assert page["next"] is None
    for bad in ({"limit": "0"}, {"limit": "x"}):
        with pytest.raises(Exception) as exc:
            view(chain, "breakers", "halts", **bad)
        assert getattr(exc.value, "code", None) == "bad_query"


# --- disclosure -------------------------------------------------------------------------------
def test_registry_and_obligation_checks(chain: Chain) -> None:
    run_fails(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 4, 2]), "no_issuer")
    run_fails(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "member-a"]), "not_issuer")
    run_fails(
        chain,
        chain.tx("admin", "disclosure", "register_issuer", ["USD", "issuer-acme"]),
        "instrument_is_cash",
    )
    run_fails(chain, chain.tx("admin", "disclosure", "obligate", ["NOPE", 4, 2]), "unknown_instrument")
    run_fails(chain, chain.tx("admin", "disclosure", "release", ["STARK"]), "no_obligation")
    run_fails(chain, chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash("a"), ""]), "no_issuer")
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))
    assert disclosure.issuer_of(ctx_of(chain), "STARK") == "issuer-acme"
    run_fails(chain, chain.tx("fund-mgr", "disclosure", "file", ["STARK", doc_hash("a"), ""]), "not_issuer")
    (r,) = run_ok(chain, chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash("a"), "voluntary"]))
    assert events(r, "disclosure_filed")[0][2] == {
        "instrument": "STARK", "issuer": "issuer-acme", "seq": 1, "document_hash": doc_hash("a"),
        "reference": "voluntary", "next_due": None, "cured": False,
    }  # fmt: skip
    run_fails(
        chain,
        chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash("a"), "again"]),
        "duplicate_document",
    )
    _, result = chain.run(chain.tx("issuer-acme", "disclosure", "file", ["STARK", b"short", ""]))
    assert [r.error.code for r in result.rejected] == ["bad_arguments"]


def test_a_missed_deadline_halts_slashes_and_a_late_filing_cures(chain: Chain) -> None:
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))  # 1
    (r,) = run_ok(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 4, 2]))  # 2: due 6, deadline 8
    assert events(r, "disclosure_obligated")[0][2] == {
        "instrument": "STARK",
        "period_blocks": 4,
        "grace_blocks": 2,
        "due": 6,
        "deadline": 8,
    }
    (r,) = run_ok(chain, chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash("q1"), "Q1"]))  # 3
    assert events(r, "disclosure_filed")[0][2]["next_due"] == 7  # deadline 9
    assert [n for r in idle(chain, 8) for _, n, _ in events(r)] == []  # the check at 8 reschedules
    assert not disclosure.is_overdue(ctx_of(chain), "STARK")
    tasks = idle(chain, 9)
    names = [(c, n) for r in tasks for c, n, _ in events(r)]
    assert names == [
        ("instruments", "instrument_halted"), ("breakers", "breaker_tripped"),
        ("bonds", "finding_recorded"), ("disclosure", "disclosure_overdue"),
    ]  # fmt: skip
    overdue = [f for r in tasks for _, _, f in events(r, "disclosure_overdue")]
    assert overdue == [
        {"instrument": "STARK", "issuer": "issuer-acme", "due": 7, "deadline": 9, "missed": 1, "slashed": 0}
    ]
    finding = [f for r in tasks for _, _, f in events(r, "finding_recorded")][0]
    assert (finding["participant"], finding["reason"], finding["ref"]) == (
        "issuer-acme",
        "missed_disclosure",
        "STARK@9",
    )
    assert status_of(chain, "STARK") == "halted" and disclosure.is_overdue(ctx_of(chain), "STARK")
    run_fails(chain, trade(chain, "S-1", "STARK"), "instrument_halted")  # 10
    doc = view(chain, "disclosure", "status", instrument="STARK")
    assert doc["overdue"] and doc["obligation"] == {
        "period_blocks": 4,
        "grace_blocks": 2,
        "due": 11,
        "deadline": 13,
        "overdue": True,
        "missed": 1,
    }
    tasks = idle(chain, 13)  # a second period without a filing: a second miss (already halted)
    assert [f["missed"] for r in tasks for _, _, f in events(r, "disclosure_overdue")] == [2]
    assert [f["was_active"] for r in tasks for _, _, f in events(r, "breaker_tripped")] == [False]
    (r,) = run_ok(
        chain, chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash("q2"), "Q2, late"])
    )  # 14
    assert (
        events(r, "disclosure_filed")[0][2]["cured"] is True
        and events(r, "disclosure_filed")[0][2]["next_due"] == 18
    )
    assert not disclosure.is_overdue(ctx_of(chain), "STARK") and status_of(chain, "STARK") == "halted"
    run_ok(chain, chain.tx("admin", "instruments", "resume", ["STARK"]))  # 15
    run_ok(chain, chain.tx("admin", "disclosure", "release", ["STARK"]))  # 16
    assert [
        n for r in idle(chain, 25) for _, n, _ in events(r)
    ] == []  # the released obligation's check does nothing
    assert status_of(chain, "STARK") == "active"
    page = view(chain, "disclosure", "filings", instrument="STARK", limit="1")
    assert [f["reference"] for f in page["filings"]] == ["Q1"] and page["next"] == 1
    page = view(chain, "disclosure", "filings", instrument="STARK", after="1")
    assert [(f["seq"], f["reference"], f["height"]) for f in page["filings"]] == [
        (2, "Q2, late", 14)
    ] and page["next"] is None


def test_a_replaced_obligation_keeps_only_the_new_deadline(chain: Chain) -> None:
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))  # 1
    run_ok(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 3, 0]))  # 2: deadline 5
    run_ok(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 8, 0]))  # 3: deadline 11
    assert [n for r in idle(chain, 10) for _, n, _ in events(r)] == []
    assert [n for r in idle(chain, 11) for _, n, _ in events(r)][-1] == "disclosure_overdue"


def test_a_late_filing_counts_the_miss_even_before_the_check_runs(chain: Chain) -> None:
    """If tasks back up, a filing after the deadline still counts the missed deadline first."""
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))  # 1
    run_ok(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 2, 1]))  # 2: deadline 5
    env = CallEnv(chain.genesis.chain_id, 7, 0, b"")  # the check due at 5 has not run
    state = chain.state()
    state.begin()
    ctx = Context(state, env, "issuer-acme", "disclosure")
    assert disclosure.is_overdue(ctx, "STARK")
    Disclosure().file(ctx, "STARK", doc_hash("late"), "late")
    names = [n for _, n, _ in ctx.events()]
    assert names == [
        "instrument_halted",
        "breaker_tripped",
        "finding_recorded",
        "disclosure_overdue",
        "disclosure_filed",
    ]
    assert dict(ctx.events()[-1][2])["cured"] is True and not disclosure.is_overdue(ctx, "STARK")


# --- properties -------------------------------------------------------------------------------
ADMIN_CALLS = [
    ("breakers", "set_rule", ["HOOLI", 10, 500]),
    ("breakers", "clear_rule", ["HOOLI"]),
    ("disclosure", "register_issuer", ["STARK", "issuer-acme"]),
    ("disclosure", "obligate", ["STARK", 4, 2]),
    ("disclosure", "release", ["STARK"]),
]


@settings(max_examples=12)
@given(st.sampled_from(NOT_ADMINS), st.sampled_from(ADMIN_CALLS))
def test_admin_methods_refuse_everyone_else(sender: str, call: tuple[str, str, list[Any]]) -> None:
    chain = new_chain()
    run_fails(chain, chain.tx(sender, call[0], call[1], call[2]), "not_admin")


@settings(max_examples=8)
@given(st.sampled_from(sorted(set(PARTICIPANTS) - {"issuer-acme"})))
def test_only_the_registered_issuer_files(sender: str) -> None:
    chain = new_chain()
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))
    run_fails(chain, chain.tx(sender, "disclosure", "file", ["STARK", doc_hash(sender), ""]), "not_issuer")


OP = st.one_of(
    st.tuples(
        st.just("price"),
        st.sampled_from(["oracle-1", "oracle-2", "oracle-3"]),
        st.sampled_from(["HOOLI", "STARK"]),
        st.integers(80, 125),
    ),
    st.tuples(
        st.just("trade"), st.sampled_from(["HOOLI", "STARK"]), st.integers(1, 50), st.integers(1, 200_00)
    ),
    st.tuples(st.just("resume"), st.sampled_from(["HOOLI", "STARK"])),
    st.tuples(st.just("file"), st.integers(0, 10**6)),
    st.tuples(st.just("idle"), st.integers(1, 4)),
)


def play(ops: list[tuple[Any, ...]]) -> tuple[Chain, list[bytes], list[tuple[str, str, str]]]:
    """Run ``ops`` on a fresh chain with a STARK obligation; returns the chain, the state root
    after each block, and (instrument, status before, receipt code) of each trade."""
    chain = new_chain()
    run_ok(chain, chain.tx("admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"]))
    run_ok(chain, chain.tx("admin", "disclosure", "obligate", ["STARK", 3, 1]))
    roots: list[bytes] = []
    trades: list[tuple[str, str, str]] = []
    for i, op in enumerate(ops):
        if op[0] == "idle":
            for _ in range(op[1]):
                block, _ = chain.run()
                roots.append(block.header.state_root)
            continue
        if op[0] == "price":
            stx = submit(chain, op[1], op[2], op[3] * 100)
        elif op[0] == "trade":
            stx = trade(chain, f"P-{i}", op[1], op[2], op[3])
        elif op[0] == "resume":
            stx = chain.tx("admin", "instruments", "resume", [op[1]])
        else:
            stx = chain.tx("issuer-acme", "disclosure", "file", ["STARK", doc_hash(f"{i}/{op[1]}"), ""])
        before = status_of(chain, op[1]) if op[0] == "trade" else ""
        block, result = chain.run(stx)
        assert [r.error.code for r in result.rejected] == []
        if op[0] == "trade":
            trades.append((op[1], before, result.receipts[0].code))
        elif op[0] != "resume":
            assert result.receipts[0].code == "ok"  # prices and filings never fail here
        roots.append(block.header.state_root)
    return chain, roots, trades


def balances_by_asset(chain: Chain) -> dict[str, int]:
    state = chain.state()
    totals: dict[str, int] = {}
    for key, _ in chain.store.iterate_state(BALANCE_PREFIX):
        available, locked = state.get(key)
        assert available >= 0 and locked >= 0, key
        asset = key[len(BALANCE_PREFIX) :].decode().rpartition("/")[2]
        totals[asset] = totals.get(asset, 0) + available + locked
    return totals


@settings(max_examples=25)
@given(st.lists(OP, min_size=1, max_size=14))
def test_conservation_and_halted_trades(ops: list[tuple[Any, ...]]) -> None:
    chain, _, trades = play(ops)
    totals = balances_by_asset(chain)
    state = chain.state()
    for asset in ASSETS:
        assert totals.get(asset, 0) == (state.get(b"custody/supply/" + asset.encode()) or 0), asset
    for iid, before, code in trades:
        assert (code == "instrument_halted") == (before == "halted"), (iid, before, code)
    # a breaker record names the rule behind every halt it made
    for iid in ("HOOLI", "STARK"):
        record = breakers.halt_record(ctx_of(chain), iid)
        if status_of(chain, iid) == "halted":
            assert record is not None and record["reason"] in ("price_move", "disclosure_overdue")


@settings(max_examples=10)
@given(st.lists(OP, min_size=1, max_size=10))
def test_determinism(ops: list[tuple[Any, ...]]) -> None:
    assert play(ops)[1] == play(ops)[1]


# --- against a node: the scenario and the CLI -------------------------------------------------
@pytest.fixture(scope="module")
def node_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeNet]:
    directory = tmp_path_factory.mktemp("breakers") / "net"
    init_network(directory, validators=1, base_port=0, consensus=QUICK)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield NodeNet(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_breaker_scenario_on_a_node(node_net: NodeNet) -> None:
    from cli.scenarios import breaker as scenario

    lines: list[str] = []
    run = ScenarioRun(Client(node_net.url), node_net.dir / "keys", node_net.dir, echo=lines.append)
    scenario.run(run)
    scenario.run(run)  # re-runnable on the same network
    assert sum("HOOLI halted at height" in line for line in lines) == 2, lines
    assert sum("STARK halted at height" in line for line in lines) == 2, lines


@pytest.mark.io
def test_breaker_and_disclosure_cli(node_net: NodeNet, tmp_path: Any) -> None:
    code, out, err = node_net.cli(
        "breaker", "set-rule", "GLOBEX", "--window-blocks", "20", "--move-bps", "500"
    )
    assert code == 0, out + err
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "30.00", "--as", "oracle-1")
    assert code == 0, out + err
    code, out, err = node_net.cli("oracle", "submit", "GLOBEX", "31.51", "--as", "oracle-1")
    assert code == 0 and "HALTED GLOBEX: price_move" in out, out + err
    code, out, err = node_net.cli("breaker", "status", "GLOBEX", keys=False)
    assert (
        code == 0
        and "halted" in out
        and "500 bps within 20 blocks (instrument's own)" in out
        and "price_move" in out
    ), out
    code, out, err = node_net.cli("breaker", "status", "--json", keys=False)
    assert "GLOBEX" in [h["instrument"] for h in json.loads(out)["halts"]]
    code, out, err = node_net.cli("breaker", "clear-rule", "GLOBEX", "--as", "member-a")
    assert code == 1 and err.startswith("error: not_admin:")
    assert node_net.cli("breaker", "clear-rule", "GLOBEX")[0] == 0
    assert node_net.cli("call", "instruments", "resume", '["GLOBEX"]', "--as", "admin")[0] == 0

    code, out, err = node_net.cli("disclosure", "register", "UMBRELLA", "fund-mgr")
    assert code == 0 and "fund-mgr is the issuer of UMBRELLA" in out, out + err
    code, out, err = node_net.cli(
        "disclosure", "obligate", "UMBRELLA", "--period-blocks", "1000", "--grace-blocks", "10"
    )
    assert code == 0 and "first filing due at height" in out, out + err
    report = tmp_path / "report.pdf"
    report.write_bytes(b"annual report")
    code, out, err = node_net.cli(
        "disclosure", "file", "UMBRELLA", "--document", str(report), "--reference", "AR 2026"
    )
    assert code == 0 and "fund-mgr filed #1 for UMBRELLA" in out and "next due at height" in out, out + err
    code, out, err = node_net.cli(
        "disclosure", "file", "UMBRELLA", "--hash", hashlib.sha256(b"annual report").hexdigest()
    )
    assert code == 1 and err.startswith("error: duplicate_document:"), err
    code, out, err = node_net.cli("disclosure", "file", "UMBRELLA", "--hash", "abcd")
    assert code == 1 and err.startswith("error: bad_arguments:"), err
    code, out, err = node_net.cli("disclosure", "status", "UMBRELLA", "--json", keys=False)
    doc = json.loads(out)
    assert doc["issuer"] == "fund-mgr" and doc["filings"] == 1 and not doc["overdue"]
    assert doc["last_filing"]["document_hash"] == hashlib.sha256(b"annual report").hexdigest()
    code, out, err = node_net.cli("disclosure", "status", "UMBRELLA", keys=False)
    assert code == 0 and "every 1000 blocks + 10 grace" in out and "AR 2026" in out, out
    assert node_net.cli("disclosure", "release", "UMBRELLA")[0] == 0
