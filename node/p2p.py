"""The authenticated peer-to-peer transport: framed msgpack messages over asyncio TCP, only
between nodes on the allow-list.

Why it is shaped so: a validator must talk only to the chain's known nodes, one peer's bytes or
slowness must never harm the others, and the runtime should reason about peers by node key, not by
socket. So every connection, inbound or outbound, first proves which node key holds it by signing
the other side's fresh challenge; only then is it a ``Peer``, and there is at most one per key.
Every frame and every queue is bounded: a peer's outbound queue both in messages and in bytes, so
a peer that asks for blocks and never reads the answers holds at most ``queue_bytes_max`` of our
memory, freed as soon as it goes. ``send`` never blocks; a peer that sends garbage is dropped;
reading yields to the event loop after each message, so a burst of cheap requests cannot hold the
loop (and stop consensus) while they are answered; nothing a peer sends can stop the node.

Frames: a 4-byte big-endian length ``n``, then ``n`` bytes of one canonical msgpack array
``[type, ...]`` (``chain.encoding``). 1 <= n <= frame_bytes_max, and n <= 1024 until the
handshake is done, so an unauthenticated peer cannot make us buffer much; a length outside that
is garbage and its body is not read. Types are ``MSG``. The transport reads HELLO and AUTH itself; of any other
frame it checks only that it decodes to a non-empty array whose first item is a known type code.

Handshake, the same on both ends of every connection, within ``handshake_timeout_s``:

    send  [0 HELLO, 1 PROTOCOL_VERSION, chain_id: str, genesis_hash: bin, pubkey: bin32, challenge: bin32]
          (challenge: 32 fresh bytes from os.urandom)
    recv  the peer's HELLO. Refused unless version, chain id and genesis hash equal ours
          (``wrong_version``, ``wrong_chain``), the key is 32 bytes (``bad_hello``), is not ours
          (``self_connection``) and is allowed (``not_allowed``).
    send  [1 AUTH, signature: bin64] = Ed25519 by our key over
          auth_digest(the peer's challenge, signer=our key, verifier=the peer's key)
    recv  the peer's AUTH, verified over auth_digest(our challenge, the peer's key, our key)
          (``bad_auth``).

    auth_digest(challenge, signer, verifier)
        = H("handshake", encode([chain_id, genesis_hash, challenge, signer, verifier]))
        = SHA-256(0x09 || b"handshake" || msgpack array of those five values)

Other refusal codes: ``bad_hello`` (a first frame that is not a well-formed HELLO),
``handshake_timeout``, ``handshake_closed`` (the peer hung up, often because it refused us),
``handshake_error`` (a bug here, logged with its traceback), and the garbage codes ``frame_size``,
``frame_malformed``, ``unknown_type``. After the handshake a HELLO or AUTH is garbage too
(``unexpected_handshake``), and a peer that sends nothing for ``idle_timeout_s`` is dropped
(``idle_timeout``): a silent link or a peer stalled mid-frame frees its slot and is redialed.

Duplicates: if two authenticated connections join the same two nodes, both ends keep the same one.
If they run in opposite directions (both nodes dialed at once) it is the one dialed by the
bytewise smaller key; if both were dialed by the same node, the newer (the dialer reconnected, so
the older is stale). The survivor takes over the other's unsent messages (frames already in flight
on the closed one may be lost); ``on_connect`` and ``on_disconnect`` are called once each per
period in which a key is connected, whichever socket carries it. A dialer that has learnt the key
at its address does not redial while that key is connected either way.

Why one module of more than 500 lines: framing, the signed handshake, per-peer queues and the
dial and accept loops share one connection life cycle (pending, authenticated, closed) and its
bounds; split, each part would need the others' private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from chain.encoding import H, decode, encode
from chain.errors import ClearchainError, EncodingError
from chain.keys import PUBKEY_BYTES, KeyPair, verify_signature
from chain.limits import ENCODED_BYTES_MAX

# 2: a block's tx_root is over the signed txs, signatures included (issue 18); a node of
# version 1 computes another root for the same block, so the two must not peer.
PROTOCOL_VERSION: Final = 2
CHALLENGE_BYTES: Final = 32
HEADER_BYTES: Final = 4
HANDSHAKE_FRAME_BYTES_MAX: Final = 1024  # HELLO and AUTH are small: unauthenticated peers get no more
WRITE_BATCH_BYTES: Final = 256 * 1024  # written to the socket between drains
CLOSE_GRACE_S: Final = 0.5  # for a polite close to flush before we abort


class MSG(IntEnum):
    HELLO = 0
    AUTH = 1
    TXS = 2
    PROPOSAL = 3
    VOTE = 4
    STATUS = 5
    GET_BLOCKS = 6
    BLOCKS = 7
    EVIDENCE = 8
    HEIGHT_PRUNED = 9


_HELLO: Final = int(MSG.HELLO)
_AUTH: Final = int(MSG.AUTH)
_KNOWN: Final = frozenset(int(m) for m in MSG)
_RUNTIME: Final = _KNOWN - {_HELLO, _AUTH}  # what the runtime sends and receives
_GRACEFUL: Final = frozenset({"closed", "duplicate"})  # close politely; any other reason aborts
_COUNTERS: Final = (
    "frames_in", "frames_out", "bytes_in", "bytes_out", "handshakes_ok", "handshakes_refused",
    "disconnects", "disconnects_garbage", "disconnects_handler_error", "disconnects_requested",
    "disconnects_duplicate", "dropped_queue_full", "dropped_no_peer", "dropped_unsendable",
    "dials_failed", "inbound_evicted", "disconnects_idle",
)  # fmt: skip


class PeerError(ClearchainError):
    """A connection we close: ``code`` is the reason (see the module docstring)."""


class Garbage(PeerError):
    """Bytes that are not a frame we accept: bad length, undecodable, unknown or misplaced type."""


@dataclass(frozen=True, slots=True)
class P2PConfig:
    listen: tuple[str, int] | None = None  # None: dial only
    peers: Sequence[tuple[str, int]] = ()  # addresses to dial and keep dialing
    frame_bytes_max: int = ENCODED_BYTES_MAX
    queue_max: int = 1024  # outbound messages queued per peer
    queue_bytes_max: int = 4 * ENCODED_BYTES_MAX  # and their bytes: what a peer that never reads costs
    handshake_timeout_s: float = 5.0
    # A peer silent this long is gone (a silent partition, a paused process, a peer stalled
    # mid-frame): drop it so the dialer reconnects. Nodes send a status every 0.25 s.
    idle_timeout_s: float = 15.0
    backoff_min_s: float = 0.1
    backoff_max_s: float = 5.0
    inbound_pending_max: int = 64  # inbound connections still in their handshake
    stable_connection_s: float = 3.0  # a connection this long resets the dial backoff

    def __post_init__(self) -> None:
        if self.frame_bytes_max < 1024 or self.queue_max < 1 or self.inbound_pending_max < 1:
            raise ValueError("frame_bytes_max >= 1024, queue_max >= 1, inbound_pending_max >= 1")
        if self.queue_bytes_max < self.frame_bytes_max:
            raise ValueError("queue_bytes_max >= frame_bytes_max (the largest message must fit)")
        if (
            not 0 < self.backoff_min_s <= self.backoff_max_s
            or self.handshake_timeout_s <= 0
            or self.idle_timeout_s <= 0
        ):
            raise ValueError(
                "need 0 < backoff_min_s <= backoff_max_s, handshake_timeout_s > 0, idle_timeout_s > 0"
            )


def auth_digest(
    chain_id: str, genesis_hash: bytes, challenge: bytes, signer: bytes, verifier: bytes
) -> bytes:
    """What ``signer`` signs to prove its key to ``verifier``, who chose ``challenge``."""
    return H(b"handshake", encode([chain_id, genesis_hash, challenge, signer, verifier]))


def parse_message(body: bytes, frame_bytes_max: int = ENCODED_BYTES_MAX) -> list[Any]:
    """Decode one frame body; raise Garbage unless it is ``[known type, ...]``."""
    try:
        message = decode(body, max_bytes=frame_bytes_max)
    except EncodingError as exc:
        raise Garbage("frame_malformed", exc.message) from exc
    if type(message) is not list or not message:
        raise Garbage("frame_malformed", "a message is a non-empty array")
    if type(message[0]) is not int or message[0] not in _KNOWN:
        raise Garbage("unknown_type", f"unknown message type {message[0]!r}")
    return message


class Peer:
    """One authenticated connection to another node, known by the node's key."""

    def __init__(
        self, pubkey: bytes, address: str, outbound: bool, queue_max: int, writer: asyncio.StreamWriter
    ) -> None:
        self.pubkey = pubkey
        self.address = address
        self.outbound = outbound
        self.connected_at = time.time()
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = self.dropped_queue_full = 0
        self.close_reason: str | None = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(queue_max)
        self.queued_bytes = 0  # frame bodies in ``queue``
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.writer = writer

    def __repr__(self) -> str:
        return f"{self.pubkey.hex()[:12]}@{self.address}/{'out' if self.outbound else 'in'}"


class Transport:
    def __init__(
        self,
        *,
        chain_id: str,
        genesis_hash: bytes,
        key: KeyPair,
        allowed: Callable[[bytes], bool],
        config: P2PConfig,
        on_message: Callable[[Peer, list[Any]], None],
        on_connect: Callable[[Peer], None] | None = None,
        on_disconnect: Callable[[Peer, str], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.key = key
        self.allowed = allowed
        self.config = config
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.log = log or logging.getLogger(__name__)
        if (
            len(encode([_HELLO, PROTOCOL_VERSION, chain_id, genesis_hash, key.public, bytes(32)]))
            > HANDSHAKE_FRAME_BYTES_MAX
        ):
            raise ValueError("chain_id and genesis_hash too long for a HELLO")
        self.peers: dict[bytes, Peer] = {}
        self.listen_address: tuple[str, int] | None = None
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # inbound connections still in their handshake, oldest first
        self._pending_inbound: dict[asyncio.StreamWriter, None] = {}
        self._stopping = False

    @property
    def stats(self) -> dict[str, int]:
        return {**self._counts, "peers": len(self.peers), "inbound_pending": len(self._pending_inbound)}

    # Lifecycle

    async def start(self) -> None:
        """Bind the listener (if any) and start one dialer per configured address."""
        assert self._server is None and not self._tasks and not self._stopping, "start once"
        if self.config.listen is not None:
            host, port = self.config.listen
            self._server = await asyncio.start_server(self._accept, host, port)
            bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
            self.listen_address = (bound_host, bound_port)
            self.log.info("p2p listening on %s:%s", bound_host, bound_port)
        for host, port in self.config.peers:
            task = asyncio.create_task(self._dial_loop(host, port), name=f"p2p-dial-{host}:{port}")
            self._tasks.add(task)
            task.add_done_callback(self._dialer_done)

    def _dialer_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("dialer %s failed", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Close the listener and every connection, cancel the dialers. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers.values()):
            self._close_peer(peer, "stopping")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # Sending: never blocks, never raises

    def send(self, pubkey: bytes, message: list[Any]) -> bool:
        """Queue ``message`` for one peer; False (and dropped) if unknown, full or unsendable."""
        peer = self.peers.get(pubkey)
        if peer is None:
            self._count("dropped_no_peer")
            return False
        body = self._encode(message)
        return body is not None and self._enqueue(peer, body)

    def broadcast(self, message: list[Any], exclude: bytes | None = None) -> int:
        """Queue ``message`` for every peer but ``exclude``; how many accepted it."""
        body = self._encode(message)
        if body is None:
            return 0
        return sum(self._enqueue(peer, body) for key, peer in list(self.peers.items()) if key != exclude)

    def disconnect(self, pubkey: bytes, reason: str) -> None:
        """Drop a peer (the runtime found its payload malformed); no-op if not connected."""
        peer = self.peers.get(pubkey)
        if peer is not None:
            self.log.warning("disconnecting peer %s: %s", peer, reason)
            self._count("disconnects_requested")
            self._close_peer(peer, reason)

    def _encode(self, message: list[Any]) -> bytes | None:
        try:
            kind = message[0] if type(message) is list and message else None
            if not isinstance(kind, int) or isinstance(kind, bool) or kind not in _RUNTIME:
                raise EncodingError("encoding_type", "a message is [type, ...] with type TXS..EVIDENCE")
            body = encode(message if type(kind) is int else [int(kind), *message[1:]])  # an MSG member
            if len(body) > self.config.frame_bytes_max:
                raise EncodingError(
                    "encoding_too_large", f"{len(body)} bytes > {self.config.frame_bytes_max}"
                )
        except (EncodingError, TypeError) as exc:
            self.log.error("not sending an unsendable message: %s", exc)
            self._count("dropped_unsendable")
            return None
        return body

    def _enqueue(self, peer: Peer, body: bytes) -> bool:
        if peer.queue.full() or peer.queued_bytes + len(body) > self.config.queue_bytes_max:
            peer.dropped_queue_full += 1
            self._count("dropped_queue_full")
            self.log.debug("queue to %s full; dropped a message", peer)
            return False
        peer.queue.put_nowait(body)
        peer.queued_bytes += len(body)
        return True

    # Connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._stopping:
                writer.transport.abort()
                return
            if len(self._pending_inbound) >= self.config.inbound_pending_max:
                # Evict the oldest handshake, not the newest: an honest peer finishes in one round
                # trip, so connections that sit silent cannot keep it out
                oldest = next(iter(self._pending_inbound))
                del self._pending_inbound[oldest]
                oldest.transport.abort()
                self._count("inbound_evicted")
            await self._session(reader, writer, _peername(writer), outbound=False)
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio logs a server callback's cancellation as an error)
        finally:
            self._tasks.discard(task)

    async def _dial_loop(self, host: str, port: int) -> None:
        """Keep one connection to ``host:port``, redialing with exponential backoff and jitter."""
        address = f"{host}:{port}"
        delay = self.config.backoff_min_s
        known: bytes | None = None  # the key found at this address
        while not self._stopping:
            if known is not None and known in self.peers:
                await self.peers[known].closed.wait()  # already connected (it dialed us): wait
                continue
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.config.handshake_timeout_s):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError) as exc:
                self.log.debug("dialing %s failed: %s", address, exc)
                self._count("dials_failed")
            else:
                pubkey, reason = await self._session(reader, writer, address, outbound=True)
                known = pubkey or known
                if reason == "self_connection":
                    self.log.warning("%s is this node itself; no longer dialing it", address)
                    return
                if time.monotonic() - started >= self.config.stable_connection_s:
                    delay = self.config.backoff_min_s
            await asyncio.sleep(delay * random.uniform(1.0, 1.25))
            delay = min(delay * 2, self.config.backoff_max_s)

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str, *, outbound: bool
    ) -> tuple[bytes | None, str]:
        """Authenticate, register and serve one connection until it ends: (peer key, reason)."""
        _set_nodelay(writer)
        if not outbound:
            self._pending_inbound[writer] = None
        try:
            pubkey = await self._authenticate(reader, writer)
        except PeerError as exc:
            self._refused(address, outbound, exc)
            await _close(writer, abort=True)
            return None, exc.code
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            if not outbound:
                self._pending_inbound.pop(writer, None)
        self._count("handshakes_ok")
        peer = Peer(pubkey, address, outbound, self.config.queue_max, writer)
        existing = self.peers.get(pubkey)
        if existing is not None and not self._survives(peer, existing):
            self.log.info("closing duplicate connection %s; keeping %s", peer, existing)
            self._count("disconnects_duplicate")
            await _close(writer, abort=False)
            return pubkey, "duplicate"
        self.peers[pubkey] = peer
        peer.tasks = [
            asyncio.create_task(self._read_loop(peer, reader), name=f"p2p-read-{peer}"),
            asyncio.create_task(self._write_loop(peer, writer), name=f"p2p-write-{peer}"),
        ]
        if existing is not None:
            self.log.info("connection %s replaces duplicate %s", peer, existing)
            while not existing.queue.empty():
                if not self._enqueue(peer, self._dequeue(existing, existing.queue.get_nowait())):
                    break
            self._count("disconnects_duplicate")
            self._close_peer(existing, "duplicate")  # no longer registered: no on_disconnect
        else:
            self.log.info("peer %s connected", peer)
            self._call_handler(peer, "on_connect", self.on_connect, peer)
        try:
            await peer.closed.wait()
        finally:
            self._close_peer(peer, "stopping")
            await asyncio.gather(*peer.tasks, return_exceptions=True)
            self._release(peer)
            await _close(writer, abort=peer.close_reason not in _GRACEFUL)
        return pubkey, peer.close_reason or "stopping"

    def _release(self, peer: Peer) -> None:
        """Free a closed peer's unsent messages now: its tasks' frames refer to it, and that cycle
        (with up to ``queue_bytes_max`` in it) would otherwise wait for a full garbage collection."""
        peer.tasks = []
        while not peer.queue.empty():
            self._dequeue(peer, peer.queue.get_nowait())

    def _survives(self, new: Peer, old: Peer) -> bool:
        """Whether ``new`` replaces ``old`` (same key); both ends of the link choose alike."""
        if new.outbound == old.outbound:
            return True
        dialer_new = self.key.public if new.outbound else new.pubkey
        dialer_old = self.key.public if old.outbound else old.pubkey
        return dialer_new < dialer_old

    def _close_peer(self, peer: Peer, reason: str) -> None:
        """End a peer's connection (idempotent); ``on_disconnect`` if it was the registered one."""
        if peer.close_reason is not None:
            return
        peer.close_reason = reason
        current = asyncio.current_task()
        for task in peer.tasks:
            if task is not current:
                task.cancel()
        if reason in _GRACEFUL:
            peer.writer.close()
        else:
            peer.writer.transport.abort()
        peer.closed.set()
        if self.peers.get(peer.pubkey) is peer:
            del self.peers[peer.pubkey]
            self._count("disconnects")
            self.log.info("peer %s disconnected: %s", peer, reason)
            if self.on_disconnect is not None:
                try:
                    self.on_disconnect(peer, reason)
                except Exception:
                    self.log.exception("on_disconnect failed for peer %s", peer)

    def _call_handler(self, peer: Peer, name: str, handler: Callable[..., None] | None, *args: Any) -> bool:
        """Run a runtime callback; if it raises, log the traceback and drop the peer."""
        if handler is None:
            return True
        try:
            handler(*args)
        except Exception:
            self.log.exception("%s handler failed for peer %s; disconnecting it", name, peer)
            self._count("disconnects_handler_error")
            self._close_peer(peer, "handler_error")
            return False
        return True

    def _refused(self, address: str, outbound: bool, exc: PeerError) -> None:
        self._count("handshakes_refused")
        self._count(f"refused_{exc.code}")
        if isinstance(exc, Garbage):
            self._count("disconnects_garbage")
        level = logging.INFO if exc.code == "handshake_closed" else logging.WARNING
        direction = "to" if outbound else "from"
        self.log.log(level, "handshake %s %s refused (%s): %s", direction, address, exc.code, exc.message)

    def _count(self, name: str, n: int = 1) -> None:
        self._counts[name] = self._counts.get(name, 0) + n

    # Handshake

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        """The peer's proven key; raise PeerError (a refusal code) otherwise."""
        try:
            async with asyncio.timeout(self.config.handshake_timeout_s):
                return await self._handshake(reader, writer)
        except TimeoutError as exc:
            raise PeerError(
                "handshake_timeout", f"no handshake in {self.config.handshake_timeout_s}s"
            ) from exc
        except (asyncio.IncompleteReadError, OSError) as exc:
            raise PeerError("handshake_closed", f"connection ended in the handshake: {exc!r}") from exc
        except PeerError:
            raise
        except Exception as exc:  # a bug, say in the allow-list callback: log it, end this connection only
            self.log.exception("handshake failed unexpectedly")
            raise PeerError("handshake_error", repr(exc)) from exc

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        me = self.key.public
        challenge = os.urandom(CHALLENGE_BYTES)
        hello = [_HELLO, PROTOCOL_VERSION, self.chain_id, self.genesis_hash, me, challenge]
        await self._write_now(writer, encode(hello))
        peer_key, peer_challenge = self._check_hello(
            await self._read_message(reader, HANDSHAKE_FRAME_BYTES_MAX)
        )
        signature = self.key.sign(auth_digest(self.chain_id, self.genesis_hash, peer_challenge, me, peer_key))
        await self._write_now(writer, encode([_AUTH, signature]))
        auth = await self._read_message(reader, HANDSHAKE_FRAME_BYTES_MAX)
        if len(auth) != 2 or auth[0] != _AUTH or type(auth[1]) is not bytes:
            raise PeerError("bad_auth", f"expected [AUTH, signature] from {peer_key.hex()}")
        expected = auth_digest(self.chain_id, self.genesis_hash, challenge, peer_key, me)
        if not verify_signature(peer_key, auth[1], expected):
            raise PeerError("bad_auth", f"the signature does not prove key {peer_key.hex()}")
        return peer_key

    def _check_hello(self, hello: list[Any]) -> tuple[bytes, bytes]:
        """(peer key, peer challenge) of an acceptable HELLO; raise PeerError otherwise."""
        if len(hello) != 6 or hello[0] != _HELLO:
            raise PeerError(
                "bad_hello", "expected [HELLO, version, chain_id, genesis_hash, pubkey, challenge]"
            )
        _, version, chain_id, genesis_hash, pubkey, challenge = hello
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise PeerError("wrong_version", f"expected protocol {PROTOCOL_VERSION}, found {version!r}")
        if chain_id != self.chain_id or genesis_hash != self.genesis_hash:
            raise PeerError(
                "wrong_chain",
                f"expected {self.chain_id!r}/{self.genesis_hash.hex()}, found {chain_id!r}/{_hex(genesis_hash)}",
            )
        for value in (pubkey, challenge):
            if type(value) is not bytes or len(value) != PUBKEY_BYTES:
                raise PeerError("bad_hello", "pubkey and challenge are 32 bytes each")
        if pubkey == self.key.public:
            raise PeerError("self_connection", "the peer has this node's own key")
        if not self.allowed(pubkey):
            raise PeerError("not_allowed", f"key {pubkey.hex()} is not on the allow-list")
        return pubkey, challenge

    # Framing

    async def _read_message(
        self, reader: asyncio.StreamReader, bytes_max: int, peer: Peer | None = None
    ) -> list[Any]:
        size = int.from_bytes(await reader.readexactly(HEADER_BYTES), "big")
        if size == 0 or size > bytes_max:
            raise Garbage("frame_size", f"frame length {size} outside 1..{bytes_max}")
        message = parse_message(await reader.readexactly(size), bytes_max)
        self._count("frames_in")
        self._count("bytes_in", HEADER_BYTES + size)
        if peer is not None:
            peer.frames_in += 1
            peer.bytes_in += HEADER_BYTES + size
        return message

    def _write_frame(self, writer: asyncio.StreamWriter, body: bytes, peer: Peer | None = None) -> int:
        writer.write(len(body).to_bytes(HEADER_BYTES, "big") + body)
        self._count("frames_out")
        self._count("bytes_out", HEADER_BYTES + len(body))
        if peer is not None:
            peer.frames_out += 1
            peer.bytes_out += HEADER_BYTES + len(body)
        return HEADER_BYTES + len(body)

    async def _write_now(self, writer: asyncio.StreamWriter, body: bytes) -> None:
        self._write_frame(writer, body)
        await writer.drain()

    async def _read_loop(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        """Deliver the peer's messages until it closes, misbehaves or a handler raises."""
        try:
            while peer.close_reason is None:
                async with asyncio.timeout(self.config.idle_timeout_s):
                    message = await self._read_message(reader, self.config.frame_bytes_max, peer)
                if message[0] not in _RUNTIME:
                    raise Garbage("unexpected_handshake", "HELLO or AUTH after the handshake")
                if not self._call_handler(peer, "on_message", self.on_message, peer, message):
                    return
                # readexactly does not yield while frames are buffered: without this, a peer
                # that sends many cheap requests at once would hold the loop for all of them
                await asyncio.sleep(0)
        except Garbage as exc:
            self.log.warning("peer %s sent garbage (%s): %s", peer, exc.code, exc.message)
            self._count("disconnects_garbage")
            self._close_peer(peer, exc.code)
        except asyncio.IncompleteReadError:
            self._close_peer(peer, "closed")
        except TimeoutError:
            self.log.info("peer %s silent for %.0f s; dropping it", peer, self.config.idle_timeout_s)
            self._count("disconnects_idle")
            self._close_peer(peer, "idle_timeout")
        except OSError as exc:
            self.log.info("connection to peer %s lost: %r", peer, exc)
            self._close_peer(peer, "connection_lost")
        except Exception:
            self.log.exception("reading from peer %s failed", peer)
            self._close_peer(peer, "read_error")

    async def _write_loop(self, peer: Peer, writer: asyncio.StreamWriter) -> None:
        """Write queued frames, a batch at a time, waiting on the socket between batches."""
        try:
            while True:
                batch = self._write_frame(writer, self._dequeue(peer, await peer.queue.get()), peer)
                while batch < WRITE_BATCH_BYTES and not peer.queue.empty():
                    batch += self._write_frame(writer, self._dequeue(peer, peer.queue.get_nowait()), peer)
                await writer.drain()
        except OSError as exc:
            self.log.info("writing to peer %s failed: %r", peer, exc)
            self._close_peer(peer, "connection_lost")

    @staticmethod
    def _dequeue(peer: Peer, body: bytes) -> bytes:
        peer.queued_bytes -= len(body)
        return body


def _set_nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _close(writer: asyncio.StreamWriter, *, abort: bool) -> None:
    """Close the socket: politely (flushing what is buffered, for at most CLOSE_GRACE_S) or at once."""
    try:
        if not abort:
            writer.close()
            with contextlib.suppress(TimeoutError, OSError):
                async with asyncio.timeout(CLOSE_GRACE_S):
                    await writer.wait_closed()
    finally:
        writer.transport.abort()  # a no-op once the polite close is done


def _peername(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)


def _hex(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else repr(value)
