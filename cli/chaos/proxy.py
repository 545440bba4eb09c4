"""A TCP proxy on every p2p link of a local network, so a fault harness can cut, silence or slow
the links between node processes while the nodes run unchanged.

Why it is shaped so: partitions must be applied to real node processes from a synchronous harness,
without touching the nodes. Node ``src`` dials node ``dst`` at an address the harness wrote in
``src``'s config; ``add_link(src, dst, target)`` returns such an address, a listener here that
forwards to ``dst``'s real p2p address. The proxy runs its own asyncio loop in a daemon thread and
every control method runs on that loop and waits for it, so a change is in force when it returns.

A fault applies to a pair of nodes, both directions at once (``a->b`` and ``b->a`` links):

- ``cut``: open connections are reset now (RST); new ones are accepted and reset at once.
- ``blackhole``: a silent partition. Connections stay open and new ones are accepted, but nothing
  is forwarded, not even a close. What a sender writes waits in a bounded buffer, then reading from
  it stops, so TCP backpressure reaches the sender. A new connection dials its target only once the
  link lets bytes through, and is dropped if its dialer gives up (EOF or reset) before that. After ``heal`` the held bytes (and closes) flow on in order, as TCP
  retransmission would deliver them.
- ``delay``: each chunk is forwarded ``ms`` after it arrived, in order; throughput is not capped.
- ``heal``: back to ``up``.

Everything is bounded: bytes held per direction of a connection (``PIPE_BYTES_HIGH``, then the
sender is paused; the receiving socket's write buffer is bounded by asyncio's flow control) and
connections per link (``LINK_CONNECTIONS_MAX``, beyond which new ones are refused). Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

HOST: Final = "127.0.0.1"
MODES: Final = ("up", "cut", "blackhole", "delay")
PIPE_BYTES_HIGH: Final = 256 * 1024  # held per direction of a connection before the sender is paused
PIPE_BYTES_LOW: Final = 64 * 1024  # the sender reads again below this
LINK_CONNECTIONS_MAX: Final = 32  # live connections per link; a redialing node needs one or two
DIAL_TIMEOUT_S: Final = 5.0
CONTROL_TIMEOUT_S: Final = 10.0
DELAY_MS_MAX: Final = 60_000
_COUNTERS: Final = ("accepted", "refused", "reset", "dial_failed", "bytes_forwarded")

_EOF: Final = b""  # a queued end of stream (data chunks are never empty)
_RESET: Final = None  # a queued abortive close
T = TypeVar("T")


class _Pair:
    """The fault state of one pair of nodes, shared by both directions' links."""

    def __init__(self) -> None:
        self.mode = "up"
        self.delay_ms = 0
        self.conns: set[_Conn] = set()

    @property
    def passes(self) -> bool:
        """Whether bytes may flow now."""
        return self.mode in ("up", "delay")


class _Link:
    """One direction ``src -> dst``: a listener forwarding to ``target``."""

    def __init__(self, src: str, dst: str, target: tuple[str, int], pair: _Pair) -> None:
        self.src, self.dst, self.target, self.pair = src, dst, target, pair
        self.address: tuple[str, int] | None = None
        self.sock: socket.socket | None = None  # bound before start(), handed to the server after
        self.server: asyncio.Server | None = None
        self.conns: set[_Conn] = set()

    def __repr__(self) -> str:
        return f"{self.src}->{self.dst}"


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the dialing node's or the target's."""

    def __init__(self, on_made: Callable[[_Side], None]) -> None:
        self.on_made = on_made
        self.conn: _Conn | None = None
        self.transport: asyncio.Transport | None = None
        self.outgoing: _Pipe | None = None  # what this side sends, to the other side
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.outgoing is not None:
            self.outgoing.push(data)

    def eof_received(self) -> bool:
        if self.outgoing is not None:
            self.outgoing.push(_EOF)
        return True  # keep the socket open: the other direction may still carry bytes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.writable.set()
        if self.conn is not None:
            self.conn.side_lost(self)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def reset(self) -> None:
        """Close abortively, so the peer sees a reset rather than an orderly end."""
        if self.transport is None or self.transport.is_closing():
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class _Pipe:
    """One direction of a connection: a bounded FIFO of (arrival time, chunk | EOF | RESET)."""

    def __init__(self, conn: _Conn, source: _Side) -> None:
        self.conn = conn
        self.source = source
        self.items: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.held_bytes = 0
        self.paused = False
        self.dead = False  # the destination is gone: drop what arrives
        self.ended = False  # the source has sent its EOF or reset
        self.wake = asyncio.Event()

    def push(self, item: bytes | None) -> None:
        if self.dead:
            return
        self.items.append((self.conn.loop.time(), item))
        self.ended = self.ended or not item
        self.held_bytes += len(item or b"")
        if self.held_bytes > PIPE_BYTES_HIGH and not self.paused and self.source.transport is not None:
            self.paused = True
            self.source.transport.pause_reading()
        self.wake.set()

    def pop(self) -> bytes | None:
        _, item = self.items.popleft()
        self.held_bytes -= len(item or b"")
        if self.paused and self.held_bytes < PIPE_BYTES_LOW and self.source.transport is not None:
            self.paused = False
            with contextlib.suppress(RuntimeError):  # the source may be closing
                self.source.transport.resume_reading()
        return item

    async def until(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``; woken by arrivals and by fault changes."""
        while not ready():
            self.wake.clear()
            await self.wake.wait()

    async def _until_due(self, arrived: float) -> None:
        """Wait out the pair's delay since ``arrived``, and any blackhole, unless the pipe dies."""
        pair = self.conn.link.pair
        while not self.dead:
            if not pair.passes:
                await self.until(lambda: self.dead or pair.passes)
            elif (due := arrived + pair.delay_ms / 1000 - self.conn.loop.time()) > 0:
                self.wake.clear()  # a fault change wakes us early: a heal need not wait out the delay
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await self.wake.wait()
            else:
                return

    async def forward(self, dest: _Side, count: Callable[[int], None]) -> None:
        """Write items to ``dest`` in order while the pair lets them pass; end on EOF or RESET."""
        pair = self.conn.link.pair
        while True:
            await self.until(lambda: self.dead or (bool(self.items) and pair.passes))
            if self.dead:
                return
            await dest.writable.wait()  # only our writes fill it, so it stays set from here on
            await self._until_due(self.items[0][0])
            if self.dead or dest.lost or dest.transport is None:
                return
            item = self.pop()
            if item is _RESET:
                self.conn.close(reset=True)
                return
            if item == _EOF:
                if dest.transport.can_write_eof():
                    with contextlib.suppress(OSError):  # the other end is already gone: nothing to half-close
                        dest.transport.write_eof()
                return
            dest.transport.write(item)
            count(len(item))


class _Conn:
    """A connection a node made through a link, and the one the proxy made to its target."""

    def __init__(self, proxy: LinkProxy, link: _Link, client: _Side) -> None:
        self.proxy = proxy
        self.link = link
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.server: _Side | None = None
        client.conn = self
        self.up = _Pipe(self, client)  # client -> target
        client.outgoing = self.up
        self.down: _Pipe | None = None  # target -> client
        self.closed = False
        self.task = self.loop.create_task(self._run(), name=f"chaos-proxy-{link}")

    async def _run(self) -> None:
        try:
            await self.up.until(lambda: self.link.pair.passes or self.up.ended)
            if self.up.ended and not self.link.pair.passes:
                return  # the dialer gave up while its connection could not reach the target
            if not await self._dial():
                return
            assert self.server is not None and self.down is not None
            count = self.proxy.count_bytes
            await asyncio.gather(self.up.forward(self.server, count), self.down.forward(self.client, count))
            self.close(reset=False)
        except asyncio.CancelledError:
            pass
        except Exception:
            self.proxy.log.exception("proxy connection on %s failed", self.link)
        finally:
            self.close(reset=True)

    async def _dial(self) -> bool:
        """Connect to the target; on failure reset the client (a down node refuses, so do we)."""

        def made(side: _Side) -> None:
            side.conn = self
            self.down = side.outgoing = _Pipe(self, side)

        try:
            async with asyncio.timeout(DIAL_TIMEOUT_S):
                _, server = await self.loop.create_connection(lambda: _Side(made), *self.link.target)
        except (OSError, TimeoutError) as exc:
            self.proxy.log.debug("proxy %s: dialing %s failed: %r", self.link, self.link.target, exc)
            self.proxy.counts["dial_failed"] += 1
            return False
        self.server = server
        if self.closed:  # cut while dialing
            server.reset()
            return False
        return True

    def side_lost(self, side: _Side) -> None:
        """A socket ended without us closing it: pass the reset on, behind the bytes it sent."""
        if self.closed:
            return
        mirror = self.down if side is self.client else self.up
        if mirror is not None:
            mirror.dead = True  # nothing can reach this side any more
            mirror.wake.set()
        if side.outgoing is not None:
            side.outgoing.push(_RESET)

    def close(self, *, reset: bool) -> None:
        """End both sockets (idempotent) and forget the connection."""
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.server):
            if side is None or side.transport is None:
                continue
            if reset:
                side.reset()
            else:
                side.transport.close()
        if self.task is not asyncio.current_task():
            self.task.cancel()
        self.link.conns.discard(self)
        self.link.pair.conns.discard(self)


class LinkProxy:
    """Proxies for the p2p links of a local network, with faults a synchronous harness controls.

    Use: ``address = proxy.add_link("node0", "node1", node1_p2p_address)`` for every ordered pair
    (write ``address`` in node0's peers), ``start()``, then ``cut``/``blackhole``/``delay``/``heal``
    /``partition`` at will, and ``stop()`` at the end (also after a failure: it is idempotent).
    """

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self.links: dict[tuple[str, str], _Link] = {}
        self.pairs: dict[tuple[str, str], _Pair] = {}
        self.counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # Lifecycle

    def add_link(self, src: str, dst: str, target: tuple[str, int]) -> tuple[str, int]:
        """Listen on 127.0.0.1 for connections ``src`` makes to ``dst``; the bound address."""
        if self._stopped:
            raise RuntimeError("the proxy is stopped")
        if src == dst or (src, dst) in self.links:
            raise ValueError(f"link {src}->{dst}: a node does not dial itself, and each link is added once")
        if target[0] != HOST:
            raise ValueError(f"only {HOST} targets, not {target[0]}")
        link = _Link(src, dst, target, self.pairs.setdefault(_key(src, dst), _Pair()))
        link.sock = socket.create_server((HOST, 0))
        link.address = link.sock.getsockname()[:2]
        self.links[(src, dst)] = link
        if self._loop is not None:
            self._run(self._serve(link))
        return (HOST, link.address[1])

    def start(self) -> None:
        """Start the proxy loop and serve every link added so far."""
        assert self._loop is None and not self._stopped, "start once"
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="chaos-proxy", daemon=True)
        self._loop = loop
        self._thread.start()
        for link in list(self.links.values()):
            self._run(self._serve(link))

    def stop(self) -> None:
        """Close every listener and connection and end the loop thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop is None or self._thread is None:
            self._close_unserved_sockets()
            return
        try:
            self._run(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CONTROL_TIMEOUT_S)
            if not self._thread.is_alive():
                self._loop.close()
            self._close_unserved_sockets()

    # Faults

    def cut(self, a: str, b: str) -> None:
        """Reset the connections between ``a`` and ``b`` (both ways) and refuse new ones."""
        self._control(lambda: self._set(a, b, "cut"))

    def blackhole(self, a: str, b: str) -> None:
        """Forward nothing between ``a`` and ``b`` (both ways), keeping connections open."""
        self._control(lambda: self._set(a, b, "blackhole"))

    def delay(self, a: str, b: str, ms: int) -> None:
        """Forward each chunk between ``a`` and ``b`` (both ways) ``ms`` after it arrived."""
        if not 0 < ms <= DELAY_MS_MAX:
            raise ValueError(f"delay in 1..{DELAY_MS_MAX} ms, not {ms}")
        self._control(lambda: self._set(a, b, "delay", ms))

    def heal(self, a: str, b: str) -> None:
        """Let ``a`` and ``b`` talk normally again (held bytes flow on)."""
        self._control(lambda: self._set(a, b, "up"))

    def heal_all(self) -> None:
        def apply() -> None:
            for a, b in list(self.pairs):
                self._set(a, b, "up")

        self._control(apply)

    def partition(self, groups: Sequence[Sequence[str]]) -> None:
        """Cut every pair of nodes in different groups (a node in no group is cut from all) and
        lift earlier cuts inside a group; blackholes and delays inside a group stay."""
        group_of = {node: i for i, group in enumerate(groups) for node in group}
        if sum(len(group) for group in groups) != len(group_of):
            raise ValueError(f"a node is in two groups: {groups!r}")

        def apply() -> None:
            for a, b in list(self.pairs):
                together = a in group_of and group_of.get(a) == group_of.get(b)
                if not together:
                    self._set(a, b, "cut")
                elif self.pairs[(a, b)].mode == "cut":
                    self._set(a, b, "up")

        self._control(apply)

    # Reading

    def state(self, a: str, b: str) -> str:
        """``up``, ``cut``, ``blackhole`` or ``delay`` for the pair ``a``, ``b``."""
        return self._pair(a, b).mode

    def stats(self) -> dict[str, int]:
        """Connections accepted, refused, reset, failed to dial; bytes forwarded; connections open
        and bytes held (read, not yet forwarded) now."""

        def read() -> dict[str, int]:
            conns = [conn for link in self.links.values() for conn in link.conns]
            pipes = [pipe for conn in conns for pipe in (conn.up, conn.down) if pipe is not None]
            return {**self.counts, "open": len(conns), "held_bytes": sum(pipe.held_bytes for pipe in pipes)}

        return self._control(read)

    # On the loop

    async def _serve(self, link: _Link) -> None:
        assert link.sock is not None
        sock, link.sock = link.sock, None
        link.server = await asyncio.get_running_loop().create_server(
            lambda: _Side(lambda side: self._accept(link, side)), sock=sock
        )

    def _accept(self, link: _Link, client: _Side) -> None:
        if link.pair.mode == "cut" or self._stopped or len(link.conns) >= LINK_CONNECTIONS_MAX:
            self.counts["refused"] += 1
            client.reset()
            return
        self.counts["accepted"] += 1
        conn = _Conn(self, link, client)
        link.conns.add(conn)
        link.pair.conns.add(conn)

    def count_bytes(self, n: int) -> None:
        self.counts["bytes_forwarded"] += n

    def _set(self, a: str, b: str, mode: str, delay_ms: int = 0) -> None:
        pair = self._pair(a, b)
        if (pair.mode, pair.delay_ms) != (mode, delay_ms):
            self.log.info("chaos proxy: %s <-> %s %s%s", a, b, mode, f" {delay_ms} ms" if delay_ms else "")
        pair.mode, pair.delay_ms = mode, delay_ms
        for conn in list(pair.conns):
            if mode == "cut":
                self.counts["reset"] += 1
                conn.close(reset=True)
            else:
                for pipe in (conn.up, conn.down):
                    if pipe is not None:
                        pipe.wake.set()

    async def _shutdown(self) -> None:
        servers = [link.server for link in self.links.values() if link.server is not None]
        for server in servers:
            server.close()
        conns = [conn for link in self.links.values() for conn in link.conns]
        for conn in conns:
            conn.close(reset=True)
        await asyncio.gather(*(conn.task for conn in conns), return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports close their sockets before the loop ends
        for server in servers:
            await server.wait_closed()

    # Plumbing

    def _pair(self, a: str, b: str) -> _Pair:
        pair = self.pairs.get(_key(a, b))
        if pair is None:
            raise KeyError(f"no link between {a} and {b}")
        return pair

    def _control(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the proxy loop (directly before start) and wait for it."""
        if self._loop is None or self._stopped:
            return fn()

        async def call() -> T:
            return fn()

        return self._run(call())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None and self._thread is not None
        assert threading.current_thread() is not self._thread, "control the proxy from another thread"
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def _close_unserved_sockets(self) -> None:
        for link in self.links.values():
            if link.sock is not None:
                link.sock.close()
                link.sock = None


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
