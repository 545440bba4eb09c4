"""Hostile peers against a running node (issue 8): malformed, truncated, oversized and replayed
p2p frames, unknown peers, stalls mid-frame and bounded floods.

Why a real process: what matters is what the node does with the bytes on its socket (close,
ignore, answer) and whether it stays live, keeps its memory and file descriptors bounded, and
keeps every block it committed. So one ``clearchain node run`` process (a single validator with
a quick heartbeat, so it commits every ~0.1 s) serves the module, and each test dials its p2p
port with the hand-written blocking client below, speaking the documented bytes of node/p2p.py.
After every test the ``healthy`` fixture checks that the process is alive, its height still
rises and the blocks it held before are unchanged.

The two observer keys of the network are on the node's allow-list: the client uses them to get
past the handshake, exactly as a compromised or buggy observer would.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from chain.certificate import PRECOMMIT, PREVOTE
from chain.encoding import decode, encode
from chain.errors import EncodingError
from chain.keys import KeyPair, read_key_file, verify_signature
from chain.limits import ENCODED_BYTES_MAX
from cli.localnet.network import init_network
from cli.localnet.process import NodeProcess, rss_kib, wait_until
from cli.trade_dates import today
from node.config import ConsensusSection
from node.p2p import HANDSHAKE_FRAME_BYTES_MAX, MSG, PROTOCOL_VERSION, P2PConfig, auth_digest
from tests.netutil import TxMaker

DAY = today()  # the trade date of this module's tickets: the nodes' clock is the wall clock

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

CONSENSUS = ConsensusSection(commit_wait_ms=10, heartbeat_ms=100)  # a block every ~0.1 s, idle or not
FRAME_BYTES_MAX = ENCODED_BYTES_MAX  # the node's p2p.frame_bytes_max (the default)
QUEUE_BYTES_MAX = P2PConfig().queue_bytes_max  # what the node may queue for one peer (the default)
HANDSHAKE_TIMEOUT_S = 5.0  # the transport's default, which the node uses
INBOUND_PENDING_MAX = 64  # likewise
CLOSE_WITHIN_S = 2.0  # a refusal or a garbage frame ends the connection at once; this is slack
HEALTH_TIMEOUT_S = 10.0
HOSTILE = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])

TXS, PROPOSAL, VOTE, STATUS = int(MSG.TXS), int(MSG.PROPOSAL), int(MSG.VOTE), int(MSG.STATUS)
GET_BLOCKS, BLOCKS, EVIDENCE = int(MSG.GET_BLOCKS), int(MSG.BLOCKS), int(MSG.EVIDENCE)
PROBE = [GET_BLOCKS, 1, 1]  # any connected peer gets [BLOCKS, [[block 1, certificate]]] back


# --- the node under attack -----------------------------------------------------------------------


@dataclass
class Target:
    """The running node and what a peer needs to know to talk to it."""

    proc: NodeProcess
    address: tuple[str, int]
    chain_id: str
    genesis_hash: bytes
    node_key: bytes
    observers: list[KeyPair]
    checkpoints: dict[int, str] = field(default_factory=dict)  # height -> block hash seen earlier

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def rss_kib(self) -> int:
        kib = rss_kib(self.pid)
        assert kib is not None, "no VmRSS"
        return kib

    def sockets(self) -> int:
        """Open sockets of the node process (listeners, peers, API clients)."""
        fd_dir = Path(f"/proc/{self.pid}/fd")
        count = 0
        for fd in fd_dir.iterdir():
            try:
                count += os.readlink(fd).startswith("socket:")
            except OSError:
                pass  # closed while we looked
        return count

    def log_size(self) -> int:
        return (self.proc.home / "node.log").stat().st_size

    def log_since(self, offset: int) -> str:
        """What the node has logged since ``offset`` (a ``log_size``): it names every refusal."""
        with open(self.proc.home / "node.log", "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def block_hash(self, height: int) -> str:
        return str(self.proc.get(f"/blocks/{height}")["hash"])

    def assert_healthy(self) -> None:
        """Alive, still committing, and every block seen before is the same block."""
        assert self.proc.alive(), self.proc.log_tail()
        start = self.proc.height()
        assert start >= 0, "the API does not answer\n" + self.proc.log_tail()
        wait_until(lambda: self.proc.height() > start, HEALTH_TIMEOUT_S, "a new block", [self.proc])
        for height, block_hash in sorted(self.checkpoints.items()):
            assert self.block_hash(height) == block_hash, f"block {height} changed"
        self.checkpoints[start] = self.block_hash(start)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    net_dir = tmp_path_factory.mktemp("hostile")
    network = init_network(net_dir, validators=1, observers=2, base_port=0, consensus=CONSENSUS)
    proc = NodeProcess(net_dir, network["nodes"][0])
    proc.start()
    try:
        wait_until(lambda: proc.height() >= 2, 30, "node0 to commit", [proc])
        host, port = network["nodes"][0]["p2p"].rsplit(":", 1)
        target = Target(
            proc=proc,
            address=(host, int(port)),
            chain_id=network["chain_id"],
            genesis_hash=bytes.fromhex(proc.get("/blocks/0")["hash"]),
            node_key=bytes.fromhex(network["nodes"][0]["node_key"]),
            observers=[read_key_file(net_dir / f"observer{j}" / "node_key") for j in range(2)],
        )
        target.checkpoints[1] = target.block_hash(1)
        rss_start = target.rss_kib()
        yield target
        # after every attack of the module (~10,000 connections, 100 MiB of near-maximal frames)
        assert target.rss_kib() - rss_start < 64 * 1024, "the node kept what hostile peers sent"
    finally:
        if proc.terminate() is None and proc.alive():
            proc.kill9()


@pytest.fixture(autouse=True)
def healthy(target: Target) -> Iterator[None]:
    target.assert_healthy()
    yield
    target.assert_healthy()


# --- a hand-written peer -------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def message(value: list[Any]) -> bytes:
    """One frame carrying ``value`` in the canonical encoding."""
    return frame(encode(value))


class Wire:
    """A blocking TCP client of the node's p2p port. ``None`` from a read means the node closed."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock = socket.create_connection(target.address, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.received: list[list[Any]] = []  # every message read so far, in order

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """False if the node has already closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _exactly(self, n: int, deadline: float) -> bytes | None:
        data = b""
        while len(data) < n:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionResetError:
                return None
            except TimeoutError:
                raise TimeoutError(f"no byte from the node in time ({len(data)}/{n} read)") from None
            if not chunk:
                return None
            data += chunk
        return data

    def read(self, within_s: float = CLOSE_WITHIN_S) -> list[Any] | None:
        """The node's next message, or None once it has closed the connection."""
        deadline = time.monotonic() + within_s
        header = self._exactly(4, deadline)
        if header is None:
            return None
        body = self._exactly(int.from_bytes(header, "big"), deadline)
        if body is None:
            return None
        value = decode(body)
        assert type(value) is list and value, f"the node sent {value!r}"
        self.received.append(value)
        return value

    def closed_by_node(self, within_s: float = CLOSE_WITHIN_S) -> bool:
        """Read (and keep) what the node sends until it closes; False if it is still open then."""
        deadline = time.monotonic() + within_s
        try:
            while self.read(deadline - time.monotonic()) is not None:
                pass
        except TimeoutError:
            return False
        return True

    def outcome(self, within_s: float = CLOSE_WITHIN_S) -> str:
        """``closed`` if the node has dropped us, ``served`` if it still answers a block request
        (within ``within_s``: the node answers in order, after everything sent before)."""
        if not self.send(message(PROBE)):
            return "closed"
        deadline = time.monotonic() + within_s
        while True:
            reply = self.read(deadline - time.monotonic())
            if reply is None:
                return "closed"
            if reply[0] == BLOCKS:
                return "served"

    # the handshake, as node/p2p.py documents it

    def hello(
        self,
        key: KeyPair,
        *,
        chain_id: str | None = None,
        genesis_hash: bytes | None = None,
        version: int = PROTOCOL_VERSION,
        challenge: bytes | None = None,
    ) -> bytes:
        """Send our HELLO, read the node's; returns the node's challenge."""
        self.challenge = challenge or os.urandom(32)
        t = self.target
        self.send(
            message(
                [
                    int(MSG.HELLO),
                    version,
                    chain_id or t.chain_id,
                    genesis_hash or t.genesis_hash,
                    key.public,
                    self.challenge,
                ]
            )
        )
        theirs = self.read()
        assert theirs is not None, "the node closed before its HELLO"
        assert theirs[:5] == [int(MSG.HELLO), PROTOCOL_VERSION, t.chain_id, t.genesis_hash, t.node_key], (
            theirs
        )
        assert type(theirs[5]) is bytes and len(theirs[5]) == 32
        return bytes(theirs[5])

    def auth_for(self, key: KeyPair, node_challenge: bytes) -> bytes:
        t = self.target
        return key.sign(auth_digest(t.chain_id, t.genesis_hash, node_challenge, key.public, t.node_key))

    def handshake(self, key: KeyPair) -> None:
        """Complete the handshake as ``key`` (keeping the AUTH signature we sent)."""
        self.handshake_signature = signature = self.auth_for(key, self.hello(key))
        self.send(message([int(MSG.AUTH), signature]))
        kind, theirs = self.read() or [None, None]
        assert kind == int(MSG.AUTH), "the node refused a correct handshake"
        t = self.target
        expected = auth_digest(t.chain_id, t.genesis_hash, self.challenge, t.node_key, key.public)
        assert verify_signature(t.node_key, theirs, expected)


def authenticated(target: Target, observer: int = 0) -> Wire:
    wire = Wire(target)
    wire.handshake(target.observers[observer])
    return wire


def refusal_logged(target: Target, offset: int, code: str | None) -> bool:
    """The node logged a refused handshake (with ``code``, if given) after ``offset``."""
    return (
        f"refused ({code})" in target.log_since(offset) if code else "refused (" in target.log_since(offset)
    )


# --- 1. before the handshake ---------------------------------------------------------------------


def expected_refusal(data: bytes, bytes_max: int = HANDSHAKE_FRAME_BYTES_MAX) -> str | None:
    """The code the documented framing gives ``data`` as the next frame: ``handshake_closed`` if
    it is incomplete, a garbage code, or None for a well-framed message of a known type."""
    if len(data) < 4:
        return "handshake_closed"
    size = int.from_bytes(data[:4], "big")
    if size == 0 or size > bytes_max:
        return "frame_size"
    if len(data) < 4 + size:
        return "handshake_closed"
    try:
        value = decode(data[4 : 4 + size], max_bytes=bytes_max)
    except EncodingError:
        return "frame_malformed"
    if type(value) is not list or not value:
        return "frame_malformed"
    if type(value[0]) is not int or value[0] not in {int(m) for m in MSG}:
        return "unknown_type"
    return None


def observer_hello(target: Target) -> bytes:
    key = target.observers[1]
    return message(
        [int(MSG.HELLO), PROTOCOL_VERSION, target.chain_id, target.genesis_hash, key.public, bytes(32)]
    )


@st.composite
def pre_handshake_bytes(draw: st.DrawFn, hello: bytes) -> bytes:
    """Random bytes, a truncated HELLO, a HELLO under a wrong length, an oversized or zero length."""
    body = hello[4:]
    kind = draw(st.sampled_from(["random", "truncated", "wrong_length", "oversized", "zero"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=1500))
    if kind == "truncated":
        return hello[: draw(st.integers(1, len(hello) - 1))]
    if kind == "wrong_length":
        size = draw(st.integers(1, HANDSHAKE_FRAME_BYTES_MAX).filter(lambda n: n != len(body)))
        return size.to_bytes(4, "big") + body + draw(st.binary(max_size=8))
    if kind == "oversized":
        return draw(st.integers(HANDSHAKE_FRAME_BYTES_MAX + 1, 2**32 - 1)).to_bytes(4, "big") + body
    return bytes(4) + body


@settings(HOSTILE, max_examples=60)
@given(data=st.data())
def test_garbage_before_the_handshake_is_refused_with_its_reason(target: Target, data: st.DataObject) -> None:
    raw = data.draw(pre_handshake_bytes(observer_hello(target)))
    code = expected_refusal(raw)
    offset = target.log_size()
    with Wire(target) as wire:
        wire.send(raw)
        if code == "handshake_closed":
            wire.sock.shutdown(socket.SHUT_WR)  # the node is waiting for the rest: end it
        assert wire.closed_by_node(), f"the node kept a connection that sent {raw[:40]!r}"
        assert [m[0] for m in wire.received] in ([], [int(MSG.HELLO)]), "the node sent more than its HELLO"
    assert refusal_logged(target, offset, code), f"no refusal ({code}) logged for {raw[:40]!r}"
    assert target.proc.alive()


# --- 2 and 3. unknown peers, other chains, replayed proofs ---------------------------------------


@pytest.mark.parametrize(
    "case, code",
    [
        ("unknown_key", "not_allowed"),
        ("wrong_chain_id", "wrong_chain"),
        ("wrong_genesis", "wrong_chain"),
        ("wrong_version", "wrong_version"),
        ("reflected_node_key", "self_connection"),
    ],
)
def test_a_peer_that_is_not_one_of_ours_is_refused_after_hello(target: Target, case: str, code: str) -> None:
    observer = target.observers[0]
    offset = target.log_size()
    with Wire(target) as wire:
        if case == "unknown_key":
            stranger = KeyPair.generate()
            node_challenge = wire.hello(stranger)
            wire.send(message([int(MSG.AUTH), wire.auth_for(stranger, node_challenge)]))  # a valid proof
        elif case == "wrong_chain_id":
            wire.hello(observer, chain_id=target.chain_id + "-fork")
        elif case == "wrong_genesis":
            wire.hello(observer, genesis_hash=hashlib.sha256(b"another genesis").digest())
        elif case == "wrong_version":
            wire.hello(observer, version=PROTOCOL_VERSION + 1)
        else:  # the node's own HELLO, sent back to it
            wire.send(
                message(
                    [
                        int(MSG.HELLO),
                        PROTOCOL_VERSION,
                        target.chain_id,
                        target.genesis_hash,
                        target.node_key,
                        os.urandom(32),
                    ]
                )
            )
        assert wire.closed_by_node()
        assert int(MSG.AUTH) not in [m[0] for m in wire.received], "the node proved its key to a stranger"
    assert refusal_logged(target, offset, code)


def test_an_auth_signature_replayed_in_a_new_session_is_refused(target: Target) -> None:
    observer = target.observers[0]
    with authenticated(target) as first:
        replayed = first.handshake_signature
        assert first.outcome() == "served"
    offset = target.log_size()
    with Wire(target) as second:
        # even with our own challenge repeated, the node's challenge is new
        second.hello(observer, challenge=first.challenge)
        second.send(message([int(MSG.AUTH), replayed]))
        assert second.closed_by_node()
    assert refusal_logged(target, offset, "bad_auth")


# --- 4. after the handshake ----------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """Bytes an authenticated peer sends, and what the node must do with them."""

    data: bytes
    expect: str  # "closed" (the node drops us), "served" (it ignores or answers it) or "either"
    reason: str | None = None  # the reason the node's log gives when it drops us
    hang_up: bool = False  # a truncated frame: we end the connection mid-frame


U63 = st.integers(0, 2**63 - 1)
NOT_U63 = st.one_of(
    st.integers(-(2**63), -1),
    st.integers(2**63, 2**64 - 1),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=2),
)
ROUND = st.integers(0, 2**31 - 1)
KEY, SIG = st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64)
NOT_KEY = st.one_of(st.binary(max_size=40).filter(lambda b: len(b) != 32), st.text(max_size=3), st.none())
NOT_SIG = st.one_of(st.binary(max_size=70).filter(lambda b: len(b) != 64), st.integers(0, 9), st.none())
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=8)
)
# what canonical msgpack holds
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=10)
ANY_MSGPACK = st.recursive(  # and what it does not: maps, floats
    SCALARS | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=10,
)


def closed(value: list[Any], reason: str) -> Hostile:
    return Hostile(message(value), "closed", reason)


def served(value: list[Any]) -> Hostile:
    return Hostile(message(value), "served")


@st.composite
def proposal_wire(draw: st.DrawFn) -> list[Any]:
    """A well-formed proposal whose signature and block are junk (no validator signed it)."""
    round_ = draw(ROUND)
    pol = draw(st.integers(-1, round_ - 1))
    return [draw(U63), round_, draw(KEY), pol, draw(KEY), draw(SIG), draw(st.binary(max_size=200))]


@st.composite
def vote_wire(draw: st.DrawFn) -> list[Any]:
    block_hash = draw(st.sampled_from([b"", bytes(32)]) | KEY)
    return [
        draw(st.sampled_from([PREVOTE, PRECOMMIT])),
        draw(U63),
        draw(ROUND),
        block_hash,
        draw(KEY),
        draw(SIG),
    ]


BAD_PROPOSAL_FIELD = {  # index in the wire form -> values that field may not hold
    0: NOT_U63,
    1: NOT_U63 | st.integers(2**31, 2**63 - 1),
    2: NOT_KEY,
    3: st.integers(-(2**40), -2) | NOT_U63,
    4: NOT_KEY,
    5: NOT_SIG,
}
BAD_VOTE_FIELD = {
    0: st.integers(-5, 9).filter(lambda t: t not in (PREVOTE, PRECOMMIT)) | st.booleans() | st.none(),
    1: NOT_U63,
    2: NOT_U63 | st.integers(2**31, 2**63 - 1),
    3: st.binary(min_size=1, max_size=31) | st.text(max_size=2),
    4: NOT_KEY,
    5: NOT_SIG,
}


@st.composite
def corrupted(draw: st.DrawFn, wire: st.SearchStrategy[list[Any]], bad: dict[int, Any]) -> Any:
    """A consensus message's wire form with one field of the wrong type or range, or the wrong arity."""
    value = draw(wire)
    how = draw(st.sampled_from(["field", "short", "long", "not_a_list"]))
    if how == "field":
        index = draw(st.sampled_from(sorted(bad)))
        value[index] = draw(bad[index])
    elif how == "short":
        value = value[: draw(st.integers(0, len(value) - 1))]
    elif how == "long":
        value = [*value, draw(VALUES)]
    else:
        value = draw(st.binary(max_size=8) | st.integers(-(2**63), 2**64 - 1) | st.none())
    return value


def random_value_case(value: Any) -> Hostile:
    """Any msgpack value: the node drops us for everything but a runtime message it may accept."""
    data = frame(msgpack.packb(value, use_bin_type=True))
    code = expected_refusal(data, FRAME_BYTES_MAX)
    if code is not None:
        return Hostile(data, "closed", code)
    if value[0] in (int(MSG.HELLO), int(MSG.AUTH)):
        return Hostile(data, "closed", "unexpected_handshake")
    return Hostile(data, "either")


def hostile_frames() -> st.SearchStrategy[Hostile]:
    """Each kind of hostile frame, the kinds drawn alike (a flat one_of favours the later ones)."""
    any_list = st.lists(ANY_MSGPACK, max_size=4)
    blocks_item = st.tuples(st.binary(max_size=300), VALUES).map(list)
    framing = st.one_of(
        st.integers(FRAME_BYTES_MAX + 1, 2**32 - 1).map(
            lambda n: Hostile(n.to_bytes(4, "big") + b"\x90", "closed", "frame_size")
        ),
        st.just(Hostile(bytes(4), "closed", "frame_size")),
        st.tuples(
            st.integers(-(2**63), 2**64 - 1).filter(lambda t: t not in range(len(MSG))),
            st.lists(VALUES, max_size=3),
        ).map(lambda t: closed([t[0], *t[1]], "unknown_type")),
        st.binary(min_size=1, max_size=200)
        .filter(lambda b: expected_refusal(frame(b)) == "frame_malformed")
        .map(lambda b: Hostile(frame(b), "closed", "frame_malformed")),
        st.integers(2, 4000).flatmap(  # a header, then fewer bytes than it says, then we hang up
            lambda n: st.binary(max_size=n - 1).map(
                lambda b: Hostile(n.to_bytes(4, "big") + b, "closed", hang_up=True)
            )
        ),
    )
    any_value = st.one_of(ANY_MSGPACK, st.tuples(st.integers(0, 12), any_list).map(lambda t: [t[0], *t[1]]))
    # TXS: a batch is a list of at most 500 encoded transactions
    txs = st.one_of(
        st.tuples(
            SCALARS.filter(lambda v: type(v) is not bytes) | st.lists(VALUES, max_size=3),
            st.lists(st.binary(max_size=50), max_size=3),
        ).map(lambda t: closed([TXS, [t[0], *t[1]]], "bad_tx_batch")),
        st.just(closed([TXS, [b""] * 501], "bad_tx_batch")),
        SCALARS.map(lambda v: closed([TXS, v], "bad_tx_batch")),
        st.lists(st.binary(max_size=120), min_size=1, max_size=5).map(
            lambda b: closed([TXS, b], "malformed_tx")
        ),
        st.just(served([TXS, []])),
    )
    # PROPOSAL and VOTE: junk in a field is a misbehaving peer; a well-formed one no validator signed is ignored
    consensus = st.one_of(
        corrupted(proposal_wire(), BAD_PROPOSAL_FIELD).map(
            lambda w: closed([PROPOSAL, w], "bad_consensus_message")
        ),
        corrupted(vote_wire(), BAD_VOTE_FIELD).map(lambda w: closed([VOTE, w], "bad_consensus_message")),
        proposal_wire().map(lambda w: served([PROPOSAL, w])),
        vote_wire().map(lambda w: served([VOTE, w])),
    )
    # STATUS [height, round, step], each an unsigned 63-bit integer
    status = st.one_of(
        st.tuples(U63, U63, U63).map(lambda t: served([STATUS, *t])),
        st.tuples(st.lists(U63, min_size=3, max_size=3), st.integers(0, 2), NOT_U63).map(
            lambda t: closed([STATUS, *t[0][: t[1]], t[2], *t[0][t[1] + 1 :]], "bad_status")
        ),
        st.lists(U63, max_size=6)
        .filter(lambda v: len(v) != 3)
        .map(lambda v: closed([STATUS, *v], "bad_status")),
    )
    # GET_BLOCKS [from, to]: any range 1 <= from <= to is served (clipped), anything else is not
    get_blocks = st.one_of(
        st.tuples(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1)).map(
            lambda t: served([GET_BLOCKS, min(t), max(t)])
        ),
        st.tuples(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1))
        .filter(lambda t: t[0] != t[1])
        .map(lambda t: closed([GET_BLOCKS, max(t), min(t)], "bad_get_blocks")),
        st.tuples(NOT_U63, U63).map(lambda t: closed([GET_BLOCKS, *t], "bad_get_blocks")),
        st.tuples(U63, NOT_U63).map(lambda t: closed([GET_BLOCKS, *t], "bad_get_blocks")),
        U63.map(lambda n: closed([GET_BLOCKS, 0, n], "bad_get_blocks")),
    )
    # BLOCKS [[block, certificate], ...]
    blocks = st.one_of(
        st.just(served([BLOCKS, []])),
        st.lists(blocks_item, min_size=1, max_size=3).map(
            lambda items: closed([BLOCKS, items], "bad_sync_block")
        ),
        SCALARS.map(lambda v: closed([BLOCKS, v], "bad_blocks")),
        st.lists(VALUES.filter(lambda v: not (type(v) is list and len(v) == 2)), min_size=1, max_size=3).map(
            lambda items: closed([BLOCKS, items], "bad_blocks")
        ),
        st.just(closed([BLOCKS, [[b"", b""]] * 65], "bad_blocks")),
    )
    # EVIDENCE [vote, vote]: junk, or votes no validator signed
    evidence = st.one_of(
        st.tuples(VALUES, VALUES).map(lambda t: closed([EVIDENCE, *t], "bad_evidence")),
        st.tuples(vote_wire(), vote_wire()).map(lambda t: closed([EVIDENCE, *t], "bad_evidence")),
    )
    kinds = [framing, any_value.map(random_value_case), txs, consensus, status, get_blocks, blocks, evidence]
    return st.sampled_from(kinds).flatmap(lambda kind: kind)


@settings(HOSTILE, max_examples=300)
@given(case=hostile_frames())
# The CI profile once drew a non-list field beyond msgpack's integers (the test's own encoder
# refused it); the strategy now stops at msgpack's bounds, kept here as explicit examples.
@example(case=closed([PROPOSAL, 2**64 - 1], "bad_consensus_message"))
@example(case=closed([VOTE, -(2**63)], "bad_consensus_message"))
def test_hostile_frames_after_the_handshake_are_dropped_or_ignored(target: Target, case: Hostile) -> None:
    offset = target.log_size()
    with authenticated(target) as wire:
        wire.send(case.data)
        if case.hang_up:
            wire.sock.shutdown(socket.SHUT_WR)
            outcome = "closed" if wire.closed_by_node() else "open"
        else:
            outcome = wire.outcome()
    event(f"{outcome}: {case.reason}")
    assert outcome == case.expect or (case.expect == "either" and outcome in ("closed", "served")), (
        f"{outcome} after {case.data[:60]!r}\n" + target.log_since(offset)[-2000:]
    )
    if outcome == "closed" and case.reason is not None:
        wait_until(
            lambda: case.reason in target.log_since(offset), 2.0, f"the reason {case.reason} in the log"
        )
    assert "Traceback" not in target.log_since(offset), target.log_since(offset)
    assert target.proc.alive()


def test_replayed_frames_are_harmless_and_a_replayed_batch_commits_once(target: Target) -> None:
    stx = TxMaker(target.chain_id).tx(
        "xchg-alpha", "settlement", "settle", ["HOSTILE-1", "A-C001", "B-C001", "ACME", 1, 180_00, DAY]
    )
    batch = message([TXS, [stx.encode()]])
    first_height = target.proc.height()
    with authenticated(target) as wire:
        deadline = time.monotonic() + 5
        while not {STATUS, PROPOSAL, VOTE} <= {m[0] for m in wire.received} and time.monotonic() < deadline:
            wire.read()
        own = [m for m in wire.received if m[0] in (STATUS, PROPOSAL, VOTE)]
        assert {STATUS, PROPOSAL, VOTE} <= {m[0] for m in own}, "the node sent none of its consensus messages"
        wire.send(batch + batch + b"".join(message(m) for m in own) * 2)
        assert wire.outcome() == "served"
    wait_until(
        lambda: target.proc.get(f"/txs/{stx.hash.hex()}")["status"] == "committed", 10, "the transaction"
    )
    committed = target.proc.get(f"/txs/{stx.hash.hex()}")
    with authenticated(target, 1) as wire:  # the same batch again after its commit, from another peer
        wire.send(batch)
        assert wire.outcome() == "served"
    target.assert_healthy()
    assert target.proc.get(f"/txs/{stx.hash.hex()}") == committed
    assert committed_txs(target, first_height, target.proc.height()) == 1


def committed_txs(target: Target, start: int, end: int) -> int:
    """How many transactions the blocks ``start..end`` hold."""
    total = 0
    while start <= end:
        page = target.proc.get(f"/blocks?from={start}&to={end}")
        total += sum(b["txs"] for b in page["blocks"])
        start = page["blocks"][-1]["height"] + 1
    return total


# --- 5. stalls -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_peers_that_stall_mid_frame_do_not_stop_the_node(target: Target) -> None:
    offset, start = target.log_size(), target.proc.height()
    hello = observer_hello(target)
    began = time.monotonic()
    before = Wire(target)  # a header and half a HELLO, then nothing
    after = authenticated(target)  # a header that says 1,000 bytes, then 10 of them, then nothing
    try:
        before.send(hello[: len(hello) // 2])
        after.send((1000).to_bytes(4, "big") + bytes(10))
        assert before.closed_by_node(HANDSHAKE_TIMEOUT_S + 3), "a stalled handshake was never closed"
        took = time.monotonic() - began
        assert HANDSHAKE_TIMEOUT_S - 0.5 <= took <= HANDSHAKE_TIMEOUT_S + 3, took
        assert refusal_logged(target, offset, "handshake_timeout")
        assert target.proc.height() >= start + 10, "the node stopped committing while peers stalled"
        with authenticated(target, 1) as other:  # another peer is served meanwhile
            assert other.outcome() == "served"
        # and the stalled key reconnects, replacing its stalled connection
        with authenticated(target) as again:
            assert again.outcome() == "served"
            assert after.closed_by_node()
    finally:
        before.close()
        after.close()


# --- 6. bounded floods ---------------------------------------------------------------------------


def still_open(socks: list[socket.socket], within_s: float, at_most: int = 0) -> list[socket.socket]:
    """Those of ``socks`` the node has not closed after ``within_s``, or as soon as no more than
    ``at_most`` are left open (what the node sends on them is discarded)."""
    open_ = set(socks)
    deadline = time.monotonic() + within_s
    while len(open_) > at_most and time.monotonic() < deadline:
        readable, _, _ = select.select(list(open_), [], [], max(deadline - time.monotonic(), 0))
        for sock in readable:
            try:
                if not sock.recv(65536):
                    open_.discard(sock)
            except ConnectionResetError:
                open_.discard(sock)
    return [s for s in socks if s in open_]


@pytest.mark.slow
def test_a_flood_of_silent_connections_is_bounded_and_cleaned_up(target: Target) -> None:
    sockets_before, rss_before = target.sockets(), target.rss_kib()
    offset, start = target.log_size(), target.proc.height()
    socks: list[socket.socket] = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection(target.address, timeout=5))
        waiting = still_open(socks, 3.0, at_most=INBOUND_PENDING_MAX)
        assert len(waiting) == INBOUND_PENDING_MAX, (
            "beyond inbound_pending_max the oldest pending connection is dropped at once"
        )
        assert target.sockets() <= sockets_before + INBOUND_PENDING_MAX + 4
        with authenticated(target) as wire:  # the silent ones cannot keep an allowed peer out
            assert wire.outcome() == "served"  # (it evicted the oldest of them)
        assert still_open(waiting, HANDSHAKE_TIMEOUT_S + 2) == [], (
            "a silent connection outlived the handshake timeout"
        )
        assert target.log_since(offset).count("refused (handshake_timeout)") == INBOUND_PENDING_MAX - 1
        assert target.proc.height() >= start + 10, "the node stopped committing during the flood"
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: target.sockets() <= sockets_before, 5, "the node to release the sockets")
    assert target.rss_kib() - rss_before < 16 * 1024


def test_a_flood_of_small_frames_is_absorbed(target: Target) -> None:
    rss_before, start = target.rss_kib(), target.proc.height()
    vote = [PREVOTE, 1, 0, bytes(32), target.node_key, bytes(64)]  # long past, and not signed
    flood = message([STATUS, 1, 0, 0]) * 20_000 + message([VOTE, vote]) * 5_000
    with authenticated(target) as wire:
        wire.send(flood)
        # The probe is answered after the 25,000 frames before it: seconds on a loaded machine,
        # where the 2 s slack of a refusal is not enough (a drop still shows at once: EOF).
        assert wire.outcome(within_s=HEALTH_TIMEOUT_S * 3) == "served"
    target.assert_healthy()
    assert target.proc.height() > start
    assert target.rss_kib() - rss_before < 16 * 1024


@pytest.mark.slow
def test_peers_that_ask_for_blocks_and_never_read_cost_bounded_memory_and_no_liveness(target: Target) -> None:
    """Each request is answered with 64 blocks, queued for a peer that reads none of them: the
    queue's byte bound (p2p ``queue_bytes_max``) is all one such peer may hold, and it is freed
    when the peer goes, so three peers in turn cost no more than one. While the node works
    through the requests it keeps committing."""
    wait_until(lambda: target.proc.height() > 64, 30, "64 blocks to ask for", [target.proc])
    with authenticated(target) as wire:
        wire.send(message([GET_BLOCKS, 1, 64]))
        while (reply := wire.read()) is not None and reply[0] != BLOCKS:
            pass
        assert reply is not None and len(reply[1]) == 64
        answer_bytes = len(encode(reply))
    requests = QUEUE_BYTES_MAX // answer_bytes * 3 // 2  # half as many again as the queue may hold
    rss_before = rss_max = target.rss_kib()
    for _ in range(3):
        start, offset, began = target.proc.height(), target.log_size(), time.monotonic()
        with authenticated(target) as wire:
            wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # the last message gets us dropped, when the node comes to it: then it has done the rest
            wire.send(message([GET_BLOCKS, 1, 64]) * requests + message([STATUS, 1, 0]))
            while "bad_status" not in target.log_since(offset):
                assert time.monotonic() - began < 30, (
                    f"the node did not get through {requests} requests in 30 s"
                )
                rss_max = max(rss_max, target.rss_kib())
                time.sleep(0.05)
        took = time.monotonic() - began
        assert target.proc.height() - start >= int(took), (
            f"{target.proc.height() - start} blocks in {took:.1f} s"
        )
    assert rss_max - rss_before < QUEUE_BYTES_MAX // 1024 + 24 * 1024, (
        requests,
        answer_bytes,
        rss_before,
        rss_max,
    )


def test_frames_near_frame_bytes_max_pass_and_one_byte_more_is_refused(target: Target) -> None:
    rss_before, offset = target.rss_kib(), target.log_size()
    wire_form = [0, 1, bytes(32), -1, bytes(32), bytes(64), b""]  # a proposal for height 0: long past
    overhead = len(encode([PROPOSAL, [*wire_form[:6], bytes(FRAME_BYTES_MAX // 2)]])) - FRAME_BYTES_MAX // 2
    body = encode([PROPOSAL, [*wire_form[:6], bytes(FRAME_BYTES_MAX - overhead)]])
    assert len(body) == FRAME_BYTES_MAX
    with authenticated(target) as wire:
        for _ in range(12):
            assert wire.send(frame(body))
        assert wire.outcome() == "served"
        wire.send((FRAME_BYTES_MAX + 1).to_bytes(4, "big") + bytes(4096))
        assert wire.closed_by_node()
    assert "sent garbage (frame_size)" in target.log_since(offset)
    assert target.rss_kib() - rss_before < 64 * 1024


def test_a_queue_byte_bound_below_one_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_bytes_max"):
        P2PConfig(frame_bytes_max=4096, queue_bytes_max=4095)
    assert P2PConfig(frame_bytes_max=4096, queue_bytes_max=4096).queue_bytes_max == 4096


def test_forged_consensus_messages_reach_neither_the_wal_nor_the_next_heights_buffer(target: Target) -> None:
    """Unsigned proposals of 512 KiB and votes from a key outside the set, for the current height
    and the ones after it: dropped before the WAL and the consensus buffer (they once grew both
    without bound), counted in /status, and the peer is still served."""
    wal = target.proc.home / "wal"

    def wal_bytes() -> int:
        return sum(f.stat().st_size for f in wal.rglob("*") if f.is_file())

    rss, wal_before = target.rss_kib(), wal_bytes()
    dropped_before = target.proc.get("/status")["unauthentic_messages"]
    block = bytes(512 * 1024)
    with authenticated(target) as wire:
        for i in range(40):
            h = target.proc.height() + 1 + i % 2  # the height in progress or the next one
            wire.send(message([PROPOSAL, [h, i, bytes(32), -1, target.node_key, bytes(64), block]]))
            wire.send(message([VOTE, [1, h, i, bytes(32), target.observers[0].public, bytes(64)]]))
        assert wire.outcome() == "served"
    dropped = target.proc.get("/status")["unauthentic_messages"] - dropped_before
    assert dropped >= 40, dropped  # some may arrive after their height passed: ignored, not counted
    assert wal_bytes() - wal_before < 256 * 1024, "forged messages reached the WAL"
    assert target.rss_kib() - rss < 24 * 1024, "forged messages were kept"
