"""Deterministic network simulator: N production node drivers in one process, under seeded faults.

Why: safety must hold under any timing and liveness must return once the network heals; a few
happy-path runs show neither. Like TigerBeetle's VOPR, the simulator runs the very code the node
runs, ``node.driver.NodeDriver`` around ``node.consensus.Consensus`` (the WAL before every send,
timers, the rule that starts heights, STATUS gossip and re-sending what a peer lacks, block sync,
the checks on inbound messages), and injects the world (``node.simports``): a virtual clock
(integer ms) that is one event queue ordered by (time, sequence number), a network that delays,
loses, duplicates and partitions messages, an in-memory WAL and an application of byte-token
blocks. One ``random.Random(seed)`` is the only source of randomness; the same config replays the
same run, and ``trace_hash`` (SHA-256 over every processed event) shows it. Nothing that reaches
the trace iterates a set or dict by hash.

Faults: per-message delay (which reorders), loss, duplication, partitions that heal, crash and
restart (all state lost but the signer's record, the WAL and the decided blocks; the driver
restores from its WAL), a crash between "vote persisted" and "vote sent" (the driver's
``before_send`` hook), and byzantine validators through the driver's ``outgoing`` hook, as
``node.byzantine`` does in the node: ``equivocate`` (conflicting signed messages to the two halves
of its peers, both to one witness), ``silent``, ``invalid`` (proposes blocks honest nodes reject)
and ``forge`` (re-proposes a hash seen earlier in the height, carrying a different, invalid block).

Checks: after every decision, no two honest nodes decided different blocks at one height and no
honest node decided an invalid block or one without a valid certificate; Equivocation effects seen
by honest nodes are recorded as evidence; at the end, no honest signer signed two hashes for one
(height, round, step), and, once every fault is over, every honest node reached the target height.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
import time
from typing import Any

from chain.certificate import CommitCertificate, proposal_sign_bytes, vote_sign_bytes
from chain.errors import invariant
from chain.validators import Validator, ValidatorSet
from node.consensus import Consensus
from node.driver import TICK_MS, DriverConfig, NodeDriver
from node.inbound import BLOCKS, GET_BLOCKS, PROPOSAL, STATUS, VOTE
from node.messages import NIL, Proposal, Vote
from node.simconfig import (
    MODES,
    Crash,
    Partition,
    SimConfig,
    SimConfigError,
    SimResult,
    check_config,
    parse_crash,
    parse_partition,
)
from node.simports import (
    MemoryWAL,
    SignerDisk,
    SimApp,
    SimClock,
    SimCrypto,
    SimLife,
    SimNetwork,
    SimNode,
    SimSigner,
    SimTimer,
    certificate_ok,
    is_valid_block,
)

CHAIN_ID = "simnet"
SYNC_BLOCKS_MAX = 32  # decided blocks in one sync response
FRAME_BYTES_MAX = 1 << 30  # no frames in the simulator: no byte budget for sync responses
QUEUE_EVENTS_MAX = 5_000_000  # pending events; more is a simulator bug
DELIVER, TIMER, CRASH, RESTART = range(4)
_LOG = logging.getLogger("clearchain.simnet")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False
_LOG.setLevel(logging.CRITICAL)  # the drivers' log lines would cost more than the simulation
__all__ = [  # what the command line and the tests take from here
    "CHAIN_ID",
    "MODES",
    "Crash",
    "Partition",
    "SimConfig",
    "SimConfigError",
    "SimResult",
    "Simulator",
    "parse_crash",
    "parse_partition",
    "run",
]


# --- the simulator ------------------------------------------------------------------------------
class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        check_config(cfg)
        self.cfg, self.rng = cfg, random.Random(cfg.seed)
        self.chain_id = CHAIN_ID
        self.crypto = SimCrypto(cfg.validators, cfg.real_crypto)
        self.validators = ValidatorSet.build([Validator(pk, 1) for pk in self.crypto.pubkeys])
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
        self.driver_config = DriverConfig(
            commit_wait_ms=0,
            heartbeat_ms=0,
            frame_bytes_max=FRAME_BYTES_MAX,
            sync_timeout_ms=2 * cfg.delay_ms[1] + 1,
            sync_blocks_max=SYNC_BLOCKS_MAX,
            contain_errors=False,
        )

    def run(self) -> SimResult:
        wall = time.perf_counter()
        for node in self.nodes:
            self._boot(node, restore=False)
        self._connect(self.nodes)
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

    def schedule(self, delay_ms: int, node: int, timer: SimTimer) -> None:
        """The clock port: run ``timer`` ``delay_ms`` from now."""
        self._push(self.now + delay_ms, TIMER, node, timer, None)

    def _dispatch(self, kind: int, node: SimNode, a: Any, b: Any) -> None:
        if kind == DELIVER:
            self._deliver(node, a, b)
        elif kind == TIMER and not a.cancelled and a.life.alive:
            self.trace.update(b"T%d.%d" % (self.now, node.index))
            a.callback()
        elif kind == CRASH and node.alive:
            if a.before_send:
                node.armed = a
            else:
                self._crash(node, a.restart_ms)
        elif kind == RESTART:
            self.trace.update(b"R%d.%d" % (self.now, node.index))
            self._boot(node, restore=True)
            self._connect([node])

    # --- node life ------------------------------------------------------------------------------
    def _boot(self, node: SimNode, restore: bool) -> None:
        """A new life: the production driver over fresh ports, restored from the node's WAL."""
        node.alive, node.incarnation = True, node.incarnation + 1
        if node.mode == "silent":
            return
        i = node.index
        guard = node.mode is None and self.cfg.signer_guard
        signer = SimSigner(self.crypto.pubkeys[i], lambda m: self.crypto.sign(i, m), node.disk, guard)
        life = SimLife(self, node)
        app = SimApp(life, bad=node.mode == "invalid")
        cons = Consensus(
            CHAIN_ID, node.height, self.validators, app, signer, self.crypto.verify, self.cfg.timeouts
        )
        peers = {pk: j for j, pk in enumerate(self.crypto.pubkeys) if j != i}
        network = SimNetwork(life, peers)
        driver = NodeDriver(
            CHAIN_ID,
            cons,
            app,
            network,
            SimClock(life),
            MemoryWAL(life),
            self.crypto.verify,
            _LOG,
            self.driver_config,
        )
        driver.before_send = lambda out: self._before_send(node, out)
        if node.mode is None:
            driver.on_equivocation = self._evidence
        elif node.mode in ("equivocate", "forge"):
            driver.outgoing = lambda m: self._byzantine_send(node, network, m)
        node.driver = driver
        if not restore:
            node.wal = []
        driver.boot()
        driver.start_ticking(self.rng.randint(1, TICK_MS))

    def _connect(self, nodes: list[SimNode]) -> None:
        """What a (re)connection does in the node: each side sends the other its STATUS."""
        pairs = [(a, b) for a in nodes for b in self.nodes if a is not b and b.alive]
        if len(nodes) == 1:  # one node restarted: the others see it connect too
            pairs += [(b, a) for a, b in pairs]
        for a, b in pairs:
            if a.driver is not None:
                a.driver.on_connect(self.crypto.pubkeys[b.index])

    def _crash(self, node: SimNode, restart_ms: int) -> None:
        self.trace.update(b"C%d.%d" % (self.now, node.index))
        if node.driver is not None:
            node.driver.stop()
        node.alive, node.driver, node.armed, node.incarnation = False, None, None, node.incarnation + 1
        self.crashes += 1
        self._push(max(restart_ms, self.now + 1), RESTART, node.index, None, None)

    def _before_send(self, node: SimNode, out: list[Proposal | Vote]) -> bool:
        """An armed before-send crash hits the first batch with a vote: persisted, never sent."""
        if node.armed is not None and any(isinstance(m, Vote) for m in out):
            self._crash(node, self.now + node.armed.restart_ms - node.armed.at_ms)
            return False
        return True

    def _evidence(self, first: Vote, second: Vote) -> None:
        self.evidence.add((self.index_of[second.validator], second.height, second.round, second.vote_type))

    def decided(
        self, node: SimNode, height: int, block_hash: bytes, block: Any, cert: CommitCertificate, synced: bool
    ) -> None:
        """The application port wrote a block: record it and check it."""
        invariant(height == node.height, f"node {node.index} decided height {height} at {node.height}")
        node.decided.append((block_hash, block, cert))
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
        elif cert.block_hash != block_hash or not certificate_ok(
            self.crypto, self.validators, CHAIN_ID, cert, height
        ):
            self.violations.append(f"{where}: decided with a certificate that does not verify")
        first = self.decisions.setdefault(height, (block_hash, block, node.index))
        if first[:2] != (block_hash, block):
            self.violations.append(f"{where}: decided {block!r}, node {first[2]} decided {first[1]!r}")
        if height >= self.cfg.heights:
            self.target_met = all(len(n.decided) >= self.cfg.heights for n in self.honest)

    # --- byzantine senders (the driver's outgoing hook) -----------------------------------------
    def _byzantine_send(self, node: SimNode, network: SimNetwork, m: Proposal | Vote) -> bool:
        peers = [j for j in range(len(self.nodes)) if j != node.index]
        if node.mode == "forge":
            if isinstance(m, Proposal):
                m = self._forged(node, m)
            network.broadcast(_wire(m))
            return True
        other, witness = self._conflicting(node, m), self.rng.randrange(len(peers))
        for pos, j in enumerate(peers):
            self.send(node.index, j, _wire(m if pos % 2 == 0 else other))
        self.send(node.index, peers[witness], _wire(other if witness % 2 == 0 else m))
        return True

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

    # --- network --------------------------------------------------------------------------------
    def _cut(self, a: int, b: int) -> bool:
        return any(
            p.start_ms <= self.now < p.end_ms and not any(a in g and b in g for g in p.groups)
            for p in self.cfg.partitions
        )

    def send(self, src: int, dst: int, m: list[Any]) -> None:
        """The network port: deliver ``m`` after a drawn delay, maybe twice, maybe never."""
        self.sent += 1
        if self._cut(src, dst) or self.rng.random() < self.cfg.drop:
            self.dropped += 1
            return
        lo, hi = self.cfg.delay_ms
        for _ in range(2 if self.rng.random() < self.cfg.dup else 1):
            self._push(self.now + self.rng.randint(lo, hi), DELIVER, dst, src, m)

    def _deliver(self, node: SimNode, src: int, m: list[Any]) -> None:
        if not node.alive or self._cut(src, node.index):
            self.dropped += 1
            return
        self.delivered += 1
        self.trace.update(b"M%d.%d.%d." % (self.now, src, node.index) + _fingerprint(m))
        if node.driver is not None:
            node.driver.on_message(self.crypto.pubkeys[src], m)

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


def _wire(m: Proposal | Vote) -> list[Any]:
    return [PROPOSAL if isinstance(m, Proposal) else VOTE, m.to_wire()]


def _fingerprint(m: list[Any]) -> bytes:
    kind = m[0]
    if kind == VOTE:
        w = m[1]
        return b"v%d.%d.%d." % (w[0], w[1], w[2]) + w[5][:8]
    if kind == PROPOSAL:
        w = m[1]
        return b"p%d.%d.%d." % (w[0], w[1], w[3]) + w[5][:8]
    if kind == STATUS:
        return b"s%d.%d.%d." % (m[1], m[2], m[3]) + b"".join(x for x in m[5:] if type(x) is bytes)
    if kind == GET_BLOCKS:
        return b"q%d.%d" % (m[1], m[2])
    if kind == BLOCKS:
        return b"b%d" % len(m[1])
    return b"x%d" % kind


def run(cfg: SimConfig) -> SimResult:
    """Run one simulation until the target is reached after every fault (or a limit) and report."""
    return Simulator(cfg).run()
