"""The p2p transport over real sockets on 127.0.0.1: authentication, refusals, garbage, duplicate
links, reconnection, bounded queues and handler failures.

Raw-socket clients speak the wire format by hand from the bytes documented in node/p2p.py (msgpack
and hashlib directly), so these tests also check that the documentation is right.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import msgpack
import pytest

from chain.keys import KeyPair, verify_signature
from node.p2p import MSG, PROTOCOL_VERSION, Garbage, P2PConfig, Peer, Transport, parse_message

CHAIN = "clearchain-p2p-test"
GENESIS = hashlib.sha256(b"p2p-test-genesis").digest()
KEYS = {name: KeyPair.dev(f"p2p-test-{name}") for name in ("a", "b", "c", "raw")}
LOCAL = ("127.0.0.1", 0)


def run(coro: Coroutine[Any, Any, None], timeout_s: float = 8.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout_s))


async def until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class Node:
    """A transport that records what it receives and its connects and disconnects."""

    def __init__(
        self,
        name: str,
        *,
        dial: tuple[Node | tuple[str, int], ...] = (),
        listen: tuple[str, int] | None = LOCAL,
        allowed: Callable[[bytes], bool] = lambda key: True,
        chain_id: str = CHAIN,
        genesis_hash: bytes = GENESIS,
        handler: Callable[[Peer, list[Any]], None] | None = None,
        **config: Any,
    ) -> None:
        self.key = KEYS[name]
        self.started = False
        self.received: list[tuple[bytes, list[Any]]] = []
        self.events: list[tuple[str, bytes, str]] = []
        config.setdefault("backoff_min_s", 0.02)
        config.setdefault("backoff_max_s", 0.2)
        config.setdefault("handshake_timeout_s", 2.0)
        self.t = Transport(
            chain_id=chain_id,
            genesis_hash=genesis_hash,
            key=self.key,
            allowed=allowed,
            config=P2PConfig(
                listen=listen, peers=[n.address if isinstance(n, Node) else n for n in dial], **config
            ),
            on_message=handler or (lambda peer, message: self.received.append((peer.pubkey, message))),
            on_connect=lambda peer: self.events.append(("connect", peer.pubkey, "")),
            on_disconnect=lambda peer, reason: self.events.append(("disconnect", peer.pubkey, reason)),
        )

    async def start(self) -> Node:
        if not self.started:
            self.started = True
            await self.t.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.t.listen_address is not None
        return self.t.listen_address

    def connected(self, *others: Node) -> bool:
        return all(o.key.public in self.t.peers for o in others)

    def from_(self, other: Node) -> list[list[Any]]:
        return [m for key, m in self.received if key == other.key.public]


@contextlib.asynccontextmanager
async def running(*nodes: Node) -> AsyncIterator[None]:
    """Start ``nodes`` not yet started, in order; stop all after."""
    try:
        for node in nodes:
            await node.start()
        yield
    finally:
        for node in nodes:
            await node.t.stop()


# A hand-written peer, straight from the documented bytes


def frame(value: Any) -> bytes:
    body: bytes = msgpack.packb(value, use_bin_type=True)
    return len(body).to_bytes(4, "big") + body


async def read_frame(reader: asyncio.StreamReader) -> list[Any]:
    size = int.from_bytes(await reader.readexactly(4), "big")
    message: list[Any] = msgpack.unpackb(await reader.readexactly(size), raw=False)
    return message


def documented_digest(challenge: bytes, signer: bytes, verifier: bytes) -> bytes:
    data = msgpack.packb([CHAIN, GENESIS, challenge, signer, verifier], use_bin_type=True)
    return hashlib.sha256(b"\x09handshake" + data).digest()


class RawPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, node: Node) -> RawPeer:
        reader, writer = await asyncio.open_connection(*node.address)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def handshake(self, node: Node, *, bad_signature: bool = False) -> None:
        key = KEYS["raw"]
        challenge = os.urandom(32)
        await self.send(frame([MSG.HELLO.value, PROTOCOL_VERSION, CHAIN, GENESIS, key.public, challenge]))
        hello = await read_frame(self.reader)
        assert hello[:5] == [0, PROTOCOL_VERSION, CHAIN, GENESIS, node.key.public] and len(hello[5]) == 32
        signature = key.sign(documented_digest(hello[5], key.public, node.key.public))
        if bad_signature:
            signature = bytes(64)
        await self.send(frame([MSG.AUTH.value, signature]))
        if bad_signature:
            return
        kind, theirs = await read_frame(self.reader)
        assert kind == MSG.AUTH
        assert verify_signature(
            node.key.public, theirs, documented_digest(challenge, node.key.public, key.public)
        )

    async def closed_by_peer(self) -> bool:
        """True once the other side has closed the connection (after reading what it sent)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 2.0):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.writer.transport.abort()


# Tests


@pytest.mark.io
def test_mesh_authenticates_broadcasts_once_and_keeps_order() -> None:
    async def main() -> None:
        a = await Node("a").start()
        b = Node("b", dial=(a,))
        await b.start()
        c = Node("c", dial=(a, b))
        async with running(a, b, c):
            await until(lambda: a.connected(b, c) and b.connected(a, c) and c.connected(a, b))
            assert c.t.peers[a.key.public].outbound and not a.t.peers[c.key.public].outbound
            for node in (a, b, c):
                assert node.t.broadcast([MSG.STATUS, node.key.public]) == 2
            await until(lambda: all(len(n.received) == 2 for n in (a, b, c)))
            await asyncio.sleep(0.05)
            for node in (a, b, c):
                senders = sorted(key for key, _ in node.received)
                assert senders == sorted(o.key.public for o in (a, b, c) if o is not node)
                assert all(message == [5, key] for key, message in node.received)
            assert a.t.broadcast([MSG.VOTE, 1], exclude=b.key.public) == 1

            await asyncio.sleep(0.05)
            a.received.clear()
            b.received.clear()
            sizes = [0, 1, 31, 32, 255, 256, 65_535, 65_536, 1_000_000, 4_000_000]
            sent: list[list[Any]] = [
                [MSG.BLOCKS, i, os.urandom(size), "text", [i, [b"x" * (i % 5)]]]
                for i, size in enumerate(sizes)
            ]
            for message in sent:
                assert a.t.send(b.key.public, message)
                assert b.t.send(a.key.public, message)
            await until(lambda: len(b.from_(a)) == len(a.from_(b)) == len(sent))
            assert b.from_(a) == a.from_(b) == [[int(m[0]), *m[1:]] for m in sent]
            assert a.t.stats["frames_out"] >= len(sent) and b.t.stats["bytes_in"] > sum(sizes)

            # send() never raises: unknown peers, unencodable values and reserved types are dropped.
            assert not a.t.send(b"\x00" * 32, [MSG.TXS])
            assert not a.t.send(b.key.public, [MSG.TXS, 1.5])
            assert not a.t.send(b.key.public, [MSG.HELLO])
            assert not a.t.send(b.key.public, [])
            assert a.t.broadcast([99]) == 0
            assert a.t.stats["dropped_no_peer"] == 1 and a.t.stats["dropped_unsendable"] == 4
        for node in (a, b, c):  # every connect is paired with one disconnect
            kinds = [kind for kind, _, _ in node.events]
            assert kinds.count("connect") == kinds.count("disconnect") == 2
        assert a.t.peers == {}

    run(main())


@pytest.mark.io
@pytest.mark.parametrize("field", ["chain_id", "genesis_hash"])
def test_wrong_chain_is_refused(field: str) -> None:
    async def main() -> None:
        a = await Node("a").start()
        other = {"chain_id": "another-chain"} if field == "chain_id" else {"genesis_hash": bytes(32)}
        b = Node("b", dial=(a,), **other)
        async with running(a, b):
            await until(lambda: a.t.stats.get("refused_wrong_chain", 0) >= 1)
            await until(lambda: b.t.stats.get("refused_wrong_chain", 0) >= 1)
            assert a.t.peers == {} and b.t.peers == {} and a.events == b.events == []

    run(main())


@pytest.mark.io
@pytest.mark.parametrize("refuser", ["listener", "dialer"])
def test_key_not_on_the_allow_list_is_refused_on_both_sides(refuser: str) -> None:
    async def main() -> None:
        keep_out = KEYS["b"].public if refuser == "listener" else KEYS["a"].public
        allowed = lambda key: key != keep_out  # noqa: E731
        a = await Node("a", allowed=allowed).start()
        b = Node("b", dial=(a,), allowed=allowed)
        async with running(a, b):
            refusing, other = (a, b) if refuser == "listener" else (b, a)
            await until(lambda: refusing.t.stats.get("refused_not_allowed", 0) >= 2)
            await until(lambda: other.t.stats["handshakes_refused"] >= 1)
            assert a.t.peers == {} and b.t.peers == {} and a.events == b.events == []

    run(main())


async def oversized_hello(raw: RawPeer, node: Node) -> None:
    await raw.send((1025).to_bytes(4, "big"))  # over the handshake's bound; the body is never read


async def oversized_frame(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node)
    await raw.send((8 * 1024 * 1024 + 1).to_bytes(4, "big"))


async def zero_length(raw: RawPeer, node: Node) -> None:
    await raw.send(bytes(4))


async def random_bytes(raw: RawPeer, node: Node) -> None:
    await raw.send(b"\x00\x00\x00\x10" + os.urandom(16))


async def bad_signature(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node, bad_signature=True)


async def undecodable(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node)
    await raw.send(b"\x00\x00\x00\x03\xc1\xc1\xc1")


async def not_canonical(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node)
    await raw.send(b"\x00\x00\x00\x03\x91\xcc\x02")  # [2] with a uint8 where a fixint fits


async def unknown_type(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node)
    await raw.send(frame([99, b"payload"]))


async def hello_again(raw: RawPeer, node: Node) -> None:
    await raw.handshake(node)
    await raw.send(frame([0, PROTOCOL_VERSION, CHAIN, GENESIS, KEYS["raw"].public, bytes(32)]))


GARBAGE = [
    (oversized_hello, "refused_frame_size"),
    (oversized_frame, "disconnects_garbage"),
    (zero_length, "refused_frame_size"),
    (random_bytes, "handshakes_refused"),
    (bad_signature, "refused_bad_auth"),
    (undecodable, "disconnects_garbage"),
    (not_canonical, "disconnects_garbage"),
    (unknown_type, "disconnects_garbage"),
    (hello_again, "disconnects_garbage"),
]


@pytest.mark.io
@pytest.mark.parametrize(("attack", "counter"), GARBAGE, ids=[g[0].__name__ for g in GARBAGE])
def test_garbage_is_disconnected_and_the_node_serves_on(attack: Callable[..., Any], counter: str) -> None:
    async def main() -> None:
        a = Node("a")
        async with running(a):
            raw = await RawPeer.connect(a)
            try:
                await attack(raw, a)
                assert await raw.closed_by_peer()
            finally:
                raw.close()
            await until(lambda: a.t.stats.get(counter, 0) == 1)
            await until(lambda: a.t.peers == {})
            b = Node("b", dial=(a,))
            async with running(b):
                await until(lambda: a.connected(b))
                assert b.t.send(a.key.public, [MSG.TXS, [b"tx"]])
                await until(lambda: a.from_(b) == [[2, [b"tx"]]])

    run(main())


def test_parse_message_accepts_only_known_types() -> None:
    assert parse_message(msgpack.packb([2, b"x"])) == [2, b"x"]
    for bad in ([], [True], [10], ["2"], [-1], 2):
        with pytest.raises(Garbage) as err:
            parse_message(msgpack.packb(bad))
        assert err.value.code in ("frame_malformed", "unknown_type")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(LOCAL)
        return int(sock.getsockname()[1])


@pytest.mark.io
def test_simultaneous_dials_leave_one_connection_on_both_ends() -> None:
    async def main() -> None:
        port_a, port_b = free_port(), free_port()
        a = Node("a", listen=("127.0.0.1", port_a), dial=(("127.0.0.1", port_b),))
        b = Node("b", listen=("127.0.0.1", port_b), dial=(("127.0.0.1", port_a),))
        async with running(a, b):
            await until(lambda: a.connected(b) and b.connected(a))
            await asyncio.sleep(0.5)  # let any duplicate be resolved and any redial settle
            ab, ba = a.t.peers[b.key.public], b.t.peers[a.key.public]
            assert ab.outbound != ba.outbound
            a_is_dialer = a.key.public < b.key.public
            assert ab.outbound == a_is_dialer
            settled = (a.t.stats["handshakes_ok"], b.t.stats["handshakes_ok"])
            assert a.t.send(b.key.public, [MSG.VOTE, 1]) and b.t.send(a.key.public, [MSG.VOTE, 2])
            await until(lambda: a.from_(b) == [[4, 2]] and b.from_(a) == [[4, 1]])
            await asyncio.sleep(0.3)
            assert (a.t.stats["handshakes_ok"], b.t.stats["handshakes_ok"]) == settled  # no flapping
            # Neither dialer knew the other's key: both links were made, and one was closed.
            assert a.t.stats["disconnects_duplicate"] + b.t.stats["disconnects_duplicate"] >= 1
            assert a.t.peers[b.key.public] is ab and b.t.peers[a.key.public] is ba

    run(main())


@pytest.mark.io
def test_dialer_reconnects_after_the_peer_restarts_on_the_same_port() -> None:
    async def main() -> None:
        a = await Node("a").start()
        b = Node("b", dial=(a,), listen=None)
        try:
            await b.t.start()
            await until(lambda: b.connected(a))
            assert b.t.send(a.key.public, [MSG.TXS, 1])
            await until(lambda: a.from_(b) == [[2, 1]])
            await a.t.stop()
            await until(lambda: b.t.peers == {})
            assert b.events[-1] == ("disconnect", a.key.public, "closed")
            await asyncio.sleep(0.3)  # b keeps dialing, and failing, meanwhile
            assert 2 <= b.t.stats["dials_failed"] <= 8  # backing off: 0.02 s doubling to 0.2 s
            a = Node("a", listen=a.address)
            async with running(a):
                await until(lambda: b.connected(a))
                assert b.t.send(a.key.public, [MSG.TXS, 2])
                await until(lambda: a.from_(b) == [[2, 2]])
        finally:
            await a.t.stop()
            await b.t.stop()

    run(main())


@pytest.mark.io
def test_a_stalled_reader_fills_its_queue_and_send_drops_without_blocking() -> None:
    async def main() -> None:
        a = Node("a", queue_max=4)
        async with running(a):
            raw = await RawPeer.connect(a)
            try:
                await raw.handshake(a)
                await until(lambda: KEYS["raw"].public in a.t.peers)
                message = [MSG.BLOCKS, bytes(256 * 1024)]
                accepted = 0
                for i in range(2000):  # the socket buffers absorb a few MB; then the queue fills
                    started = time.monotonic()
                    ok = a.t.send(KEYS["raw"].public, message)
                    assert time.monotonic() - started < 0.05
                    if not ok:
                        break
                    accepted += 1
                    if i % 4 == 3:
                        await asyncio.sleep(0.001)
                else:
                    raise AssertionError("send never refused")
                assert a.t.stats["dropped_queue_full"] == 1
                await asyncio.sleep(0.2)
                assert not a.t.send(KEYS["raw"].public, message)  # still stalled, still bounded
                peer = a.t.peers[KEYS["raw"].public]
                assert peer.dropped_queue_full == 2 and peer.queue.qsize() == 4
                assert accepted >= 4
            finally:
                raw.close()
            await until(lambda: a.t.peers == {})

    run(main())


@pytest.mark.io
def test_a_raising_handler_disconnects_that_peer_with_handler_error() -> None:
    async def main() -> None:
        received: list[list[Any]] = []

        def handler(peer: Peer, message: list[Any]) -> None:
            if message == [2, b"boom"]:
                raise RuntimeError("handler bug")
            received.append(message)

        a = await Node("a", handler=handler).start()
        b = Node("b", dial=(a,))
        async with running(a, b):
            await until(lambda: a.connected(b))
            b.t.send(a.key.public, [MSG.TXS, b"boom"])
            await until(lambda: ("disconnect", b.key.public, "handler_error") in a.events)
            assert a.t.stats["disconnects_handler_error"] == 1
            await until(lambda: a.connected(b))  # b redials; a lives on
            b.t.send(a.key.public, [MSG.TXS, b"fine"])
            await until(lambda: received == [[2, b"fine"]])
            a.t.disconnect(b.key.public, "bad_payload")
            await until(lambda: ("disconnect", b.key.public, "bad_payload") in a.events)
            assert a.t.stats["disconnects_requested"] == 1

    run(main())


@pytest.mark.io
def test_silent_inbound_connections_are_bounded_and_cannot_keep_an_honest_peer_out() -> None:
    async def main() -> None:
        a = Node("a", inbound_pending_max=2, handshake_timeout_s=0.5)
        async with running(a):
            raws = [await RawPeer.connect(a) for _ in range(2)]
            await until(lambda: a.t.stats["inbound_pending"] == 2)
            third = await RawPeer.connect(a)  # the slots are full: the oldest silent one goes
            honest = await RawPeer.connect(a)  # and for this one, the next oldest
            try:
                assert await raws[0].closed_by_peer() and await raws[1].closed_by_peer()
                assert a.t.stats["inbound_evicted"] == 2 and a.t.stats["inbound_pending"] == 2
                await honest.handshake(a)
                await until(lambda: KEYS["raw"].public in a.t.peers)
                assert await third.closed_by_peer()  # it never says HELLO
                assert a.t.stats["refused_handshake_timeout"] == 1
                assert KEYS["raw"].public in a.t.peers
            finally:
                for raw in [*raws, third, honest]:
                    raw.close()
            await a.t.stop()  # idempotent

    run(main())


@pytest.mark.io
def test_a_silent_peer_is_dropped_after_the_idle_timeout_and_one_that_talks_is_kept() -> None:
    async def main() -> None:
        a = Node("a", idle_timeout_s=0.4)
        async with running(a):
            raw = await RawPeer.connect(a)
            try:
                await raw.handshake(a)
                await until(lambda: KEYS["raw"].public in a.t.peers)
                for _ in range(6):  # 0.6 s of a status every 0.1 s: kept
                    await raw.send(frame([MSG.STATUS, 1, 0, 0]))
                    await asyncio.sleep(0.1)
                assert KEYS["raw"].public in a.t.peers
                await raw.send(b"\x00\x00\x00\x10" + b"\x93")  # then a frame that stops mid-body
                await until(lambda: KEYS["raw"].public not in a.t.peers, 2.0)
                assert ("disconnect", KEYS["raw"].public, "idle_timeout") in a.events
                assert a.t.stats["disconnects_idle"] == 1
                assert await raw.closed_by_peer()
            finally:
                raw.close()

    run(main())
