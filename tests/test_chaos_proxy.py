"""The chaos proxy (cli/chaos/proxy.py) over real sockets on 127.0.0.1: bytes pass intact, and cut,
blackhole, delay, partition, heal and stop do to live connections what the fault harness relies on;
then two real p2p transports lose and regain each other through it.

Targets are plain echo servers, so every byte a client reads went through the proxy twice (to the
target and back); clients are blocking sockets with short timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.keys import KeyPair
from cli.chaos.proxy import PIPE_BYTES_HIGH, LinkProxy
from node.p2p import MSG, P2PConfig, Peer, Transport

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

NODES = ("a", "b", "c")
READ_BYTES_MAX = 256 * 1024  # what asyncio reads from a socket at once
SILENCE_S = 0.4  # how long a read must stay empty to count as "nothing forwarded"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        server.accepted += 1
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)
            self.request.shutdown(socket.SHUT_WR)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.accepted = 0


@contextlib.contextmanager
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def proxied(target: tuple[str, int]) -> Iterator[tuple[LinkProxy, dict[tuple[str, str], tuple[str, int]]]]:
    """A started proxy with a link each way between every two of NODES, all to ``target``."""
    proxy = LinkProxy()
    try:
        links = {(s, d): proxy.add_link(s, d, target) for s in NODES for d in NODES if s != d}
        proxy.start()
        yield proxy, links
    finally:
        proxy.stop()


@pytest.fixture
def net() -> Iterator[tuple[LinkProxy, dict[tuple[str, str], tuple[str, int]], EchoServer]]:
    with echo_server() as echo, proxied(echo.server_address[:2]) as (proxy, links):
        yield proxy, links, echo


def dial(address: tuple[str, int], timeout_s: float = 2.0) -> socket.socket:
    return socket.create_connection(address, timeout=timeout_s)


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection ended after {len(data)} of {n} bytes"
        data += chunk
    return data


def round_trip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return read_exactly(sock, len(data))


def is_reset(sock: socket.socket) -> bool:
    """Whether the proxy reset (or closed) this connection: it reads no data but an end."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def is_refused(address: tuple[str, int]) -> bool:
    """Whether a new connection is accepted and then reset at once (the reset may beat connect())."""
    try:
        sock = dial(address)
    except ConnectionResetError:
        return True
    with sock:
        return is_reset(sock)


def is_silent(sock: socket.socket) -> bool:
    """Whether nothing arrives for SILENCE_S while the connection stays open."""
    sock.settimeout(SILENCE_S)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(2.0)
    return False


def wait_until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(min_size=1, max_size=100_000), max_size=8), link=st.sampled_from(NODES[1:]))
def test_bytes_pass_through_intact_both_ways(net: Any, chunks: list[bytes], link: str) -> None:
    proxy, links, _ = net
    before = proxy.stats()["bytes_forwarded"]
    expected = b"".join(chunks)
    with dial(links[("a", link)]) as sock:

        def send() -> None:  # in a thread: the echo comes back while we still send
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while data := sock.recv(65536):
            received += data
        sender.join(5)
    assert bytes(received) == expected
    assert proxy.stats()["bytes_forwarded"] - before == 2 * len(expected)


def test_cut_resets_open_connections_both_ways_and_refuses_new_ones_until_heal(net: Any) -> None:
    proxy, links, _ = net
    ab, ba, ac = dial(links[("a", "b")]), dial(links[("b", "a")]), dial(links[("a", "c")])
    try:
        assert round_trip(ab) == round_trip(ba) == round_trip(ac) == b"ping"
        proxy.cut("b", "a")
        assert proxy.state("a", "b") == proxy.state("b", "a") == "cut"
        with pytest.raises(ConnectionResetError):
            ab.recv(1)
        with pytest.raises(ConnectionResetError):
            ba.recv(1)
        assert round_trip(ac, b"other pair") == b"other pair"
        stats = proxy.stats()
        assert stats["reset"] == 2 and stats["refused"] == 0
        assert all(is_refused(links[link]) for link in (("a", "b"), ("b", "a"), ("a", "b")))
        assert proxy.stats()["refused"] == 3
        proxy.heal("a", "b")
        assert proxy.state("a", "b") == "up"
        with dial(links[("a", "b")]) as healed, dial(links[("b", "a")]) as healed_back:
            assert round_trip(healed) == round_trip(healed_back) == b"ping"
    finally:
        for sock in (ab, ba, ac):
            sock.close()


def test_blackhole_forwards_nothing_keeps_connections_and_heal_delivers_what_was_held(net: Any) -> None:
    proxy, links, echo = net
    with dial(links[("a", "b")]) as old:
        assert round_trip(old) == b"ping"
        proxy.blackhole("a", "b")
        assert proxy.state("b", "a") == "blackhole"
        old.sendall(b"held")
        assert is_silent(old)
        accepted = echo.accepted
        with dial(links[("b", "a")]) as new:
            new.sendall(b"late")
            assert is_silent(new)
            assert echo.accepted == accepted, "a blackholed link must not even reach its target"
            with dial(links[("a", "b")]):
                wait_until(lambda: proxy.stats()["open"] == 3)
            wait_until(lambda: proxy.stats()["open"] == 2)  # a dialer that gives up leaves nothing behind
            assert proxy.stats()["refused"] == 0
            proxy.heal("a", "b")
            assert read_exactly(old, 4) == b"held"
            assert read_exactly(new, 4) == b"late"
            assert round_trip(old) == round_trip(new) == b"ping"
    assert proxy.stats()["reset"] == 0


def test_a_blackholed_sender_is_held_back_by_tcp_not_buffered_without_bound(net: Any) -> None:
    proxy, links, _ = net
    with dial(links[("a", "b")]) as sock:
        assert round_trip(sock) == b"ping"
        proxy.blackhole("a", "b")
        sock.setblocking(False)
        chunk, sent, deadline = bytes(65536), 0, time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)  # let the proxy read what it will, then try once more
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    break
        assert time.monotonic() < deadline, "the sender was never held back"
        assert sent < 16 * 1024 * 1024  # the kernel's socket buffers and a bounded few in the proxy
        stats = proxy.stats()
        assert 0 < stats["held_bytes"] <= PIPE_BYTES_HIGH + READ_BYTES_MAX
        assert stats["bytes_forwarded"] == 8  # the ping, there and back


def test_delay_adds_at_least_the_latency_and_keeps_order(net: Any) -> None:
    proxy, links, _ = net
    with dial(links[("a", "b")]) as sock:
        proxy.delay("a", "b", 250)
        assert proxy.state("a", "b") == "delay"
        started = time.monotonic()
        assert round_trip(sock) == b"ping"
        assert time.monotonic() - started >= 0.5  # delayed to the target and again on the way back
        messages = [f"message {i:03d};".encode() for i in range(50)]
        for message in messages:
            sock.sendall(message)
        assert read_exactly(sock, sum(map(len, messages))) == b"".join(messages)
        proxy.heal("a", "b")
        started = time.monotonic()
        assert round_trip(sock) == b"ping"
        assert time.monotonic() - started < 0.25  # neither direction is delayed any more


def test_partition_cuts_between_groups_only_and_a_node_in_no_group_from_everyone(net: Any) -> None:
    proxy, links, _ = net
    ab, ac, cb = dial(links[("a", "b")]), dial(links[("a", "c")]), dial(links[("c", "b")])
    try:
        proxy.partition([["a", "b"], ["c"]])
        assert [proxy.state(*p) for p in (("a", "b"), ("a", "c"), ("b", "c"))] == ["up", "cut", "cut"]
        assert round_trip(ab) == b"ping"
        assert is_reset(ac) and is_reset(cb)
        proxy.partition([["a", "c"]])
        assert [proxy.state(*p) for p in (("a", "b"), ("a", "c"), ("b", "c"))] == ["cut", "up", "cut"]
        with dial(links[("c", "a")]) as ca:
            assert round_trip(ca) == b"ping"
        proxy.partition([["a"]])  # b and c are in no group: cut from each other too
        assert {proxy.state(*p) for p in (("a", "b"), ("a", "c"), ("b", "c"))} == {"cut"}
        proxy.partition([["a", "b", "c"]])
        assert {proxy.state(*p) for p in (("a", "b"), ("a", "c"), ("b", "c"))} == {"up"}
        proxy.cut("a", "b")
        proxy.heal_all()
        assert proxy.state("a", "b") == "up"
    finally:
        for sock in (ab, ac, cb):
            sock.close()


def test_a_target_that_resets_or_is_down_resets_the_dialer_like_a_killed_node_would() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = LinkProxy()
    try:
        address = proxy.add_link("a", "b", listener.getsockname()[:2])
        proxy.start()
        with dial(address) as sock:
            listener.settimeout(2.0)
            accepted, _ = listener.accept()
            sock.sendall(b"to b")
            assert read_exactly(accepted, 4) == b"to b"
            accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            accepted.close()
            with pytest.raises(ConnectionResetError):
                sock.recv(1)
        listener.close()
        assert is_refused(address)
        stats = proxy.stats()
        assert (stats["accepted"], stats["dial_failed"], stats["open"]) == (2, 1, 0)
    finally:
        proxy.stop()
        listener.close()


def test_stop_closes_every_listener_and_connection_and_is_idempotent() -> None:
    with echo_server() as echo:
        proxy = LinkProxy()
        try:
            late = None
            links = {
                (s, d): proxy.add_link(s, d, echo.server_address[:2]) for s, d in (("a", "b"), ("b", "a"))
            }
            proxy.start()
            late = proxy.add_link("a", "c", echo.server_address[:2])  # added while running
            socks = [dial(address) for address in [*links.values(), late]]
            assert all(round_trip(sock) == b"ping" for sock in socks)
            assert proxy.stats()["open"] == 3
            threads = {t for t in threading.enumerate() if t.name == "chaos-proxy"}
            assert len(threads) == 1
            proxy.stop()
            assert all(is_reset(sock) for sock in socks)
            for address in [*links.values(), late]:
                with pytest.raises(ConnectionRefusedError):
                    dial(address)
            assert not any(t.is_alive() for t in threads)
            proxy.stop()
        finally:
            proxy.stop()
            for sock in socks:
                sock.close()


# Two real p2p transports through the proxy


CHAIN = "clearchain-chaos-proxy-test"
GENESIS = hashlib.sha256(b"chaos-proxy-test-genesis").digest()


class Endpoint:
    """A p2p transport that records its connects, disconnects and messages."""

    def __init__(self, name: str, dial_to: tuple[str, int] | None = None) -> None:
        self.key = KeyPair.dev(f"chaos-proxy-test-{name}")
        self.events: list[str] = []
        self.received: list[list[Any]] = []
        self.t = Transport(
            chain_id=CHAIN, genesis_hash=GENESIS, key=self.key, allowed=lambda key: True,
            config=P2PConfig(
                listen=("127.0.0.1", 0), peers=[dial_to] if dial_to else [],
                backoff_min_s=0.05, backoff_max_s=0.3, handshake_timeout_s=2.0,
            ),
            on_message=lambda peer, message: self.received.append(message),
            on_connect=lambda peer: self.events.append("connect"),
            on_disconnect=self._disconnected,
        )  # fmt: skip

    def _disconnected(self, peer: Peer, reason: str) -> None:
        self.events.append("disconnect")

    def connected(self, other: Endpoint) -> bool:
        return other.key.public in self.t.peers


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _transports_through_the_proxy(proxy: LinkProxy) -> None:
    b = Endpoint("b")
    await b.t.start()
    assert b.t.listen_address is not None
    a = Endpoint("a", dial_to=proxy.add_link("a", "b", b.t.listen_address))
    await a.t.start()
    try:
        await until(lambda: a.connected(b) and b.connected(a))
        assert proxy.stats()["open"] == 1  # the only way a reaches b is through the proxy
        a.t.send(b.key.public, [MSG.TXS, [b"before"]])
        await until(lambda: [MSG.TXS, [b"before"]] in b.received)

        await asyncio.to_thread(proxy.cut, "a", "b")
        await until(lambda: not a.connected(b) and not b.connected(a))
        refused = proxy.stats()["refused"]
        for _ in range(40):  # a keeps redialing for a second and is refused every time
            await asyncio.sleep(0.025)
            assert not a.connected(b) and not b.connected(a)
        assert (await asyncio.to_thread(proxy.stats))["refused"] > refused

        await asyncio.to_thread(proxy.heal, "a", "b")
        await until(lambda: a.connected(b) and b.connected(a), timeout_s=5.0)
        assert a.events == b.events == ["connect", "disconnect", "connect"]
        a.t.send(b.key.public, [MSG.TXS, [b"after"]])
        await until(lambda: [MSG.TXS, [b"after"]] in b.received)

        # A silent partition goes unnoticed by the transport: still connected, nothing arrives.
        await asyncio.to_thread(proxy.blackhole, "a", "b")
        a.t.send(b.key.public, [MSG.TXS, [b"held"]])
        await asyncio.sleep(SILENCE_S)
        assert a.connected(b) and [MSG.TXS, [b"held"]] not in b.received
        await asyncio.to_thread(proxy.heal, "a", "b")
        await until(lambda: [MSG.TXS, [b"held"]] in b.received)
    finally:
        await a.t.stop()
        await b.t.stop()


def test_p2p_transports_disconnect_on_cut_stay_apart_and_reconnect_on_heal() -> None:
    proxy = LinkProxy()
    proxy.start()
    try:
        asyncio.run(asyncio.wait_for(_transports_through_the_proxy(proxy), 15))
    finally:
        proxy.stop()
