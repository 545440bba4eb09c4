"""Deterministic network simulator: N consensus instances in one process, under seeded faults.

Why: safety must hold under any timing and liveness must return once the network heals; a few
happy-path runs show neither. Like TigerBeetle's VOPR, the simulator drives the very state machine
the node runs (``node.consensus.Consensus``) and owns everything around it: a virtual clock
(integer ms), one event queue ordered by (time, sequence number), and one ``random.Random(seed)``,
the only source of randomness. The same config replays the same run; ``trace_hash`` (SHA-256 over
every processed event) shows it. Nothing that reaches the trace iterates a set or dict by hash.

Faults: per-message delay (which reorders), loss, duplication, partitions that heal, crash and
restart (all state lost but the signer's record, the WAL and the decided blocks; the node restores
from its WAL), a crash between "vote persisted" and "vote sent", and byzantine validators:
``equivocate`` (conflicting signed messages to the two halves of its peers, both to one witness),
``silent``, ``invalid`` (proposes blocks honest nodes reject) and ``forge`` (re-proposes a hash
seen earlier in the height, carrying a different, invalid block). Algorithm 1 assumes gossip that
eventually delivers to every correct node what one has; over lossy links that takes relaying, so a
stalled node relays its WAL to a peer (``_gossip``). A node that falls behind fetches decided
blocks with their certificates from a peer and checks them ("block sync").

Checks: after every decision, no two honest nodes decided different blocks at one height and no
honest node decided an invalid block or one without a valid certificate; Equivocation effects seen
by honest nodes are recorded as evidence; at the end, no honest signer signed two hashes for one
(height, round, step), and, once every fault is over, every honest node reached the target height.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.certificate import PRECOMMIT, CommitCertificate, proposal_sign_bytes, vote_sign_bytes
from chain.errors import ClearchainError, invariant
from chain.keys import KeyPair, verify_signature
from chain.validators import Validator, ValidatorSet
from node.consensus import Broadcast, Consensus, Decide, Effect, Equivocation, ScheduleTimeout, TimeoutParams
from node.messages import NIL, Proposal, Vote

CHAIN_ID = "simnet"
MODES = ("equivocate", "silent", "invalid", "forge")
TICK_MS = 250  # a node that made no progress for this long relays its WAL and asks for blocks
SYNC_BLOCKS_MAX = 32  # decided blocks in one sync response
QUEUE_EVENTS_MAX = 5_000_000  # pending events; more is a simulator bug
DELIVER, TIMEOUT, CRASH, RESTART, TICK = range(5)


class SimConfigError(ClearchainError):
    """A simulation config that cannot run (too many byzantine, a malformed partition ...)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """Messages between different groups are dropped from ``start_ms`` until ``end_ms``; a node
    in no group is cut off from everyone."""

    groups: tuple[tuple[int, ...], ...]
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Crash:
    """Node ``node`` crashes at ``at_ms`` and restarts at ``restart_ms``. With ``before_send`` it
    crashes in its first batch of effects after ``at_ms`` that holds a vote: the batch is in its
    WAL and signer record but never sent, and it restarts ``restart_ms - at_ms`` later."""

    node: int
    at_ms: int
    restart_ms: int
    before_send: bool = False


@dataclass(frozen=True, slots=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0  # the last ``byzantine`` indices, all in ``mode``
    mode: str = "equivocate"
    seed: int = 0
    heights: int = 5  # target: every honest node decides this many heights
    drop: float = 0.0
    dup: float = 0.0
    delay_ms: tuple[int, int] = (5, 50)
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    time_max_ms: int = 600_000
    events_max: int = 5_000_000
    real_crypto: bool = False
    signer_guard: bool = True  # False: honest signers sign anything, so only the WAL prevents conflicts
    timeouts: TimeoutParams = TimeoutParams()


@dataclass
class SimResult:
    heights: list[int]  # heights decided, per node
    honest_height_max: int
    honest_height_min: int
    rounds_by_height: dict[int, int]  # rounds used (max over honest nodes) per height
    sent: int
    delivered: int
    dropped: int
    crashes: int  # crashes that happened
    synced: int  # heights honest nodes took from block sync rather than their own consensus
    safety_violations: list[str]
    evidence: list[tuple[int, int, int, int]]  # (validator, height, round, vote type)
    signer_conflicts: list[str]  # an honest signer signed two hashes for one (h, r, step)
    signer_refusals: int  # times an honest consensus asked its signer for a conflicting signature
    trace_hash: str
    time_ms: int
    events: int
    wall_s: float
    reached_target: bool

    @property
    def heights_per_wall_s(self) -> float:
        return self.honest_height_min / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rounds_by_height"] = {str(h): r for h, r in sorted(self.rounds_by_height.items())}
        out["heights_per_wall_s"] = round(self.heights_per_wall_s, 2)
        return out


@dataclass(frozen=True, slots=True)
class SyncRequest:
    height: int  # send me decided blocks from this height on


@dataclass(frozen=True, slots=True)
class SyncResponse:
    blocks: tuple[tuple[int, bytes, bytes, CommitCertificate], ...]  # (height, hash, block, cert)


@dataclass(frozen=True, slots=True)
class Gossip:
    messages: tuple[Proposal | Vote, ...]  # relayed proposals and votes


Message = Proposal | Vote | SyncRequest | SyncResponse | Gossip


# --- crypto, signer, application ----------------------------------------------------------------
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


class SimApp:
    def __init__(self, index: int, bad: bool) -> None:
        self.index, self.bad = index, bad

    def propose(self, height: int, round_: int) -> tuple[bytes, Any]:
        block = (b"BAD-" if self.bad else b"") + b"h%d-r%d-v%d" % (height, round_, self.index)
        return hashlib.sha256(block).digest(), block

    def validate(self, height: int, block_hash: bytes, block: Any) -> bool:
        return is_valid_block(block_hash, block)

    def block_hash(self, block: Any) -> bytes | None:
        return hashlib.sha256(block).digest() if type(block) is bytes else None


@dataclass
class SimNode:
    index: int
    mode: str | None  # None for an honest node
    disk: SignerDisk  # survives crashes, like the WAL and the decided blocks
    wal: list[Proposal | Vote] = field(default_factory=list)
    decided: list[tuple[bytes, bytes, CommitCertificate]] = field(default_factory=list)
    consensus: Consensus | None = None
    alive: bool = True
    incarnation: int = 0  # timers of an earlier life are ignored
    armed: Crash | None = None  # a before-send crash waiting for its batch
    sync_quiet_until_ms: int = 0
    tick_state: tuple[int, int, int] = (0, 0, 0)  # (height, round, step) at the previous tick

    @property
    def height(self) -> int:
        """The height this node is deciding (genesis is 0)."""
        return len(self.decided) + 1


# --- the simulator ------------------------------------------------------------------------------
class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        check_config(cfg)
        self.cfg, self.rng = cfg, random.Random(cfg.seed)
        self.crypto = SimCrypto(cfg.validators, cfg.real_crypto)
        vals = ValidatorSet.build([Validator(pk, 1) for pk in self.crypto.pubkeys])
        self.validators = vals
        self.power = {v.pubkey: v.power for v in vals.validators}
        self.index_of = {pk: i for i, pk in enumerate(self.crypto.pubkeys)}
        n, f = cfg.validators, cfg.byzantine
        self.nodes = [SimNode(i, cfg.mode if i >= n - f else None, SignerDisk()) for i in range(n)]
        self.honest = [node for node in self.nodes if node.mode is None]
        self.queue: list[tuple[int, int, int, int, Any, Any]] = []
        self.seq = self.now = self.events = 0
        self.sent = self.delivered = self.dropped = self.crashes = self.synced = 0
        self.trace = hashlib.sha256()
        self.decisions: dict[int, tuple[bytes, bytes, int]] = {}  # height -> first honest (hash, block, node)
        self.rounds: dict[int, int] = {}
        self.violations: list[str] = []
        self.evidence: set[tuple[int, int, int, int]] = set()
        self.faults_end_ms = max(
            [p.end_ms for p in cfg.partitions] + [c.restart_ms for c in cfg.crashes], default=0
        )
        self.target_met = False

    def run(self) -> SimResult:
        wall = time.perf_counter()
        for node in self.nodes:
            self._boot(node, restore=False)
        for c in self.cfg.crashes:
            self._push(c.at_ms, CRASH, c.node, c, None)
        while self.queue and self.events < self.cfg.events_max:
            t, _, kind, i, a, b = heapq.heappop(self.queue)
            if t > self.cfg.time_max_ms:
                break
            self.now, self.events = t, self.events + 1
            self._dispatch(kind, self.nodes[i], a, b)
            if (
                self.target_met
                and self.now >= self.faults_end_ms
                and all(n.alive and not n.armed for n in self.nodes)
            ):
                break
        return self._result(time.perf_counter() - wall)

    def _push(self, t: int, kind: int, node: int, a: Any, b: Any) -> None:
        invariant(len(self.queue) < QUEUE_EVENTS_MAX, "simulator event queue overflow")
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, kind, node, a, b))

    def _dispatch(self, kind: int, node: SimNode, a: Any, b: Any) -> None:
        if kind == DELIVER:
            self._deliver(node, a, b)
        elif kind == TIMEOUT and node.alive and a == node.incarnation and node.consensus is not None:
            self.trace.update(b"T%d.%d.%d.%d.%d" % (self.now, node.index, b.step, b.height, b.round))
            self._apply(node, node.consensus.on_timeout(b.step, b.height, b.round))
        elif kind == CRASH and node.alive:
            if a.before_send:
                node.armed = a
            else:
                self._crash(node, a.restart_ms)
        elif kind == RESTART:
            self.trace.update(b"R%d.%d" % (self.now, node.index))
            self._boot(node, restore=True)
        elif kind == TICK and node.alive and a == node.incarnation:
            self._gossip(node)
            self._push(self.now + TICK_MS, TICK, node.index, node.incarnation, None)

    # --- node life ------------------------------------------------------------------------------
    def _boot(self, node: SimNode, restore: bool) -> None:
        node.alive, node.incarnation = True, node.incarnation + 1
        if node.mode == "silent":
            return
        i = node.index
        guard = node.mode is None and self.cfg.signer_guard
        signer = SimSigner(self.crypto.pubkeys[i], lambda m: self.crypto.sign(i, m), node.disk, guard)
        app = SimApp(i, bad=node.mode == "invalid")
        cons = Consensus(
            CHAIN_ID, node.height, self.validators, app, signer, self.crypto.verify, self.cfg.timeouts
        )
        node.consensus = cons
        self._apply(
            node, cons.restore([m for m in node.wal if m.height == node.height]) if restore else cons.start()
        )
        self._push(self.now + self.rng.randint(1, TICK_MS), TICK, i, node.incarnation, None)

    def _crash(self, node: SimNode, restart_ms: int) -> None:
        self.trace.update(b"C%d.%d" % (self.now, node.index))
        node.alive, node.consensus, node.armed, node.incarnation = False, None, None, node.incarnation + 1
        self.crashes += 1
        self._push(max(restart_ms, self.now + 1), RESTART, node.index, None, None)

    def _apply(self, node: SimNode, effects: list[Effect]) -> None:
        """Carry out a batch of effects: every outgoing message goes to the WAL, then all are sent."""
        out: list[Proposal | Vote] = []
        pending, k = list(effects), 0
        while k < len(pending):
            e, k = pending[k], k + 1
            if isinstance(e, Broadcast):
                node.wal.append(e.message)
                out.append(e.message)
            elif isinstance(e, ScheduleTimeout):
                self._push(self.now + e.delay_ms, TIMEOUT, node.index, node.incarnation, e)
            elif isinstance(e, Decide):
                self._decided(node, e.height, e.block_hash, e.block, e.certificate, synced=False)
                assert node.consensus is not None
                pending.extend(node.consensus.advance(self.validators))
            elif isinstance(e, Equivocation) and node.mode is None:
                v = e.second
                self.evidence.add((self.index_of[v.validator], v.height, v.round, v.vote_type))
        if node.armed is not None and any(isinstance(m, Vote) for m in out):
            self._crash(node, self.now + node.armed.restart_ms - node.armed.at_ms)  # persisted, not sent
            return
        for m in out:
            self._broadcast(node, m)

    def _decided(
        self, node: SimNode, height: int, block_hash: bytes, block: Any, cert: CommitCertificate, synced: bool
    ) -> None:
        invariant(height == node.height, f"node {node.index} decided height {height} at {node.height}")
        node.decided.append((block_hash, block, cert))
        node.wal = [m for m in node.wal if m.height > height]
        self.trace.update(b"D%d.%d.%d." % (node.index, height, synced) + block_hash[:8])
        if node.mode is not None:
            return
        self.rounds[height] = max(self.rounds.get(height, 0), cert.round + 1)
        self.synced += synced
        where = f"node {node.index} height {height} ({'sync' if synced else 'consensus'}, t={self.now}ms)"
        if not is_valid_block(block_hash, block):
            self.violations.append(
                f"{where}: decided invalid block {block!r} under hash {block_hash.hex()[:16]}"
            )
        elif not self._certificate_ok(cert, height, block_hash):
            self.violations.append(f"{where}: decided with a certificate that does not verify")
        first = self.decisions.setdefault(height, (block_hash, block, node.index))
        if first[:2] != (block_hash, block):
            self.violations.append(f"{where}: decided {block!r}, node {first[2]} decided {first[1]!r}")
        if height >= self.cfg.heights:
            self.target_met = all(len(n.decided) >= self.cfg.heights for n in self.honest)

    def _certificate_ok(self, cert: CommitCertificate, height: int, block_hash: bytes) -> bool:
        """More than 2/3 of the power, distinct validators in key order, each signature valid."""
        if cert.height != height or cert.block_hash != block_hash:
            return False
        digest = vote_sign_bytes(CHAIN_ID, PRECOMMIT, height, cert.round, block_hash)
        power, previous = 0, b""
        for pubkey, sig in cert.signatures:
            weight = self.power.get(pubkey, 0)
            if pubkey <= previous or weight == 0 or not self.crypto.verify(pubkey, sig, digest):
                return False
            power, previous = power + weight, pubkey
        return self.validators.has_quorum(power)

    # --- network --------------------------------------------------------------------------------
    def _broadcast(self, node: SimNode, m: Proposal | Vote) -> None:
        peers = [j for j in range(len(self.nodes)) if j != node.index]
        if node.mode == "forge" and isinstance(m, Proposal):
            m = self._forged(node, m)
        if node.mode != "equivocate":
            for j in peers:
                self._send(node.index, j, m)
            return
        other, witness = self._conflicting(node, m), self.rng.randrange(len(peers))
        for pos, j in enumerate(peers):
            self._send(node.index, j, m if pos % 2 == 0 else other)
        self._send(node.index, peers[witness], other if witness % 2 == 0 else m)

    def _conflicting(self, node: SimNode, m: Proposal | Vote) -> Proposal | Vote:
        """A second message for the same (height, round, step), signed with the raw key."""
        if isinstance(m, Proposal):
            block = m.block + b"-alt"
            bh = hashlib.sha256(block).digest()
            sig = self.crypto.sign(
                node.index, proposal_sign_bytes(CHAIN_ID, m.height, m.round, bh, m.pol_round)
            )
            return Proposal(m.height, m.round, bh, m.pol_round, m.proposer, sig, block)
        known = node.consensus.proposals.get(m.round) if node.consensus is not None else None
        if m.block_hash != NIL:
            bh = NIL
        elif known is not None:
            bh = known.block_hash
        else:
            bh = hashlib.sha256(b"equivocation-%d-%d-%d" % (m.height, m.round, node.index)).digest()
        sig = self.crypto.sign(node.index, vote_sign_bytes(CHAIN_ID, m.vote_type, m.height, m.round, bh))
        return Vote(m.vote_type, m.height, m.round, bh, m.validator, sig)

    def _forged(self, node: SimNode, p: Proposal) -> Proposal:
        """The hash of an earlier round's valid proposal at this height, with an invalid block."""
        assert node.consensus is not None
        seen = [
            q
            for r, q in sorted(node.consensus.proposals.items())
            if r < p.round and is_valid_block(q.block_hash, q.block)
        ]
        if not seen:
            return p
        bh, block = seen[-1].block_hash, b"BAD-forged-h%d-r%d" % (p.height, p.round)
        sig = self.crypto.sign(node.index, proposal_sign_bytes(CHAIN_ID, p.height, p.round, bh, -1))
        return Proposal(p.height, p.round, bh, -1, p.proposer, sig, block)

    def _cut(self, a: int, b: int) -> bool:
        return any(
            p.start_ms <= self.now < p.end_ms and not any(a in g and b in g for g in p.groups)
            for p in self.cfg.partitions
        )

    def _send(self, src: int, dst: int, m: Message) -> None:
        self.sent += 1
        if self._cut(src, dst) or self.rng.random() < self.cfg.drop:
            self.dropped += 1
            return
        lo, hi = self.cfg.delay_ms
        for _ in range(2 if self.rng.random() < self.cfg.dup else 1):
            self._push(self.now + self.rng.randint(lo, hi), DELIVER, dst, src, m)

    def _deliver(self, node: SimNode, src: int, m: Message) -> None:
        if not node.alive or self._cut(src, node.index):
            self.dropped += 1
            return
        self.delivered += 1
        self.trace.update(b"M%d.%d.%d." % (self.now, src, node.index) + _fingerprint(m))
        if isinstance(m, SyncRequest):
            self._answer_sync(node, src, m)
        elif isinstance(m, SyncResponse):
            self._apply_sync(node, m)
        else:
            for one in m.messages if isinstance(m, Gossip) else (m,):
                self._receive(node, one)

    def _receive(self, node: SimNode, m: Proposal | Vote) -> None:
        cons = node.consensus
        if cons is None:
            return
        if cons.height <= m.height <= cons.height + 1:
            node.wal.append(m)  # the WAL first, then the machine
        elif m.height > cons.height + 1:
            self._request_sync(node)
        self._apply(node, cons.on_proposal(m) if isinstance(m, Proposal) else cons.on_vote(m))

    def _gossip(self, node: SimNode) -> None:
        """Relay, standing in for CometBFT's gossip routines (which send a peer what it lacks for
        the height and round it announced). A node whose (height, round, step) has not moved since
        its last tick asks a random peer for blocks, and if that peer is at its height, sends it
        all its WAL holds for the peer's round, its own round, its valid round and the peer's
        proof-of-lock round, other nodes' messages included."""
        cons = node.consensus
        if cons is None:
            return
        state, node.tick_state = node.tick_state, (node.height, cons.round, cons.step)
        if state != node.tick_state:
            return
        self._request_sync(node)
        peer = self.nodes[self.rng.choice([j for j in range(len(self.nodes)) if j != node.index])]
        other = peer.consensus
        if other is None or other.height != cons.height:
            return
        p = other.proposals.get(other.round)
        rounds = {other.round, cons.round, cons.valid_round, -1 if p is None else p.pol_round}
        bundle = tuple(dict.fromkeys(m for m in node.wal if m.height == cons.height and m.round in rounds))
        if bundle:
            self._send(node.index, peer.index, Gossip(bundle))

    # --- block sync -----------------------------------------------------------------------------
    def _request_sync(self, node: SimNode) -> None:
        if self.now < node.sync_quiet_until_ms or node.mode == "silent":
            return
        node.sync_quiet_until_ms = self.now + 2 * self.cfg.delay_ms[1] + 1
        peer = self.rng.choice([j for j in range(len(self.nodes)) if j != node.index])
        self._send(node.index, peer, SyncRequest(node.height))

    def _answer_sync(self, node: SimNode, src: int, req: SyncRequest) -> None:
        if node.mode != "silent" and req.height < node.height:
            last = min(node.height, req.height + SYNC_BLOCKS_MAX)
            self._send(
                node.index,
                src,
                SyncResponse(tuple((h, *node.decided[h - 1]) for h in range(req.height, last))),
            )

    def _apply_sync(self, node: SimNode, resp: SyncResponse) -> None:
        """Accept each next block whose certificate verifies against the validator set."""
        for height, bh, block, cert in resp.blocks:
            if node.consensus is None or height != node.height:
                continue
            if not (is_valid_block(bh, block) and self._certificate_ok(cert, height, bh)):
                return
            self._decided(node, height, bh, block, cert, synced=True)
            self._apply(node, node.consensus.advance(self.validators))

    def _result(self, wall_s: float) -> SimResult:
        honest = [len(n.decided) for n in self.honest]
        conflicts = []
        for node in self.honest:
            first: dict[tuple[int, int, int], bytes] = {}
            for h, r, step, bh in node.disk.log:
                if first.setdefault((h, r, step), bh) != bh:
                    conflicts.append(
                        f"node {node.index} signed two hashes at height {h} round {r} step {step}"
                    )
        return SimResult(
            heights=[len(n.decided) for n in self.nodes],
            honest_height_max=max(honest),
            honest_height_min=min(honest),
            rounds_by_height=dict(sorted(self.rounds.items())),
            sent=self.sent,
            delivered=self.delivered,
            dropped=self.dropped,
            crashes=self.crashes,
            synced=self.synced,
            safety_violations=self.violations,
            evidence=sorted(self.evidence),
            signer_conflicts=conflicts,
            signer_refusals=sum(n.disk.refusals for n in self.honest),
            trace_hash=self.trace.hexdigest(),
            time_ms=self.now,
            events=self.events,
            wall_s=wall_s,
            reached_target=min(honest) >= self.cfg.heights,
        )


def _fingerprint(m: Message) -> bytes:
    if isinstance(m, Vote):
        return b"v%d.%d.%d." % (m.vote_type, m.height, m.round) + m.signature[:8]
    if isinstance(m, Proposal):
        return b"p%d.%d.%d." % (m.height, m.round, m.pol_round) + m.signature[:8]
    if isinstance(m, SyncRequest):
        return b"q%d" % m.height
    if isinstance(m, Gossip):
        return b"g" + b"".join(_fingerprint(x) for x in m.messages)
    return b"s" + b",".join(b"%d" % b[0] for b in m.blocks)


def check_config(cfg: SimConfig) -> None:
    """Raise SimConfigError ``bad_sim_config`` for a config that cannot run as asked."""
    n, f = cfg.validators, cfg.byzantine
    _require(1 <= n <= 256, f"validators must be 1..256, got {n}")
    _require(0 <= f and n > 3 * f, f"need n > 3f: {n} validators cannot tolerate {f} byzantine")
    _require(cfg.mode in MODES, f"mode must be one of {', '.join(MODES)}")
    _require(0 <= cfg.drop < 1 and 0 <= cfg.dup <= 1, "drop must be in [0, 1) and dup in [0, 1]")
    _require(0 <= cfg.delay_ms[0] <= cfg.delay_ms[1], f"delay {cfg.delay_ms} is not 0 <= min <= max")
    _require(min(cfg.heights, cfg.time_max_ms, cfg.events_max) >= 1, "heights and limits must be positive")
    for p in cfg.partitions:
        members = [i for g in p.groups for i in g]
        ok = (
            0 <= p.start_ms <= p.end_ms
            and len(set(members)) == len(members)
            and all(0 <= i < n for i in members)
        )
        _require(ok, f"partition {p}: needs 0 <= start <= end and disjoint groups of nodes 0..{n - 1}")
    for c in cfg.crashes:
        _require(
            0 <= c.node < n and 0 <= c.at_ms < c.restart_ms,
            f"crash {c}: needs node 0..{n - 1}, 0 <= at < restart",
        )


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SimConfigError("bad_sim_config", message)


def parse_partition(text: str) -> Partition:
    """``"0,1|2,3@1000-5000"``: groups separated by ``|``, active from 1000 ms until 5000 ms."""
    try:
        groups_text, window = text.split("@")
        start, end = (int(x) for x in window.split("-"))
        groups = tuple(tuple(int(x) for x in g.split(",") if x) for g in groups_text.split("|"))
    except ValueError as exc:
        raise SimConfigError("bad_sim_config", f"partition {text!r} is not like 0,1|2,3@1000-5000") from exc
    return Partition(groups, start, end)


def parse_crash(text: str) -> Crash:
    """``"2@1000-4000"``: node 2 crashes at 1000 ms and restarts at 4000 ms; a ``:before-send``
    suffix crashes it between persisting a vote and sending it."""
    body, _, flag = text.partition(":")
    try:
        node, window = body.split("@")
        start, end = (int(x) for x in window.split("-"))
        if flag not in ("", "before-send"):
            raise ValueError(flag)
        return Crash(int(node), start, end, before_send=flag == "before-send")
    except ValueError as exc:
        raise SimConfigError(
            "bad_sim_config", f"crash {text!r} is not like 2@1000-4000[:before-send]"
        ) from exc


def run(cfg: SimConfig) -> SimResult:
    """Run one simulation until the target is reached after every fault (or a limit) and report."""
    return Simulator(cfg).run()
