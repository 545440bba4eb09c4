"""The node runtime in one process: several ``Node`` objects on one event loop, real sockets on
127.0.0.1, real LevelDB stores. Faster than the multi-process run and able to look inside.

Covers: blocks of trades agreed by four validators (same hashes and roots everywhere), empty
heartbeat blocks on an idle chain, a late validator and an observer catching up by block sync,
restart from the store and WAL, and peers that lie (forged sync blocks, malformed consensus
messages, garbage bytes): disconnected, while the node lives on and keeps committing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chain.block import Block
from chain.certificate import CommitCertificate
from chain.keys import KeyPair, read_key_file
from chain.tx import SignedTx
from chain.validation import validate_certificate
from cli.localnet.network import init_network
from cli.trade_dates import today
from node import p2p
from node.config import ConsensusSection, load_config
from node.runtime import NODE_KEY_FILE, Node
from tests.netutil import TxMaker

DAY = today()  # the trade date of this module's tickets: the nodes' clock is the wall clock

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

FAST = ConsensusSection(
    timeout_propose_ms=400, timeout_prevote_ms=200, timeout_precommit_ms=200, timeout_delta_ms=100,
    commit_wait_ms=10, heartbeat_ms=300,
)  # fmt: skip


def run(coro: Awaitable[Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Net:
    def __init__(
        self, tmp: Path, validators: int = 4, observers: int = 0, consensus: ConsensusSection = FAST
    ) -> None:
        self.dir = tmp / "net"
        self.doc = init_network(self.dir, validators, observers, base_port=0, consensus=consensus)
        self.nodes: dict[int, Node] = {}

    def home(self, i: int) -> Path:
        return self.dir / self.doc["nodes"][i]["home"]

    async def start(self, *indices: int) -> list[Node]:
        started = []
        for i in indices:
            node = Node(self.home(i))
            await node.start()
            self.nodes[i] = node
            started.append(node)
        return started

    async def stop(self, i: int) -> None:
        await self.nodes.pop(i).shutdown()

    async def close(self) -> None:
        for i in list(self.nodes):
            await self.stop(i)


def _heads(nodes: list[Node]) -> list[int]:
    return [n.ledger.head.height for n in nodes]


def _assert_same_chain(nodes: list[Node], upto: int) -> None:
    for h in range(1, upto + 1):
        headers = [n.store.header(h) for n in nodes]
        assert all(x is not None for x in headers), f"height {h} missing"
        assert len({x.hash() for x in headers if x is not None}) == 1, f"fork at height {h}"
        vset = nodes[0].store.validator_set(headers[0].validators_hash)  # type: ignore[union-attr]
        for n in nodes:
            cert = n.store.certificate(h)
            assert cert is not None
            validate_certificate(cert, n.chain_id, vset, h, headers[0].hash())  # type: ignore[arg-type, union-attr]


def _trade(maker: TxMaker, n: int) -> SignedTx:
    buyer, seller = ("A-C001", "B-C001") if n % 2 == 0 else ("B-C001", "A-C001")
    return maker.tx("xchg-alpha", "settlement", "settle", [f"N-{n}", buyer, seller, "ACME", 2, 180_00, DAY])


def test_four_validators_settle_trades_and_agree(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await net.start(0, 1, 2, 3)
            maker = TxMaker()
            hashes = []
            for n in range(40):
                stx = _trade(maker, n)
                nodes[0].submit(stx.encode())
                hashes.append(stx.hash)
                if n % 10 == 9:
                    await asyncio.sleep(0.05)
            await until(
                lambda: all(n.store.tx_location(hashes[-1]) for n in nodes),
                30,
                "the last trade committed everywhere",
            )
            height = min(_heads(nodes))
            _assert_same_chain(nodes, height)
            settled = 0
            for h in range(1, height + 1):
                for receipt in nodes[1].store.receipts(h) or []:
                    settled += sum(1 for _, name, _f in receipt.events if name == "trade_settled")
            assert settled == 40
            assert all(len(n.mempool) == 0 for n in nodes)
            assert {n.ledger.head.state_root for n in nodes if n.ledger.head.height == height} != set()
        finally:
            await net.close()

    run(go())


def test_idle_chain_makes_heartbeat_blocks(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await net.start(0, 1, 2, 3)
            await until(lambda: min(_heads(nodes)) >= 4, 20, "four heartbeat blocks")
            for h in range(2, 5):
                a, b = nodes[0].store.header(h - 1), nodes[0].store.header(h)
                assert a is not None and b is not None
                assert nodes[0].store.block(h).txs == ()  # type: ignore[union-attr]
                assert b.time_ms - a.time_ms >= 300  # no empty block before the heartbeat is due
        finally:
            await net.close()

    run(go())


def test_late_validator_and_observer_catch_up_by_sync(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path, validators=4, observers=1)
        try:
            early = await net.start(0, 1, 2)
            maker = TxMaker()
            for n in range(20):
                early[0].submit(_trade(maker, n).encode())
            await until(
                lambda: min(_heads(early)) >= 8 and len(early[0].mempool) == 0,
                30,
                "blocks on three validators",
            )
            late = await net.start(3, 4)
            target = max(_heads(early))
            await until(lambda: min(_heads(late)) >= target, 30, "the late nodes at the head")
            everyone = early + late
            _assert_same_chain(everyone, target)
            # the late validator now votes: blocks keep coming with four nodes
            for n in range(20, 30):
                early[0].submit(_trade(maker, n).encode())
            await until(lambda: min(_heads(everyone)) >= target + 3, 30, "more blocks with the late nodes")
            assert late[1].signer is None  # the observer never signs
        finally:
            await net.close()

    run(go())


def test_restart_resumes_from_store_and_wal(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        try:
            nodes = await net.start(0, 1, 2, 3)
            await until(lambda: min(_heads(nodes)) >= 3, 20, "three blocks")
            await net.stop(2)
            await asyncio.sleep(0.5)
            (restarted,) = await net.start(2)
            assert restarted.ledger.head.height >= 3
            others = [net.nodes[i] for i in (0, 1, 3)]
            target = max(_heads(others)) + 2
            await until(
                lambda: restarted.ledger.head.height >= target, 30, "the restarted node committing again"
            )
            _assert_same_chain([restarted, *others], restarted.ledger.head.height - 1)
        finally:
            await net.close()

    run(go())


async def _liar(
    net: Net, index: int, on_message: Callable[[p2p.Peer, list[Any]], None] | None = None
) -> p2p.Transport:
    """A transport holding validator ``index``'s key, dialing node 0: a byzantine validator."""
    cfg = load_config(net.home(index))
    target = net.doc["nodes"][0]["p2p"].rsplit(":", 1)
    node0 = net.nodes[0]
    t = p2p.Transport(
        chain_id=node0.chain_id, genesis_hash=node0.ledger.genesis_block().hash(),
        key=read_key_file(net.home(index) / NODE_KEY_FILE), allowed=lambda k: True,
        config=p2p.P2PConfig(listen=None, peers=[(target[0], int(target[1]))], queue_max=cfg.p2p.queue_max),
        on_message=on_message or (lambda peer, m: None), on_connect=lambda peer: None,
        on_disconnect=lambda peer, reason: None, log=node0.log.getChild("liar"),
    )  # fmt: skip
    await t.start()
    await until(lambda: len(t.peers) == 1, 10, "the liar connected")
    return t


def test_lying_peers_are_disconnected_and_the_node_lives_on(tmp_path: Path) -> None:
    async def go() -> None:
        net = Net(tmp_path)
        liar = None
        try:
            nodes = await net.start(0, 1, 2)
            await until(lambda: min(_heads(nodes)) >= 3, 20, "three blocks")
            node0 = nodes[0]
            node3_key = read_key_file(net.home(3) / NODE_KEY_FILE).public
            cases: list[list[Any]] = [
                [int(p2p.MSG.VOTE), [1, 2, 3]],  # malformed vote
                [int(p2p.MSG.PROPOSAL), "x"],  # malformed proposal
                [int(p2p.MSG.STATUS), -1, 0, 0],  # malformed status
                [int(p2p.MSG.TXS), [b"\x01\x02"]],  # a tx that does not decode
                [int(p2p.MSG.GET_BLOCKS), 5, 1],  # an empty range
            ]
            for message in cases:
                liar = await _liar(net, 3)
                assert liar.send(node0.key.public, message)
                await until(
                    lambda: node3_key not in node0.transport.peers,
                    10,
                    f"node 0 dropping the liar after {message[0]}",
                )
                await liar.stop()
                liar = None
            # a forged sync block at exactly the next height: halt the chain (stop node 2), then
            # offer node 0 its head block pushed one height on, under a made-up certificate
            await net.stop(2)
            await asyncio.sleep(0.5)
            real = node0.store.block(node0.ledger.head.height)
            assert real is not None
            forged_cert = CommitCertificate(real.height + 1, 0, b"\x11" * 32, ((node3_key, b"\x22" * 64),))
            liar = await _liar(net, 3)
            head = node0.ledger.head.height
            assert liar.send(
                node0.key.public, [int(p2p.MSG.BLOCKS), [[_bump(real).encode(), forged_cert.to_wire()]]]
            )
            await until(lambda: node3_key not in node0.transport.peers, 10, "node 0 dropping the forger")
            await liar.stop()
            liar = None
            assert node0.ledger.head.height == head
            await net.start(2)
            before = node0.ledger.head.height
            await until(lambda: node0.ledger.head.height >= before + 2, 20, "node 0 still committing")
            # raw garbage on the listening socket
            host, port = net.doc["nodes"][0]["p2p"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(b"\xff" * 64)
            before = node0.ledger.head.height
            await until(
                lambda: node0.ledger.head.height >= before + 2, 20, "node 0 still committing after garbage"
            )
        finally:
            if liar is not None:
                await liar.stop()
            await net.close()

    run(go())


def _bump(block: Block) -> Block:
    from dataclasses import replace

    return replace(block, header=replace(block.header, height=block.header.height + 1))


@pytest.mark.parametrize("path", ["/status", "/blocks/1", "/evidence"])
def test_api_reads(tmp_path: Path, path: str) -> None:
    import aiohttp

    async def go() -> None:
        net = Net(tmp_path, validators=1)
        try:
            (node,) = await net.start(0)
            await until(lambda: node.ledger.head.height >= 1, 20, "a block")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{_rpc(node)}{path}") as resp:
                    assert resp.status == 200
                    body = await resp.json()
            if path == "/status":
                assert body["height"] >= 1 and body["chain_id"] == node.chain_id
            elif path == "/blocks/1":
                assert body["hash"] == node.store.header(1).hash().hex()  # type: ignore[union-attr]
                assert len(body["certificate"]["signatures"]) == 1
            else:
                assert body == {"evidence": []}
        finally:
            await net.close()

    run(go())


def test_api_submit_and_track(tmp_path: Path) -> None:
    import aiohttp

    async def go() -> None:
        net = Net(tmp_path, validators=1)
        try:
            (node,) = await net.start(0)
            maker = TxMaker()
            good = _trade(maker, 0)
            async with aiohttp.ClientSession() as http:
                base = f"http://{_rpc(node)}"
                async with http.post(base + "/txs?wait=commit", json={"tx": good.encode().hex()}) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                    assert body["txs"][0]["status"] == "committed"
                    assert body["txs"][0]["receipt"]["ok"] is True
                async with http.get(base + f"/txs/{good.hash.hex()}") as resp:
                    assert (await resp.json())["status"] == "committed"
                # a replay is refused with a reason, and remembered
                async with http.post(base + "/txs", json={"tx": good.encode().hex()}) as resp:
                    body = await resp.json()
                    assert resp.status == 400 and body["refused"][0]["code"] == "nonce_replayed", body
                for bad, code in [
                    (b"not json", "bad_json"),
                    (b'{"tx": "zz"}', None),
                    (b'{"txs": []}', "bad_request"),
                    (b'{"tx": "00", "txs": []}', "bad_request"),
                ]:
                    async with http.post(
                        base + "/txs", data=bad, headers={"Content-Type": "application/json"}
                    ) as resp:
                        body = await resp.json()
                        assert resp.status == 400
                        if code is not None:
                            assert body["error"]["code"] == code
                        else:
                            assert body["refused"][0]["code"] == "bad_hex"
                async with http.get(base + "/txs/" + "ab" * 32) as resp:
                    assert resp.status == 404 and (await resp.json())["status"] == "unknown"
                async with http.get(base + "/txs/xyz") as resp:
                    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
                async with http.get(base + "/blocks/999999") as resp:
                    assert resp.status == 404 and (await resp.json())["error"]["code"] == "block_not_found"
                async with http.get(base + "/nope") as resp:
                    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        finally:
            await net.close()

    run(go())


def _rpc(node: Node) -> str:
    assert node.rpc is not None
    host, port = node.rpc.address
    return f"{host}:{port}"


def test_double_vote_becomes_evidence_on_every_node(tmp_path: Path) -> None:
    """Validator 3 (run by the test) signs two different prevotes for one (height, round): the
    node that sees both keeps the pair, every node learns it, and the API shows it."""
    import aiohttp

    from chain.certificate import PREVOTE, vote_sign_bytes
    from node.messages import Vote

    async def go() -> None:
        net = Net(tmp_path)
        liar = None
        try:
            nodes = await net.start(0, 1, 2)
            await until(lambda: min(_heads(nodes)) >= 2, 20, "two blocks")
            key = read_key_file(net.home(3) / NODE_KEY_FILE)
            liar = await _liar(net, 3)
            height = nodes[0].ledger.head.height + 1
            votes = []
            for block_hash in (b"\x01" * 32, b"\x02" * 32):
                sig = key.sign(vote_sign_bytes(nodes[0].chain_id, PREVOTE, height, 0, block_hash))
                votes.append(Vote(PREVOTE, height, 0, block_hash, key.public, sig))
            for v in votes:
                assert liar.send(nodes[0].key.public, [int(p2p.MSG.VOTE), v.to_wire()])
            await until(lambda: all(len(n.evidence.items) == 1 for n in nodes), 20, "evidence on every node")
            (item,) = nodes[2].evidence.items.values()
            assert item.first.validator == key.public and item.verify(nodes[0].chain_id)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{_rpc(nodes[1])}/evidence") as resp:
                    (doc,) = (await resp.json())["evidence"]
            assert (
                doc["validator"] == key.public.hex() and doc["height"] == height and doc["step"] == "prevote"
            )
            # forged evidence (a signature that does not verify) gets its sender disconnected
            await liar.stop()
            liar = await _liar(net, 3)
            bad = Vote(PREVOTE, height + 5, 0, b"\x03" * 32, key.public, b"\x00" * 64)
            assert liar.send(nodes[0].key.public, [int(p2p.MSG.EVIDENCE), bad.to_wire(), votes[0].to_wire()])
            await until(lambda: key.public not in nodes[0].transport.peers, 10, "the forger dropped")
            assert len(nodes[0].evidence.items) == 1
        finally:
            if liar is not None:
                await liar.stop()
            await net.close()

    run(go())


def test_transactions_sent_to_an_observer_reach_the_validators(tmp_path: Path) -> None:
    """An observer never proposes: what clients send it must travel, even if it had no peers yet."""

    async def go() -> None:
        net = Net(tmp_path, validators=1, observers=1)
        try:
            (observer,) = await net.start(1)
            maker = TxMaker()
            stx = _trade(maker, 0)
            observer.submit(stx.encode())  # no peer yet: gossip reaches nobody
            await asyncio.sleep(0.2)
            (validator,) = await net.start(0)
            await until(
                lambda: observer.store.tx_location(stx.hash) is not None,
                20,
                "the trade committed and replicated",
            )
            assert validator.store.tx_location(stx.hash) == observer.store.tx_location(stx.hash)
        finally:
            await net.close()

    run(go())


def test_fresh_keys_network_runs_and_signs_with_its_key_files(tmp_path: Path) -> None:
    """`net init --fresh-keys`: no dev key anywhere; the key files written are the ones genesis
    names, and a transaction signed with them commits."""
    import json

    from chain.tx import Tx
    from cli.localnet import devnet

    net = tmp_path / "net"
    doc = init_network(net, validators=1, base_port=0, consensus=FAST, fresh_keys=True)
    genesis = json.loads((net / "genesis.json").read_text())
    assert doc["chain_id"] == genesis["chain_id"] != devnet.CHAIN_ID and not doc["insecure_dev_keys"]
    assert "_warning" not in genesis
    dev_ids = {KeyPair.dev(n).key_id for _, _, names in devnet.PARTICIPANTS.values() for n in names}
    listed = {k for p in genesis["participants"] for k in p["keys"]}
    assert not listed & dev_ids
    assert genesis["validators"][0]["pub_key"] != devnet.validator_key(0).key_id
    custodian = read_key_file(net / "keys" / "custodian.key")
    assert custodian.key_id in next(p["keys"] for p in genesis["participants"] if p["id"] == "custodian")

    async def go() -> None:
        node = Node(net / "node0")
        await node.start()
        try:
            stx = Tx(
                genesis["chain_id"],
                "custodian",
                1,
                "custody",
                "deposit",
                ["A-C001", "USD", 100, "fresh-1"],
                0,
            ).sign([custodian])
            node.submit(stx.encode())
            await until(lambda: node.store.tx_location(stx.hash) is not None, 20, "the deposit committed")
        finally:
            await node.shutdown()

    run(go())


def test_gossip_copies_are_recognised_before_decoding_and_never_sent_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction arrives from every peer of a mesh: the copies cost a digest, not a decode
    and a signature check; it is relayed to every peer but its source; and bytes refused for a
    reason that may pass later (a nonce gap) are tried again when they come again."""
    from types import SimpleNamespace

    decodes: list[bytes] = []
    real_decode = SignedTx.decode

    def counting_decode(data: bytes) -> SignedTx:
        decodes.append(data)
        return real_decode(data)

    monkeypatch.setattr(SignedTx, "decode", staticmethod(counting_decode))
    txs_kind = int(p2p.MSG.TXS)

    async def go() -> None:
        net = Net(tmp_path)
        [node] = await net.start(0)
        try:
            sent: list[tuple[list[Any], bytes | None]] = []
            node.transport.broadcast = lambda message, exclude=None: sent.append((message, exclude)) or 0  # type: ignore[method-assign]
            maker = TxMaker()
            first = maker.tx(
                "xchg-alpha", "settlement", "settle", ["G1", "A-C001", "B-C001", "ACME", 1, 100_00, DAY]
            )
            second = maker.tx(
                "xchg-alpha", "settlement", "settle", ["G2", "A-C001", "B-C001", "ACME", 1, 100_00, DAY]
            )
            peer_a, peer_b = SimpleNamespace(pubkey=b"\x0a" * 32), SimpleNamespace(pubkey=b"\x0b" * 32)

            node.txgossip.on_txs(
                peer_a.pubkey, [txs_kind, [second.encode()]]
            )  # nonce 2 before nonce 1: a gap
            assert second.hash not in node.mempool
            node.txgossip.on_txs(peer_a.pubkey, [txs_kind, [first.encode()]])
            node.txgossip.on_txs(peer_b.pubkey, [txs_kind, [first.encode()]])  # a copy: not decoded again
            node.txgossip.on_txs(
                peer_b.pubkey, [txs_kind, [second.encode()]]
            )  # the gap is gone: admitted now
            assert first.hash in node.mempool and second.hash in node.mempool
            assert decodes == [second.encode(), first.encode(), second.encode()]
            node.txgossip.flush()
            assert sorted((m[1], exclude) for m, exclude in sent) == sorted(
                [([first.encode()], peer_a.pubkey), ([second.encode()], peer_b.pubkey)]
            )
        finally:
            await net.close()

    run(go())
