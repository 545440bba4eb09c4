"""The escrow contract (hash-time-locked contracts), through real blocks on a dev-genesis chain,
and its CLI commands and demo scenario against a real node.

Every test drives the ledger as a client does (signed transactions, committed blocks) and checks
what a client can see: receipt codes and events (of transactions and of the refund task),
balances (available and locked), the escrow records and the views. A failed call writes nothing
but its sender's nonce. Properties: conservation of every asset, no negative balance, exactly
one of claim or refund per escrow, locked amounts that nothing else can spend, determinism.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.executor import CallEnv
from chain.genesis import Genesis
from chain.limits import AMOUNT_MAX
from chain.policy import nonce_key
from chain.receipt import KIND_TASK, KIND_TX, Receipt
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import init_network
from cli.main import main
from cli.scenarios import ScenarioRun
from contracts import default_registry
from contracts.api import ContractError
from node.config import ConsensusSection
from tests.conftest import Chain
from tests.exits import exit_status
from tests.netutil import NodeThread

SECRET = bytes(range(32))
HASH = hashlib.sha256(SECRET).digest()
OTHER = b"\x07" * 32
REGISTRY = default_registry()


# --- helpers ----------------------------------------------------------------------------------
def state_snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def head(chain: Chain) -> int:
    header = chain.store.head()
    assert header is not None
    return header.height


def lock(
    chain: Chain,
    eid: str,
    source: str = "A-C001",
    target: str = "B-C001",
    asset: str = "USD",
    amount: int = 100_00,
    hashlock: bytes = HASH,
    timeout: int | None = None,
    sender: str = "member-a",
) -> SignedTx:
    """A lock; the default timeout is 20 blocks ahead."""
    if timeout is None:
        timeout = head(chain) + 20
    return chain.tx(sender, "escrow", "lock", [eid, source, target, asset, amount, hashlock, timeout])


def claim(chain: Chain, eid: str, preimage: bytes = SECRET, sender: str = "member-b") -> SignedTx:
    return chain.tx(sender, "escrow", "claim", [eid, preimage])


def refund(chain: Chain, eid: str, sender: str = "member-a") -> SignedTx:
    return chain.tx(sender, "escrow", "refund", [eid])


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    """Run ``txs`` in one block: each is included with an ok receipt; returns the tx receipts."""
    block, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    receipts = tuple(r for r in result.receipts if r.kind == KIND_TX)
    assert [(r.code, r.message) for r in receipts] == [("ok", "")] * len(txs)
    assert len(block.txs) == len(txs)
    return receipts


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` alone is included with a failed receipt ``code`` and writes only its nonce."""
    before = state_snapshot(chain)
    block, result = chain.run(stx)
    assert [r.error.code for r in result.rejected] == []
    receipt = result.receipts[0]
    assert block.txs == (stx,) and receipt.kind == KIND_TX
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    if not any(r.kind == KIND_TASK for r in result.receipts):
        assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
        assert state_snapshot(chain) == before
    return receipt


def rejected(chain: Chain, stx: SignedTx, code: str) -> None:
    block, result = chain.run(stx)
    assert block.txs == () and [r.error.code for r in result.rejected] == [code]
    chain.nonces[stx.tx.sender] -= 1  # the nonce stays free


def tasks(result: Any) -> list[Receipt]:
    return [r for r in result.receipts if r.kind == KIND_TASK]


def until(chain: Chain, height: int) -> list[Receipt]:
    """Empty blocks until the head is at ``height``; the task receipts on the way."""
    out: list[Receipt] = []
    while head(chain) < height:
        _, result = chain.run()
        out.extend(tasks(result))
    return out


def record(chain: Chain, eid: str) -> dict[str, Any]:
    return view(chain, "get", id=eid)  # type: ignore[no-any-return]


def view(chain: Chain, name: str, **query: str) -> Any:
    env = CallEnv(chain.genesis.chain_id, head(chain), 0, b"")
    return REGISTRY.read_view(chain.state(), env, "escrow", name, query)


# --- lock, claim, refund ----------------------------------------------------------------------
def test_lock_then_claim_moves_the_locked_amount_and_publishes_the_preimage(chain: Chain) -> None:
    a0, b0 = chain.balance("A-C001", "USD"), chain.balance("B-C001", "USD")
    timeout = head(chain) + 10
    (r,) = ok(chain, lock(chain, "E1", timeout=timeout))
    locked_at = head(chain)
    assert r.events[0][:2] == ("escrow", "escrow_locked")
    assert r.event_fields(0) == {
        "id": "E1", "from_account": "A-C001", "to_account": "B-C001", "asset": "USD", "amount": 100_00,
        "hashlock": HASH, "timeout_height": timeout, "by": "member-a",
    }  # fmt: skip
    assert chain.balance("A-C001", "USD") == (a0[0] - 100_00, a0[1] + 100_00)
    assert chain.balance("B-C001", "USD") == b0
    assert record(chain, "E1")["status"] == "locked" and record(chain, "E1")["preimage"] is None

    # Anyone may claim (here the exchange): the amount can only go to the recipient.
    (r,) = ok(chain, claim(chain, "E1", sender="xchg-alpha"))
    assert r.event_fields(0) == {
        "id": "E1", "from_account": "A-C001", "to_account": "B-C001", "asset": "USD", "amount": 100_00,
        "preimage": SECRET, "by": "xchg-alpha",
    }  # fmt: skip
    assert chain.balance("A-C001", "USD") == (a0[0] - 100_00, a0[1])
    assert chain.balance("B-C001", "USD") == (b0[0] + 100_00, b0[1])
    assert chain.balance("XA-HOUSE", "USD") == (1_000_000_00, 0)
    assert record(chain, "E1") == {
        "id": "E1", "from_account": "A-C001", "to_account": "B-C001", "asset": "USD", "amount": 100_00,
        "hashlock": HASH.hex(), "timeout_height": timeout, "status": "claimed", "locked_by": "member-a",
        "locked_height": locked_at, "preimage": SECRET.hex(), "closed_height": head(chain),
    }  # fmt: skip
    # Closed: neither a second claim nor a refund, not even after the timeout; the task is a no-op.
    fails(chain, claim(chain, "E1"), "escrow_closed")
    assert [r.events for r in until(chain, timeout)] == [()]
    fails(chain, refund(chain, "E1"), "escrow_closed")
    assert chain.balance("A-C001", "USD") == (a0[0] - 100_00, a0[1])


def test_an_unclaimed_lock_is_refunded_by_the_task_at_its_timeout(chain: Chain) -> None:
    before = chain.balance("B-C001", "ACME")
    timeout = head(chain) + 3
    ok(
        chain,
        lock(
            chain,
            "E2",
            source="B-C001",
            target="A-C001",
            asset="ACME",
            amount=1_000,
            timeout=timeout,
            sender="member-b",
        ),
    )
    assert chain.balance("B-C001", "ACME") == (before[0] - 1_000, 1_000)
    assert until(chain, timeout - 1) == []
    # In the timeout block, a claim comes too late (the transactions run before the task) ...
    _, result = chain.run(claim(chain, "E2", sender="member-a"))
    (tx_receipt,) = [r for r in result.receipts if r.kind == KIND_TX]
    assert tx_receipt.code == "escrow_expired" and head(chain) == timeout
    # ... and the task at the end of that block refunds.
    (task,) = tasks(result)
    assert task.ok and task.event_fields(0) == {
        "id": "E2",
        "from_account": "B-C001",
        "asset": "ACME",
        "amount": 1_000,
        "by": "",
    }
    assert chain.balance("B-C001", "ACME") == before and chain.balance("A-C001", "ACME") == (0, 0)
    assert record(chain, "E2")["status"] == "refunded" and record(chain, "E2")["closed_height"] == timeout
    fails(chain, claim(chain, "E2"), "escrow_closed")
    fails(chain, refund(chain, "E2", sender="member-b"), "escrow_closed")


def test_explicit_refund_from_the_timeout_height_on(chain: Chain) -> None:
    before = chain.balance("A-C001", "USD")
    timeout = head(chain) + 3
    ok(chain, lock(chain, "E3", timeout=timeout))
    fails(chain, refund(chain, "E3"), "escrow_not_expired")
    assert head(chain) == timeout - 1
    # In the timeout block the owner's refund runs first; the task then finds it closed.
    _, result = chain.run(refund(chain, "E3"))
    receipt, task = result.receipts
    assert receipt.ok and receipt.event_fields(0)["by"] == "member-a"
    assert task.kind == KIND_TASK and task.ok and task.events == ()
    assert chain.balance("A-C001", "USD") == before


def test_the_locked_amount_cannot_be_spent_meanwhile(chain: Chain) -> None:
    acme = chain.balance("B-C001", "ACME")[0]
    ok(
        chain,
        lock(chain, "E4", source="B-C001", target="A-C001", asset="ACME", amount=acme, sender="member-b"),
    )
    assert chain.balance("B-C001", "ACME") == (0, acme)
    sell = chain.tx("xchg-alpha", "settlement", "settle", ["T1", "A-C002", "B-C001", "ACME", 1, 100_00, DAY])
    fails(chain, sell, "insufficient_securities")
    withdraw = chain.tx("member-b", "custody", "request_withdrawal", ["B-C001", "ACME", 1])
    fails(chain, withdraw, "insufficient_balance")
    again = lock(chain, "E5", source="B-C001", target="A-C001", asset="ACME", amount=1, sender="member-b")
    fails(chain, again, "insufficient_balance")
    # The account cannot be closed with an escrow open either.
    fails(chain, chain.tx("member-b", "accounts", "close", ["B-C001"]), "account_not_empty")
    ok(chain, claim(chain, "E4"))
    assert chain.balance("B-C001", "ACME") == (0, 0) and chain.balance("A-C001", "ACME") == (acme, 0)


def test_lock_failures(chain: Chain) -> None:
    ok(chain, lock(chain, "E6"))
    fails(chain, lock(chain, "E6"), "escrow_exists")
    fails(chain, lock(chain, "E7", sender="member-b"), "not_account_owner")
    fails(chain, lock(chain, "E7", source="NOPE"), "unknown_account")
    fails(chain, lock(chain, "E7", target="NOPE"), "unknown_account")
    fails(chain, lock(chain, "E7", target="A-C001"), "same_account")
    fails(chain, lock(chain, "E7", asset="NOPE"), "unknown_instrument")
    fails(chain, lock(chain, "E7", amount=AMOUNT_MAX), "insufficient_balance")
    h = head(chain) + 1  # the height the next block will have
    fails(chain, lock(chain, "E7", timeout=h), "bad_timeout")
    fails(chain, lock(chain, "E7", timeout=h - 5), "bad_timeout")
    h = head(chain) + 1
    fails(chain, lock(chain, "E7", timeout=h + 100_001), "bad_timeout")
    ok(chain, lock(chain, "E7", timeout=head(chain) + 1 + 100_000))  # the maximum is allowed
    ok(chain, chain.tx("admin", "instruments", "halt", ["ACME", "test"]))
    fails(
        chain,
        lock(chain, "E8", source="B-C001", target="A-C001", asset="ACME", amount=1, sender="member-b"),
        "instrument_halted",
    )
    ok(chain, chain.tx("member-a", "accounts", "suspend", ["A-C002"]))
    fails(chain, lock(chain, "E8", source="A-C002"), "account_suspended")
    fails(chain, lock(chain, "E8", target="A-C002", source="B-C001", sender="member-b"), "account_suspended")
    # Malformed arguments never enter a block.
    rejected(chain, lock(chain, "E8", hashlock=HASH[:31]), "bad_arguments")
    rejected(chain, lock(chain, "E8", amount=0), "bad_arguments")
    rejected(chain, lock(chain, "E/8"), "bad_arguments")
    rejected(chain, lock(chain, "E8", timeout=0), "bad_arguments")


def test_claim_failures(chain: Chain) -> None:
    fails(chain, claim(chain, "NOPE"), "unknown_escrow")
    ok(chain, lock(chain, "E9"))
    fails(chain, claim(chain, "E9", preimage=OTHER), "bad_preimage")
    rejected(chain, claim(chain, "E9", preimage=SECRET + b"\x00"), "bad_arguments")
    rejected(chain, claim(chain, "E9", preimage=SECRET[:31]), "bad_arguments")
    fails(chain, refund(chain, "NOPE"), "unknown_escrow")


def test_claim_reaches_a_suspended_recipient_not_a_closed_one(chain: Chain) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-C009", "client", "client-009"]))
    timeout = head(chain) + 8
    ok(chain, lock(chain, "E10", source="B-C001", target="A-C009", amount=5_00, timeout=timeout, sender="member-b"),
       lock(chain, "E11", source="B-C001", target="A-C002", amount=7_00, timeout=timeout, sender="member-b"))  # fmt: skip
    ok(
        chain,
        chain.tx("member-a", "accounts", "close", ["A-C009"]),
        chain.tx("member-a", "accounts", "suspend", ["A-C002"]),
    )
    fails(chain, claim(chain, "E10"), "account_closed")
    a2 = chain.balance("A-C002", "USD")
    ok(chain, claim(chain, "E11"))
    assert chain.balance("A-C002", "USD") == (a2[0] + 7_00, 0)
    b = chain.balance("B-C001", "USD")
    until(chain, timeout)
    assert chain.balance("B-C001", "USD") == (b[0] + 5_00, b[1] - 5_00)
    assert record(chain, "E10")["status"] == "refunded"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda c: lock(c, "P1", sender="member-b"), "not_account_owner"),
        (lambda c: lock(c, "P1", sender="xchg-alpha"), "not_account_owner"),
        (lambda c: lock(c, "P1", sender="admin"), "not_account_owner"),
        (lambda c: refund(c, "P0", sender="member-b"), "not_account_owner"),
        (lambda c: refund(c, "P0", sender="admin"), "not_account_owner"),
        (lambda c: refund(c, "P0", sender="custodian"), "not_account_owner"),
    ],
)
def test_permissions(chain: Chain, make: Any, code: str) -> None:
    # The owner check comes first, so the escrow's timeout does not matter.
    ok(chain, lock(chain, "P0"))
    fails(chain, make(chain), code)
    assert record(chain, "P0")["status"] == "locked"


# --- views ------------------------------------------------------------------------------------
def test_views(chain: Chain) -> None:
    ok(
        chain,
        lock(chain, "V1"),
        lock(chain, "V2", hashlock=OTHER),
        lock(chain, "V3", source="B-C002", target="A-C001", sender="member-b"),
    )
    assert [e["id"] for e in view(chain, "list", account="A-C001")["escrows"]] == ["V1", "V2", "V3"]
    page = view(chain, "list", account="A-C001", limit="2")
    assert [e["id"] for e in page["escrows"]] == ["V1", "V2"] and page["next"] == "V2"
    page = view(chain, "list", account="A-C001", after="V2", limit="2")
    assert [e["id"] for e in page["escrows"]] == ["V3"] and page["next"] is None
    assert [e["id"] for e in view(chain, "list", account="B-C002")["escrows"]] == ["V3"]
    assert view(chain, "list", account="A-HOUSE")["escrows"] == []
    found = view(chain, "by_hashlock", hashlock=HASH.hex().upper())
    assert [e["id"] for e in found["escrows"]] == ["V1", "V3"]
    for name, query, code in [
        ("get", {"id": "NOPE"}, "unknown_escrow"),
        ("get", {}, "bad_query"),  # a missing key is not an unknown id
        ("list", {"account": "NOPE"}, "unknown_account"),
        ("list", {"account": "A-C001", "limit": "0"}, "bad_query"),
        ("list", {"account": "A-C001", "limit": "101"}, "bad_query"),
        ("by_hashlock", {"hashlock": "zz"}, "bad_query"),
        ("by_hashlock", {"hashlock": "00"}, "bad_query"),
    ]:
        with pytest.raises(ContractError) as exc:
            view(chain, name, **query)
        assert exc.value.code == code, (name, query)


def test_params_are_declared_with_bounds(chain: Chain) -> None:
    assert chain.state().get(b"escrow/param/timeout_blocks_max") == (100_000, 1, 10_000_000)
    assert chain.state().get(b"escrow/param/timeout_blocks_min") == (1, 1, 1_000_000)
    assert ("escrow", "expire") in REGISTRY.tasks()


# --- properties -------------------------------------------------------------------------------
IDS = ["X1", "X2", "X3"]
SIDES = [
    ("A-C001", "member-a", "B-C001"),
    ("B-C001", "member-b", "A-C001"),
    ("A-HOUSE", "member-a", "B-HOUSE"),
]
ASSETS = ["USD", "ACME"]
lock_st = st.tuples(
    st.just("lock"),
    st.sampled_from(IDS),
    st.integers(0, 2),
    st.sampled_from(ASSETS),
    st.integers(1, 6_000),
    st.integers(2, 6),
    st.booleans(),
)
step_st = st.one_of(
    lock_st,
    st.tuples(
        st.just("claim"),
        st.sampled_from(IDS),
        st.booleans(),
        st.sampled_from(["member-a", "member-b", "xchg-alpha"]),
    ),
    st.tuples(st.just("refund"), st.sampled_from(IDS), st.sampled_from(["member-a", "member-b"])),
    st.tuples(st.just("trade"), st.integers(1, 6_000)),
    st.tuples(st.just("withdraw"), st.sampled_from(ASSETS), st.integers(1, 6_000)),
)
# A first block of locks, so that later claims and refunds find something to act on.
history_st = st.builds(
    lambda first, rest: [first, *rest],
    st.lists(lock_st, min_size=1, max_size=3),
    st.lists(st.lists(step_st, max_size=4), max_size=6),
)


def _step_tx(chain: Chain, n: int, step: Any) -> SignedTx:
    kind = step[0]
    if kind == "lock":
        _, eid, side, asset, amount, ahead, right = step
        source, owner, target = SIDES[side]
        return lock(
            chain,
            eid,
            source=source,
            target=target,
            asset=asset,
            amount=amount,
            hashlock=HASH if right else OTHER,
            timeout=head(chain) + ahead,
            sender=owner,
        )
    if kind == "claim":
        return claim(chain, step[1], preimage=SECRET if step[2] else b"\x01" * 32, sender=step[3])
    if kind == "refund":
        return refund(chain, step[1], sender=step[2])
    if kind == "trade":
        return chain.tx(
            "xchg-alpha", "settlement", "settle", [f"T{n}", "A-C001", "B-C001", "ACME", step[1], 1_00, DAY]
        )
    return chain.tx("member-b", "custody", "request_withdrawal", ["B-C001", step[1], step[2]])


def _run_history(genesis: Genesis, history: list[list[Any]]) -> tuple[Chain, list[Receipt]]:
    chain = Chain(Store.in_memory(), genesis)
    receipts: list[Receipt] = []
    n = 0
    for steps in history:
        txs = []
        for step in steps:
            n += 1
            txs.append(_step_tx(chain, n, step))
        _, result = chain.run(*txs)
        receipts.extend(result.receipts)
        _check_ledger(chain)
    receipts.extend(until(chain, head(chain) + 5))  # every escrow times out
    _check_ledger(chain)
    return chain, receipts


def _check_ledger(chain: Chain) -> None:
    """Supply equals the sum of balances for every asset; no negative balance; each open
    escrow's amount is held in its sender's locked balance."""
    state = chain.state()
    totals: dict[str, int] = {}
    locked: dict[tuple[str, str], int] = {}
    for key, (available, held) in state.iterate(b"accounts/bal/"):
        account, asset = key[len(b"accounts/bal/") :].decode().split("/")
        assert available >= 0 and held >= 0
        totals[asset] = totals.get(asset, 0) + available + held
        locked[(account, asset)] = held
    for key, supply in state.iterate(b"custody/supply/"):
        assert totals.get(key[len(b"custody/supply/") :].decode(), 0) == supply
    in_escrow: dict[tuple[str, str], int] = {}
    for _, value in state.iterate(b"escrow/esc/"):
        if value[6] == "locked":
            in_escrow[(value[0], value[2])] = in_escrow.get((value[0], value[2]), 0) + value[3]
    for where, amount in in_escrow.items():
        assert locked.get(where, 0) >= amount


@settings(max_examples=40)
@given(history_st)
def test_conservation_and_exactly_one_outcome(genesis: Genesis, history: list[list[Any]]) -> None:
    chain, receipts = _run_history(genesis, history)
    outcomes: dict[str, list[str]] = {}
    for r in receipts:
        for contract, name, fields in r.events:
            if contract == "escrow" and name in ("escrow_claimed", "escrow_refunded"):
                outcomes.setdefault(dict(fields)["id"], []).append(name)
    for eid in IDS:
        value = chain.state().get(b"escrow/esc/" + eid.encode())
        if value is None:
            assert eid not in outcomes
            continue
        expected = {"claimed": ["escrow_claimed"], "refunded": ["escrow_refunded"]}[value[6]]
        assert outcomes[eid] == expected  # never locked after every timeout; one outcome only
        assert (value[9] is not None) == (value[6] == "claimed")
    # Nothing is locked in escrow any more: the senders' locked balances are withdrawals only.
    withdrawals = sum(v[2] for _, v in chain.state().iterate(b"custody/withdrawal/") if v[4] == "pending")
    assert sum(held for _, (_, held) in chain.state().iterate(b"accounts/bal/")) == withdrawals


@settings(max_examples=10)
@given(history_st)
def test_same_history_same_state_root(genesis: Genesis, history: list[list[Any]]) -> None:
    one, _ = _run_history(genesis, history)
    two, _ = _run_history(genesis, history)
    assert one.ledger.head.height == two.ledger.head.height
    assert one.ledger.head.state_root == two.ledger.head.state_root
    assert one.ledger.head.hash() == two.ledger.head.hash()


# --- the CLI and the scenario against a real node ---------------------------------------------
class Cli:
    def __init__(self, directory: Path, url: str) -> None:
        self.dir = directory
        self.url = url
        self.runner = CliRunner()

    def run(self, command: str) -> Result:
        args = [*shlex.split(command), "--node", self.url, "--keys-dir", str(self.dir / "keys")]
        return self.runner.invoke(main, args)

    def ok(self, command: str) -> Result:
        result = self.run(command)
        assert result.exit_code == 0, f"{command}: {result.output}"
        return result

    def fails(self, code: str, command: str) -> Result:
        result = self.run(command)
        assert result.exit_code == exit_status(code), f"{command}: {result.output}"
        assert result.stderr.startswith(f"error: {code}:"), result.stderr
        return result


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("escrow") / "net"
    # FAST (tests/test_cli.py) with quicker heartbeats: the refund waits for a timeout height.
    init_network(
        directory, validators=1, base_port=0, consensus=ConsensusSection(commit_wait_ms=10, heartbeat_ms=500)
    )
    thread = NodeThread(directory / "node0")
    thread.start()
    try:
        yield directory, thread.url
    finally:
        thread.stop()


@pytest.mark.io
def test_cli_lock_show_claim_refund(node: tuple[Path, str]) -> None:
    cli = Cli(*node)
    out = cli.ok(
        "escrow lock --id CLI-1 --from A-C001 --to B-C001 --asset USD --amount 12.50 --timeout-blocks 50 --new-secret --json"
    )
    doc = json.loads(out.stdout)
    secret = doc["secret"]
    assert hashlib.sha256(bytes.fromhex(secret)).hexdigest() == doc["hashlock"]
    shown = json.loads(cli.ok("escrow show CLI-1 --json").stdout)
    assert shown["status"] == "locked" and shown["amount"] == 12_50 and shown["hashlock"] == doc["hashlock"]
    text = cli.ok("escrow show CLI-1").stdout
    assert "locked" in text and "12.50" in text and "A-C001" in text
    cli.fails("bad_preimage", f"escrow claim CLI-1 --preimage {'00' * 32} --as member-b")
    cli.fails("bad_preimage", "escrow claim CLI-1 --preimage zz --as member-b")
    out = cli.ok(f"escrow claim CLI-1 --preimage {secret} --as member-b")
    assert out.stdout.startswith("claimed escrow CLI-1: USD 12.50 to B-C001")
    shown = json.loads(cli.ok("escrow show CLI-1 --json").stdout)
    assert shown["status"] == "claimed" and shown["preimage"] == secret
    # A lock under a given hash lock; the owner's refund before the timeout is refused.
    cli.ok(
        f"escrow lock --id CLI-2 --from B-C001 --to A-C001 --asset ACME --amount 3 --timeout-blocks 50 --hashlock {'ab' * 32}"
    )
    cli.fails("escrow_not_expired", "escrow refund CLI-2")
    cli.fails("not_account_owner", "escrow refund CLI-2 --as member-a")
    # A short lock: the owner's refund in the timeout block, unless a heartbeat block (whose
    # task refunds it) came first; either way it ends refunded.
    before = json.loads(cli.ok("account show B-C001 --json").stdout)["balances"]
    cli.ok(
        f"escrow lock --id CLI-4 --from B-C001 --to A-C001 --asset ACME --amount 4 --timeout-blocks 2 --hashlock {'ab' * 32}"
    )
    out = cli.run("escrow refund CLI-4")
    assert (
        out.exit_code == 0
        and out.stdout.startswith("refunded escrow CLI-4: ACME 4 back to B-C001")
        or (out.exit_code == 1 and out.stderr.startswith("error: escrow_closed:"))
    ), out.output
    assert json.loads(cli.ok("escrow show CLI-4 --json").stdout)["status"] == "refunded"
    assert json.loads(cli.ok("account show B-C001 --json").stdout)["balances"] == before
    listed = json.loads(cli.ok("escrow list --account A-C001 --json").stdout)
    assert {"CLI-1", "CLI-2"} <= {e["id"] for e in listed["escrows"]}
    lines = cli.ok("escrow list --account A-C001 --limit 1").stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "FROM", "TO", "ASSET", "AMOUNT", "TIMEOUT"]
    assert lines[1].split()[:6] == ["CLI-1", "claimed", "A-C001", "B-C001", "USD", "12.50"]
    assert lines[2] == "more: --after CLI-1"
    cli.fails(
        "bad_amount",
        "escrow lock --id CLI-3 --from A-C001 --to B-C001 --asset ACME --amount 1.5 --timeout-blocks 5 --new-secret",
    )
    cli.fails(
        "bad_arguments",
        "escrow lock --id CLI-3 --from A-C001 --to B-C001 --asset USD --amount 1 --timeout-blocks 5",
    )
    cli.fails(
        "not_account_owner",
        "escrow lock --id CLI-3 --from A-C001 --to B-C001 --asset USD --amount 1 --timeout-blocks 5 --new-secret --as member-b",
    )
    cli.fails("unknown_escrow", "escrow show NOPE")


@pytest.mark.io
def test_swap_scenario_runs_twice(node: tuple[Path, str]) -> None:
    from cli.scenarios import swap

    directory, url = node
    for _ in range(2):  # re-runnable on the same network
        lines: list[str] = []
        swap.run(ScenarioRun(Client(url), directory / "keys", directory, echo=lines.append))
        assert any("refunded" in line for line in lines)
