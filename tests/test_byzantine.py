"""A lying validator (``node.byzantine``, enabled by the test flag) among three honest ones, in
one process on real sockets: the honest three keep one chain and keep committing, whatever it
does. Equivocation becomes evidence on every honest node and slashes its bond; its invalid blocks
are never committed; its garbage gets it disconnected. The multi-process runs with crashes and
partitions on top are ``clearchain chaos`` (tests/test_chaos_e2e.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.store import Store
from cli.localnet import devnet
from node.faults import ENV_VAR, Faults, FaultsError, faults_from_env
from node.runtime import Node
from tests.netutil import TxMaker
from tests.test_node import Net, _assert_same_chain, _trade, run, until

BYZANTINE = 3


async def _start(net: Net, mode: str) -> list[Node]:
    nodes = []
    for i in range(4):
        faults = Faults(byzantine=mode, seed=7) if i == BYZANTINE else None
        node = Node(net.home(i), faults=faults)
        await node.start()
        net.nodes[i] = node
        nodes.append(node)
    return nodes


def _events(store: Store, name: str, upto: int) -> list[dict[str, object]]:
    return [
        dict(f)
        for h in range(1, upto + 1)
        for r in store.receipts(h) or []
        for _, n, f in r.events
        if n == name
    ]


@pytest.mark.io
def test_an_equivocating_validator_is_caught_and_slashed(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await _start(net, "equivocate")
            honest = nodes[:BYZANTINE]
            maker = TxMaker()
            bond = maker.tx(
                f"validator-{BYZANTINE}", "bonds", "post", [f"V{BYZANTINE}-HOUSE", "USD", 100_000_00, None]
            )
            honest[0].submit(bond.encode())
            for n in range(30):
                honest[0].submit(_trade(maker, n).encode())
            await until(
                lambda: all(len(n.evidence.items) > 0 for n in honest), 40, "evidence on every honest node"
            )
            assert nodes[BYZANTINE].byzantine is not None and nodes[BYZANTINE].byzantine.lies_told > 0

            def slashed() -> bool:
                head = honest[0].ledger.head.height
                return any(
                    e["participant"] == f"validator-{BYZANTINE}"
                    for e in _events(honest[0].store, "bond_slashed", head)
                )

            await until(slashed, 40, "the equivocator's bond slashed")
            target = max(n.ledger.head.height for n in honest) + 2
            await until(
                lambda: min(n.ledger.head.height for n in honest) >= target, 30, "honest nodes commit on"
            )
            _assert_same_chain(honest, target)
            for item in honest[0].evidence.items.values():
                assert item.first.validator == devnet.validator_key(BYZANTINE).public
                assert item.verify(honest[0].chain_id)
        finally:
            await net.close()

    run(go(), 120)


@pytest.mark.io
def test_invalid_blocks_are_never_committed(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await _start(net, "invalid_block")
            honest = nodes[:BYZANTINE]
            liar = nodes[BYZANTINE]
            await until(
                lambda: liar.byzantine is not None and liar.byzantine.lies_told >= 4, 60, "four lies proposed"
            )
            target = max(n.ledger.head.height for n in honest) + 1
            await until(
                lambda: min(n.ledger.head.height for n in honest) >= target, 30, "honest nodes commit on"
            )
            _assert_same_chain(honest, target)
            proposers = {honest[0].store.header(h).proposer for h in range(1, target + 1)}  # type: ignore[union-attr]
            assert liar.key.public not in proposers, "a block the liar proposed was committed"
            assert len(proposers) == 3
        finally:
            await net.close()

    run(go(), 120)


@pytest.mark.io
def test_a_validator_sending_garbage_is_disconnected_and_the_rest_commit(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await _start(net, "garbage")
            honest = nodes[:BYZANTINE]
            start = honest[0].ledger.head.height
            await until(lambda: nodes[BYZANTINE].byzantine.lies_told >= 6, 60, "garbage sent")  # type: ignore[union-attr]
            dropped = sum(
                n.transport.stats.get("disconnects_garbage", 0) + n.transport.stats["disconnects_requested"]
                for n in honest
            )
            assert dropped >= 1
            await until(
                lambda: min(n.ledger.head.height for n in honest) >= start + 5, 30, "honest nodes commit on"
            )
            _assert_same_chain(honest, start + 5)
        finally:
            await net.close()

    run(go(), 120)


def test_faults_come_only_from_the_test_flag_and_are_checked() -> None:
    assert faults_from_env({}) is None
    f = Faults(clock_skew_ms=-1500, fsync_delay_ms=20, byzantine="garbage", seed=3)
    assert faults_from_env(f.env()) == f
    assert json.loads(f.env()[ENV_VAR])["byzantine"] == "garbage"
    for bad in (
        '{"byzantine": "lie"}',
        '{"fsync_delay_ms": -1}',
        '{"clock_skew_ms": 1.5}',
        "[1]",
        "{",
        '{"x": 1}',
    ):
        with pytest.raises(FaultsError) as info:
            faults_from_env({ENV_VAR: bad})
        assert info.value.code == "faults_invalid"
