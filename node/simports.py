"""The simulator's side of the driver's ports: crypto, signer, application, clock, network, WAL.

Why: ``node.simnet`` runs the production ``node.driver.NodeDriver`` unchanged, and everything the
driver touches is injected from here. The clock is the simulator's event queue (integer virtual
ms); the network hands each message to the simulator, which delays, loses, duplicates or cuts it
with its seeded RNG; the WAL is a list that survives crashes; the application's blocks are byte
tokens whose SHA-256 is their hash (tokens starting ``BAD`` are invalid), and it checks each
synced block's certificate against the validator set. Every port belongs to one life of one
node: after a crash, what the dead life still tries to do (send, write, set a timer) is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.certificate import PRECOMMIT, CommitCertificate, proposal_sign_bytes, vote_sign_bytes
from chain.errors import ClearchainError
from chain.keys import KeyPair, verify_signature
from chain.validators import ValidatorSet
from node.consensus import Consensus, Decide
from node.driver import NodeDriver
from node.messages import Proposal, Vote
from node.ports import Committed
from node.simconfig import Crash


class SimCrypto:
    """Signatures ``sha256(secret || msg)`` twice (64 bytes), checked against the simulator's
    secret table, so 100 validators are cheap; or real Ed25519 dev keys."""

    def __init__(self, n: int, real: bool) -> None:
        self.real = real
        self.keys = [KeyPair.dev(f"simnet-{i}") for i in range(n)] if real else []
        self.secrets = [hashlib.sha256(b"simnet-secret-%d" % i).digest() for i in range(n)]
        fake = [hashlib.sha256(b"simnet-validator-%d" % i).digest() for i in range(n)]
        self.pubkeys = [k.public for k in self.keys] if real else fake
        self.secret_of = dict(zip(self.pubkeys, self.secrets, strict=True))

    def sign(self, index: int, message: bytes) -> bytes:
        if self.real:
            return self.keys[index].sign(message)
        return hashlib.sha256(self.secrets[index] + message).digest() * 2

    def verify(self, pubkey: bytes, signature: bytes, message: bytes) -> bool:
        if self.real:
            return verify_signature(pubkey, signature, message)
        secret = self.secret_of.get(pubkey)
        return secret is not None and signature == hashlib.sha256(secret + message).digest() * 2


@dataclass
class SignerDisk:
    """What a validator's signer persisted before returning a signature; survives crashes."""

    signed: dict[tuple[int, int, int], bytes] = field(default_factory=dict)  # (h, r, step) -> hash
    log: list[tuple[int, int, int, bytes]] = field(default_factory=list)  # every signature issued
    refusals: int = 0


class SimSigner:
    """Never signs a second hash for one (height, round, step) (step 0 is the proposal, else the
    vote type), across restarts. ``guard=False`` is a byzantine's raw signer."""

    def __init__(self, pubkey: bytes, sign: Callable[[bytes], bytes], disk: SignerDisk, guard: bool) -> None:
        self.pubkey, self._sign, self.disk, self.guard = pubkey, sign, disk, guard

    def _allow(self, key: tuple[int, int, int], block_hash: bytes) -> bool:
        if self.guard and self.disk.signed.setdefault(key, block_hash) != block_hash:
            self.disk.refusals += 1
            return False
        self.disk.log.append((*key, block_hash))
        return True

    def sign_proposal(self, chain_id: str, height: int, round_: int, bh: bytes, pol: int) -> bytes | None:
        ok = self._allow((height, round_, 0), bh)
        return self._sign(proposal_sign_bytes(chain_id, height, round_, bh, pol)) if ok else None

    def sign_vote(self, chain_id: str, vote_type: int, height: int, round_: int, bh: bytes) -> bytes | None:
        ok = self._allow((height, round_, vote_type), bh)
        return self._sign(vote_sign_bytes(chain_id, vote_type, height, round_, bh)) if ok else None


def is_valid_block(block_hash: bytes, block: Any) -> bool:
    """A sim block is a byte token whose SHA-256 is its hash; tokens starting BAD are invalid."""
    return (
        type(block) is bytes and not block.startswith(b"BAD") and hashlib.sha256(block).digest() == block_hash
    )


def certificate_ok(
    crypto: SimCrypto, validators: ValidatorSet, chain_id: str, cert: CommitCertificate, height: int
) -> bool:
    """More than 2/3 of the power, distinct validators in key order, each signature valid."""
    if cert.height != height:
        return False
    digest = vote_sign_bytes(chain_id, PRECOMMIT, height, cert.round, cert.block_hash)
    power, previous = 0, b""
    for pubkey, sig in cert.signatures:
        weight = validators.power_of(pubkey)
        if pubkey <= previous or weight == 0 or not crypto.verify(pubkey, sig, digest):
            return False
        power, previous = power + weight, pubkey
    return validators.has_quorum(power)


class SimSyncError(ClearchainError):
    """A synced block that is invalid or whose certificate does not verify."""


class SimLife:
    """One life of one node: its ports act only while it lasts."""

    def __init__(self, sim: SimWorld, node: SimNode) -> None:
        self.sim, self.node, self.incarnation = sim, node, node.incarnation

    @property
    def alive(self) -> bool:
        return self.node.alive and self.node.incarnation == self.incarnation


class SimApp:
    """The application port over the node's decided blocks (which survive crashes)."""

    def __init__(self, life: SimLife, bad: bool) -> None:
        self.life, self.node, self.bad = life, life.node, bad

    def propose(self, height: int, round_: int) -> tuple[bytes, Any]:
        block = (b"BAD-" if self.bad else b"") + b"h%d-r%d-v%d" % (height, round_, self.node.index)
        return hashlib.sha256(block).digest(), block

    def validate(self, height: int, block_hash: bytes, block: Any) -> bool:
        return is_valid_block(block_hash, block)

    def block_hash(self, block: Any) -> bytes | None:
        return hashlib.sha256(block).digest() if type(block) is bytes else None

    def head_height(self) -> int:
        return len(self.node.decided)

    def head_time_ms(self) -> int:
        return 0  # with a heartbeat of 0 every height is due at once

    def validators(self) -> ValidatorSet:
        return self.life.sim.validators

    def has_pending(self) -> bool:
        return False

    def halted(self) -> str | None:
        return None

    def commit(self, decision: Decide) -> Committed:
        return self._write(decision.block, decision.certificate, synced=False)

    def decode_synced(self, block_bytes: bytes, certificate_wire: Any) -> tuple[int, Any, Any]:
        cert = CommitCertificate.from_wire(certificate_wire)
        return cert.height, block_bytes, cert

    def apply_synced(self, block: Any, certificate: Any) -> Committed:
        sim = self.life.sim
        if not (
            is_valid_block(certificate.block_hash, block)
            and certificate_ok(sim.crypto, sim.validators, sim.chain_id, certificate, self.head_height() + 1)
        ):
            raise SimSyncError("sync_block_invalid", f"height {certificate.height}")
        return self._write(block, certificate, synced=True)

    def synced_block(self, height: int) -> tuple[bytes, Any] | None:
        if not 1 <= height <= len(self.node.decided):
            return None
        _, block, cert = self.node.decided[height - 1]
        return block, cert.to_wire()

    def blocks_pruned_below(self) -> int:
        return 1  # a simulated node keeps every block

    def _write(self, block: Any, cert: CommitCertificate, synced: bool) -> Committed:
        self.life.sim.decided(self.node, cert.height, cert.block_hash, block, cert, synced)
        return Committed(cert.height, cert.round, cert.block_hash, 0, block, (), cert)


@dataclass(eq=False, slots=True)
class SimTimer:
    callback: Callable[[], None]
    life: SimLife
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Virtual time: both clocks read the simulator's ``now``; timers are events in its queue."""

    def __init__(self, life: SimLife) -> None:
        self.life = life

    def monotonic_ms(self) -> float:
        return self.life.sim.now

    def wall_ms(self) -> int:
        return self.life.sim.now

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> SimTimer:
        timer = SimTimer(callback, self.life)
        if self.life.alive:
            self.life.sim.schedule(-int(-delay_ms // 1), self.life.node.index, timer)
        return timer


class SimNetwork:
    """Every other node is a connected peer; the simulator carries each message."""

    def __init__(self, life: SimLife, peers: Mapping[bytes, int]) -> None:
        self.life, self._peers = life, peers
        self._order = sorted(peers.values())
        self.disconnects: list[tuple[bytes, str]] = []

    @property
    def peers(self) -> Mapping[bytes, int]:
        return self._peers

    def send(self, pubkey: bytes, message: list[Any]) -> bool:
        if self.life.alive:
            self.life.sim.send(self.life.node.index, self._peers[pubkey], message)
        return True

    def broadcast(self, message: list[Any], exclude: bytes | None = None) -> int:
        if not self.life.alive:
            return 0
        skip = -1 if exclude is None else self._peers[exclude]
        for j in self._order:
            if j != skip:
                self.life.sim.send(self.life.node.index, j, message)
        return len(self._order) - (skip >= 0)

    def disconnect(self, pubkey: bytes, reason: str) -> None:
        self.disconnects.append((pubkey, reason))


class MemoryWAL:
    """The node's WAL records (a list on the node, so they survive its crashes)."""

    def __init__(self, life: SimLife) -> None:
        self.life = life

    def open_height(self, height: int) -> None:
        if self.life.alive:
            node = self.life.node
            node.wal = [m for m in node.wal if m.height >= height]

    def append(self, message: Proposal | Vote, *, sync: bool) -> None:
        if self.life.alive:
            self.life.node.wal.append(message)

    def read(self, height: int) -> list[Proposal | Vote]:
        return [m for m in self.life.node.wal if m.height == height]


class SimWorld(Protocol):
    """What the ports need of the simulator that owns them (``node.simnet.Simulator``): its
    virtual clock, its network, its record of decisions, the validator set and the crypto."""

    chain_id: str
    crypto: SimCrypto
    validators: ValidatorSet
    now: int

    def schedule(self, delay_ms: int, node: int, timer: SimTimer) -> None: ...

    def send(self, src: int, dst: int, m: list[Any]) -> None: ...

    def decided(
        self, node: SimNode, height: int, block_hash: bytes, block: Any, cert: CommitCertificate, synced: bool
    ) -> None: ...


@dataclass
class SimNode:
    index: int
    mode: str | None  # None for an honest node
    disk: SignerDisk  # survives crashes, like the WAL and the decided blocks
    wal: list[Proposal | Vote] = field(default_factory=list)
    decided: list[tuple[bytes, bytes, CommitCertificate]] = field(default_factory=list)
    driver: NodeDriver | None = None  # the production driver of this life (None: down, or silent)
    alive: bool = True
    incarnation: int = 0  # ports of an earlier life do nothing
    armed: Crash | None = None  # a before-send crash waiting for its batch

    @property
    def consensus(self) -> Consensus | None:
        return None if self.driver is None else self.driver.consensus

    @property
    def height(self) -> int:
        """The height this node is deciding (genesis is 0)."""
        return len(self.decided) + 1
