"""The node driver: the one piece that runs the pure consensus machine against the world.

Why it is shaped this way: ``node.consensus`` is a pure machine, so everything with a clock, a
socket or a disk is done here, and this is the only place that calls the machine. The real node
(``node.runtime``) and the simulator (``node.simnet``) run this same class; they differ only in the
ports they inject (``node.ports``: network, clock, WAL, application), as TigerBeetle's VOPR runs the
real replica. Every input (a peer's message, a timer, a call from the node) runs to completion;
there are no locks.

- **Effects.** A batch of consensus effects is carried out in order: own messages go to the WAL
  (durably) and are then broadcast; timeouts become ``call_later``; a decision is written by the
  application; equivocation goes to ``on_equivocation`` (the evidence relay).
- **When to start a height.** After a commit the driver waits at least ``commit_wait_ms``, then
  starts the next height as soon as the application has pending transactions, a peer has sent a
  message for that height, or ``heartbeat_ms`` has passed since the head's time (so time-based
  contract tasks fall due on an idle chain). Every honest node applies the same rule, and the
  first to start pulls the rest along.
- **Gossip.** Own messages are broadcast once; every tick the driver broadcasts its STATUS and
  sends each peer at its height what that peer lacks (``node.relay``). Peers past our height
  are asked for blocks (``node.blocksync``).
- **Inbound.** A consensus message is checked for its signer's signature before anything is
  written (``_authentic``); only then does it reach the WAL and the machine. A malformed message
  raises ``Misbehaved`` in its handler and the peer is dropped with the reason.
- **Crash and restart.** ``boot`` restores the round, step and lock from the WAL (the machine
  re-broadcasts its last votes), or waits to start the height.

Hooks for faults and for the node around it: ``outgoing`` (a byzantine validator sends an own
message its own way), ``before_send`` (the simulator's crash between "persisted" and "sent"),
``on_tick``, ``on_connect_hooks``, ``on_commit``, ``on_fatal`` (stop the node).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from chain.errors import ClearchainError
from node.blocksync import SYNC_BLOCKS_MAX, SYNC_TIMEOUT_MS, BlockSync
from node.consensus import (
    DECIDED,
    Broadcast,
    Consensus,
    Decide,
    Effect,
    Equivocation,
    ScheduleTimeout,
    Verifier,
    proposer_for,
)
from node.inbound import BLOCKS, GET_BLOCKS, HEIGHT_PRUNED, PROPOSAL, STATUS, VOTE, Misbehaved, need
from node.messages import Proposal, Vote
from node.ports import ChainApp, Clock, Committed, ConsensusWAL, Network, TimerHandle
from node.relay import PeerRound, ValidatorIndex, lacking, parse_status, status_message

TICK_MS: Final = 250
COMMIT_TIMES_KEPT: Final = 1_000
Handler = Callable[[bytes, list[Any]], None]


@dataclass(frozen=True, slots=True)
class DriverConfig:
    commit_wait_ms: int
    heartbeat_ms: int
    frame_bytes_max: int
    tick_ms: int = TICK_MS
    sync_timeout_ms: int = SYNC_TIMEOUT_MS
    sync_blocks_max: int = SYNC_BLOCKS_MAX
    contain_errors: bool = True  # log a failing handler and go on (the node); False: raise (the simulator)


class NodeDriver:
    def __init__(
        self,
        chain_id: str,
        consensus: Consensus,
        app: ChainApp,
        network: Network,
        clock: Clock,
        wal: ConsensusWAL,
        verify: Verifier,
        log: logging.Logger,
        config: DriverConfig,
    ) -> None:
        self.chain_id, self.consensus, self.app = chain_id, consensus, app
        self.network, self.clock, self.wal, self.verify = network, clock, wal, verify
        self.log, self.config = log, config
        self.sync = BlockSync(
            app,
            network,
            clock,
            log,
            frame_bytes_max=config.frame_bytes_max,
            timeout_ms=config.sync_timeout_ms,
            blocks_max=config.sync_blocks_max,
        )
        self.handlers: dict[int, Handler] = {
            PROPOSAL: self._on_consensus_message,
            VOTE: self._on_consensus_message,
            STATUS: self._on_status,
            GET_BLOCKS: self.sync.serve,
            BLOCKS: self._on_blocks,
            HEIGHT_PRUNED: self.sync.on_pruned,
        }
        self.outgoing: Callable[[Proposal | Vote], bool] | None = None  # True: it sent the message
        self.before_send: Callable[[list[Proposal | Vote]], bool] | None = None  # False: send nothing
        self.on_equivocation: Callable[[Vote, Vote], Any] | None = None
        self.on_commit: list[Callable[[Committed, bool], None]] = []
        self.on_tick: list[Callable[[], None]] = []
        self.on_connect_hooks: list[Callable[[bytes], None]] = []
        self.on_fatal: Callable[[], None] = lambda: None
        self.peer_status: dict[bytes, tuple[int, int, int]] = {}
        self.peer_rounds: dict[bytes, PeerRound] = {}
        self.unauthentic = 0  # consensus messages dropped for a bad signature or signer
        self.waiting = False  # decided; waiting to start the next height
        self.stopped = False
        self.commit_times: list[tuple[int, float, int, int]] = []  # (height, seconds, round, txs)
        self._index = ValidatorIndex()
        self._committed_at: float | None = None
        self._height_started = clock.monotonic_ms()
        self._tick_state: tuple[int, int, int] | None = None
        self._start_handle: TimerHandle | None = None
        self._tick_handle: TimerHandle | None = None
        self._timers: dict[TimerHandle, None] = {}

    # --- life ---------------------------------------------------------------------------------
    def boot(self) -> None:
        """Resume the current height from the WAL, or wait to start it."""
        height = self.consensus.height
        self.wal.open_height(height)
        records = self.wal.read(height)
        if records:
            self.log.info("restoring height %d from %d WAL records", height, len(records))
            self._height_started = self.clock.monotonic_ms()
            self._apply(self.consensus.restore(records))
        else:
            self._wait_for_next_height(immediately=True)

    def start_ticking(self, first_ms: float | None = None) -> None:
        self._tick_handle = self.clock.call_later(
            self.config.tick_ms if first_ms is None else first_ms, self._tick_fired
        )

    def stop(self) -> None:
        """Cancel every timer; the driver handles nothing more."""
        self.stopped = True
        for handle in (*self._timers, self._start_handle, self._tick_handle):
            if handle is not None:
                handle.cancel()
        self._timers.clear()

    def guard(self, fn: Callable[[], None]) -> None:
        """Run an event handler; a bug in one is logged loudly, and a failure to write a block
        (the store is unusable) stops the node rather than let it run on a state it lost."""
        if self.stopped:
            return
        if not self.config.contain_errors:
            fn()
            return
        try:
            fn()
        except ClearchainError as exc:
            if exc.code.startswith("store"):
                self.log.critical("store failure, stopping: %s: %s", exc.code, exc.message)
                self.on_fatal()
            else:
                self.log.exception("unexpected %s", exc.code)
        except Exception:
            self.log.exception("bug in an event handler")

    # --- consensus effects --------------------------------------------------------------------
    def _apply(self, effects: list[Effect]) -> None:
        out: list[Proposal | Vote] = []
        decided: list[Decide] = []
        for e in effects:
            if isinstance(e, Broadcast):
                self.wal.append(e.message, sync=True)
                out.append(e.message)
            elif isinstance(e, ScheduleTimeout):
                self._schedule_timeout(e)
            elif isinstance(e, Decide):
                decided.append(e)
            elif isinstance(e, Equivocation) and self.on_equivocation is not None:
                self.on_equivocation(e.first, e.second)
        if self.before_send is not None and not self.before_send(out):
            return
        for m in out:
            self._send_own(m)
        for d in decided:
            self._after_commit(self.app.commit(d), synced=False)

    def _send_own(self, m: Proposal | Vote) -> None:
        if self.outgoing is not None and self.outgoing(m):
            return
        self.network.broadcast([PROPOSAL if isinstance(m, Proposal) else VOTE, m.to_wire()])

    def _schedule_timeout(self, e: ScheduleTimeout) -> None:
        handle: TimerHandle | None = None

        def fire() -> None:
            self._timers.pop(handle, None)  # type: ignore[arg-type]
            self.guard(lambda: self._apply(self.consensus.on_timeout(e.step, e.height, e.round)))

        handle = self.clock.call_later(e.delay_ms, fire)
        self._timers[handle] = None

    def _after_commit(self, c: Committed, synced: bool) -> None:
        now = self.clock.monotonic_ms()
        took_ms = now - self._height_started
        if not synced:
            self.commit_times.append((c.height, took_ms / 1000, c.round, c.txs))
            del self.commit_times[:-COMMIT_TIMES_KEPT]
        self._committed_at = now
        self.log.info(
            "committed height %d%s: %d txs, round %d, %s, %.0f ms",
            c.height,
            " (sync)" if synced else "",
            c.txs,
            c.round,
            c.block_hash.hex()[:16],
            took_ms,
        )
        for hook in self.on_commit:
            hook(c, synced)
        halted = self.app.halted()
        if halted is not None:  # a governance upgrade activated other code
            self.log.critical("stopping at height %d: %s", c.height, halted)
            self.on_fatal()
            return
        if not synced:
            self._wait_for_next_height()

    # --- starting heights -----------------------------------------------------------------------
    def _wait_for_next_height(self, immediately: bool = False) -> None:
        self.waiting = True
        if immediately:
            self._committed_at = None
        self.maybe_start()

    def maybe_start(self) -> None:
        """Start the next height if it is due (see the module docstring), or check again later."""
        if not self.waiting or self.stopped:
            return
        if self._start_handle is not None:
            self._start_handle.cancel()
            self._start_handle = None
        wait_ms = (
            -1.0
            if self._committed_at is None
            else self._committed_at + self.config.commit_wait_ms - self.clock.monotonic_ms()
        )
        heartbeat_in_ms = self.app.head_time_ms() + self.config.heartbeat_ms - self.clock.wall_ms()
        due = self.app.has_pending() or heartbeat_in_ms <= 0 or self._next_height_heard()
        if due and wait_ms <= 0:
            self._enter_height(self.app.head_height() + 1)
            return
        delay = wait_ms if due else max(wait_ms, heartbeat_in_ms)
        self._start_handle = self.clock.call_later(max(delay, 1), lambda: self.guard(self.maybe_start))

    def _next_height_heard(self) -> bool:
        """A peer already sent a message for the height we would start."""
        target = self.app.head_height() + 1
        return any(m.height == target for m in self.consensus.future)

    def _enter_height(self, height: int) -> None:
        self.waiting = False
        if self._start_handle is not None:
            self._start_handle.cancel()
            self._start_handle = None
        self.wal.open_height(height)
        self._height_started = self.clock.monotonic_ms()
        self._tick_state = None
        self._apply(self.consensus.skip_to(height, self.app.validators()))

    # --- peers ----------------------------------------------------------------------------------
    def on_connect(self, pubkey: bytes) -> None:
        self.network.send(pubkey, self.status_message())
        for hook in self.on_connect_hooks:
            hook(pubkey)

    def on_disconnect(self, pubkey: bytes) -> None:
        self.peer_status.pop(pubkey, None)
        self.peer_rounds.pop(pubkey, None)
        self.sync.forget(pubkey)

    def on_message(self, pubkey: bytes, message: list[Any]) -> None:
        handler = self.handlers.get(message[0])
        if handler is None:
            return
        try:
            handler(pubkey, message)
        except Misbehaved as exc:
            self.network.disconnect(pubkey, str(exc))
        except ClearchainError as exc:
            if not exc.code.startswith("store"):
                raise  # the transport logs it with its traceback and drops the peer
            self.log.critical("store failure, stopping: %s: %s", exc.code, exc.message)
            self.on_fatal()

    def _on_consensus_message(self, pubkey: bytes, message: list[Any]) -> None:
        need(len(message) == 2, "bad_consensus_message")
        m: Proposal | Vote | None
        m = Proposal.from_wire(message[1]) if message[0] == PROPOSAL else Vote.from_wire(message[1])
        need(m is not None, "bad_consensus_message")
        assert m is not None
        c = self.consensus
        if m.height in (c.height, c.height + 1) and not self._authentic(m):
            self.unauthentic += 1  # nothing unsigned reaches the WAL or the next height's buffer
            return
        if m.height == c.height and not self.waiting:
            self.wal.append(m, sync=False)
        elif m.height > c.height + 1:
            self.sync.request(pubkey, m.height)
        self._apply(c.on_proposal(m) if isinstance(m, Proposal) else c.on_vote(m))
        if self.waiting and m.height == self.app.head_height() + 1:
            self.maybe_start()

    def _authentic(self, m: Proposal | Vote) -> bool:
        """Signed by the validator it names, who may send it (the round's proposer, a member of
        the set), judged by the current set. A message a peer relays is one its sender signed,
        so this costs one verification per message and keeps forged ones out of the WAL, out of
        the bounded buffer for the next height, and out of the rule that starts that height."""
        validators = self.consensus.validators
        if isinstance(m, Proposal):
            signer = m.proposer
            if signer != proposer_for(validators, m.height, m.round):
                return False
        else:
            signer = m.validator
            if validators.power_of(signer) == 0:
                return False
        return self.verify(signer, m.signature, m.sign_bytes(self.chain_id))

    def _on_status(self, pubkey: bytes, message: list[Any]) -> None:
        peer = parse_status(message)
        state = (peer.height, peer.round, peer.step)
        if self.peer_status.get(pubkey) == state:
            peer = dataclasses.replace(peer, stuck=True)
        self.peer_status[pubkey] = state
        self.peer_rounds[pubkey] = peer
        if peer.height > self.consensus.height:
            self.sync.request(pubkey, peer.height)

    def _on_blocks(self, pubkey: bytes, message: list[Any]) -> None:
        applied = self.sync.apply(pubkey, message, lambda c: self._after_commit(c, synced=True))
        if applied and self.app.halted() is None:
            self._enter_height(self.app.head_height() + 1)
            status = self.peer_status.get(pubkey)
            if status is not None and status[0] > self.consensus.height:
                self.sync.request(pubkey, status[0])

    # --- gossip tick ----------------------------------------------------------------------------
    def status_message(self) -> list[Any]:
        return status_message(self.consensus, self._index)

    def _tick_fired(self) -> None:
        self.guard(self._tick)
        if not self.stopped:
            self._tick_handle = self.clock.call_later(self.config.tick_ms, self._tick_fired)

    def _tick(self) -> None:
        c = self.consensus
        self.network.broadcast(self.status_message())
        for hook in self.on_tick:
            hook()
        self.maybe_start()
        state = (c.height, c.round, c.step)
        stalled, self._tick_state = state == self._tick_state, state
        relay_all = stalled and not self.waiting  # after a decision: only what a stuck peer lacks
        for pubkey in sorted(self.peer_rounds):
            peer = self.peer_rounds[pubkey]
            if peer.height == c.height and peer.step != DECIDED and c.started:
                for m in lacking(c, peer, self._index, relay_all):
                    self.network.send(pubkey, m)
        ahead = sorted(((s[0], k) for k, s in self.peer_status.items() if s[0] > c.height), reverse=True)
        if ahead:
            self.sync.request(ahead[0][1], ahead[0][0])
