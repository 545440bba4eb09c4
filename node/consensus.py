"""Tendermint consensus as a pure state machine: Algorithm 1 of Buchman, Kwon and Milosevic,
"The latest gossip on BFT consensus" (2018, arXiv:1807.04938).

Inputs are ``on_proposal``, ``on_vote`` and ``on_timeout``; each returns the effects the driver
must carry out, in order: ``Broadcast`` a signed message (after writing it to the WAL),
``ScheduleTimeout``, ``Decide`` (a block with its commit certificate), ``Equivocation`` (two
conflicting votes by one validator). After a ``Decide`` the machine waits: the driver writes the
block and calls ``advance`` with the next height's validator set.

The machine reads no clock, draws no randomness and does no I/O. What it needs from outside is
passed in: the application (propose a block, validate one), the signer (which refuses to sign two
different messages for one height, round and step, and persists what it signed before it
returns), the signature verifier and the timeout parameters. The simulator and the node drive
the same code.

Names follow the paper: ``locked_*``, ``valid_*``, ``start_round``; the rule numbers in comments
are the line numbers of Algorithm 1.

Why one module of more than 500 lines: it is Algorithm 1 of the paper, whose rules read each
other's state (locked and valid value and round, the vote sets); one module keeps them side by
side in the paper's order, so a reader can check it line against line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.certificate import PRECOMMIT, PREVOTE, CommitCertificate
from chain.encoding import H, encode
from chain.validators import ValidatorSet
from node.messages import NIL, Proposal, Vote

# Steps within a round; DECIDED waits for ``advance``.
PROPOSE = 0
PREVOTE_STEP = 1
PRECOMMIT_STEP = 2
DECIDED = 3
STEP_NAMES = {PROPOSE: "propose", PREVOTE_STEP: "prevote", PRECOMMIT_STEP: "precommit", DECIDED: "decided"}

FUTURE_MESSAGES_MAX = 10_000  # buffered messages for the next height
FUTURE_BYTES_MAX = 32 * 1024 * 1024  # and their proposed blocks' bytes: a peer cannot fill memory
MESSAGE_OVERHEAD_BYTES = 256  # what a buffered message costs beyond its block
ROUNDS_AHEAD_MAX = 1_000  # a message further ahead than this many rounds is dropped


@dataclass(frozen=True, slots=True)
class TimeoutParams:
    """Timeouts grow linearly with the round, so a round eventually outlasts any delay."""

    propose_ms: int = 1000
    prevote_ms: int = 500
    precommit_ms: int = 500
    delta_ms: int = 250

    def for_step(self, step: int, round_: int) -> int:
        base = {PROPOSE: self.propose_ms, PREVOTE_STEP: self.prevote_ms, PRECOMMIT_STEP: self.precommit_ms}[
            step
        ]
        return base + round_ * self.delta_ms


# --- effects ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Proposal | Vote


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    step: int
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    height: int
    round: int
    block_hash: bytes
    block: Any
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class Equivocation:
    first: Vote
    second: Vote


Effect = Broadcast | ScheduleTimeout | Decide | Equivocation


# --- what the machine is given ----------------------------------------------------------------
class Application(Protocol):
    def propose(self, height: int, round_: int) -> tuple[bytes, Any]:
        """A new block for (height, round): (block hash, block)."""
        ...

    def validate(self, height: int, block_hash: bytes, block: Any) -> bool:
        """Deterministically: is ``block`` a valid next block whose hash is ``block_hash``?"""
        ...

    def block_hash(self, block: Any) -> bytes | None:
        """The hash of ``block``, or None if it is not even a block. Checked for every proposal
        before anything is remembered, so one hash can never stand for two blocks."""
        ...


class Signer(Protocol):
    """Signs this validator's messages. Returns None to refuse: it never signs two different
    messages for one (height, round, step), across restarts (it persists before it returns)."""

    pubkey: bytes

    def sign_proposal(
        self, chain_id: str, height: int, round_: int, block_hash: bytes, pol_round: int
    ) -> bytes | None: ...

    def sign_vote(
        self, chain_id: str, vote_type: int, height: int, round_: int, block_hash: bytes
    ) -> bytes | None: ...


Verifier = Callable[[bytes, bytes, bytes], bool]


def proposer_for(validators: ValidatorSet, height: int, round_: int) -> bytes:
    """The proposer of (height, round). With equal powers, round robin over the validators in
    key order, so any f+1 consecutive rounds include an honest proposer. With unequal powers,
    a slot drawn by hash from the total power, so each proposes in proportion to its power."""
    vals = validators.validators
    powers = {v.power for v in vals}
    if len(powers) == 1:
        return vals[(height + round_) % len(vals)].pubkey
    slot = int.from_bytes(H(b"proposer", encode([height, round_]))[:8], "big") % validators.total_power
    for v in vals:
        if slot < v.power:
            return v.pubkey
        slot -= v.power
    raise AssertionError("slot beyond total power")


VOTES_PER_VALIDATOR_MAX = 4  # distinct values counted per validator, round and type


@dataclass
class VoteSet:
    """The votes of one type in one round.

    As in the paper, a vote counts toward the value it names, once per (validator, value): an
    equivocator's second vote still counts for its own value (otherwise one equivocator can
    split honest validators' locks forever). That is safe because two quorums overlap in a
    validator that is honest, and an honest validator votes once. ``total`` counts each validator
    once. At most ``VOTES_PER_VALIDATOR_MAX`` values per validator are kept.
    """

    by_validator: dict[bytes, dict[bytes, Vote]] = field(default_factory=dict)
    power_for: dict[bytes, int] = field(default_factory=dict)  # block hash (NIL) -> power
    total: int = 0

    def add(self, vote: Vote, weight: int) -> Vote | None:
        """Count ``vote``; return an earlier vote of the same validator for another value."""
        mine = self.by_validator.get(vote.validator)
        if mine is None:
            self.by_validator[vote.validator] = {vote.block_hash: vote}
            self.power_for[vote.block_hash] = self.power_for.get(vote.block_hash, 0) + weight
            self.total += weight
            return None
        if vote.block_hash in mine:
            return None
        earlier = next(iter(mine.values()))
        if len(mine) < VOTES_PER_VALIDATOR_MAX:
            mine[vote.block_hash] = vote
            self.power_for[vote.block_hash] = self.power_for.get(vote.block_hash, 0) + weight
        return earlier

    def signatures_for(self, block_hash: bytes) -> list[tuple[bytes, bytes]]:
        """(validator, signature) of the votes for ``block_hash``, sorted by validator."""
        return sorted(
            (k, votes[block_hash].signature) for k, votes in self.by_validator.items() if block_hash in votes
        )


class Consensus:
    """One validator's (or observer's) consensus state for one chain."""

    def __init__(
        self,
        chain_id: str,
        height: int,
        validators: ValidatorSet,
        app: Application,
        signer: Signer | None,
        verify: Verifier,
        timeouts: TimeoutParams,
    ) -> None:
        self.chain_id = chain_id
        self.app = app
        self.signer = signer
        self.verify = verify
        self.timeouts = timeouts
        self.future: list[Proposal | Vote] = []
        self._future_bytes = 0
        self.started = False  # until ``start`` or ``restore``, messages for this height wait too
        self._reset(height, validators)

    # --- state ------------------------------------------------------------------------------
    def _reset(self, height: int, validators: ValidatorSet) -> None:
        self.height = height
        self.validators = validators
        self._power = {v.pubkey: v.power for v in validators.validators}
        self.round = 0
        self.step = PROPOSE
        self.locked_value: bytes | None = None
        self.locked_round = -1
        self.valid_value: bytes | None = None
        self.valid_round = -1
        self.proposals: dict[int, Proposal] = {}
        self.prevotes: dict[int, VoteSet] = {}
        self.precommits: dict[int, VoteSet] = {}
        self._blocks: dict[bytes, Any] = {}  # block hash -> block, from proposals
        self._valid: dict[bytes, bool] = {}
        self._fired: set[tuple[str, int]] = set()
        self._seen_in_round: dict[int, dict[bytes, int]] = {}  # round -> validator -> power

    @property
    def me(self) -> bytes | None:
        return None if self.signer is None else self.signer.pubkey

    def _is_validator(self) -> bool:
        return self.me is not None and self.me in self._power

    # --- inputs -----------------------------------------------------------------------------
    def start(self) -> list[Effect]:
        """Begin round 0 of the current height."""
        self.started = True
        effects: list[Effect] = []
        self._start_round(0, effects)
        self._process(effects)
        return effects

    def advance(self, validators: ValidatorSet) -> list[Effect]:
        """The decided block is written: move to the next height with its validator set."""
        return self.skip_to(self.height + 1, validators)

    def skip_to(self, height: int, validators: ValidatorSet) -> list[Effect]:
        """Begin ``height`` afresh: after a decision, or after block sync wrote the heights in
        between (their certificates, not this machine, decided them). Buffered messages for
        ``height`` are replayed; older ones are dropped."""
        if height < self.height or (height == self.height and self.started):
            raise ValueError(f"consensus cannot go back from height {self.height} to {height}")
        self._reset(height, validators)
        effects = self.start()
        pending, self.future = [m for m in self.future if m.height == height], []
        self._future_bytes = 0
        for message in pending:
            effects.extend(self._receive(message))
        return effects

    def restore(self, records: list[Proposal | Vote]) -> list[Effect]:
        """Rebuild after a restart, instead of ``start``, from this validator's WAL records for
        the current height: the proposals it received or made and the votes it signed.

        Restores the round and step it had reached and its lock (the latest round in which it
        precommitted a block), and re-broadcasts its own votes of that round: a crash between
        "vote persisted" and "vote sent" loses nothing, and the signer's record keeps it from
        signing anything that conflicts with them.
        """
        self.started = True
        effects: list[Effect] = []
        own: list[Vote] = []
        for m in records:
            if m.height != self.height:
                continue
            if isinstance(m, Proposal):
                self._add_proposal(m)
            else:
                self._add_vote(m, effects)
                if m.validator == self.me:
                    own.append(m)
        if not own:
            return self.start()
        self.round = max(v.round for v in own)
        for v in own:
            if (
                v.vote_type == PRECOMMIT
                and v.block_hash != NIL
                and v.round > self.locked_round
                and v.block_hash in self._blocks
            ):
                self.locked_value, self.locked_round = v.block_hash, v.round
        mine = [v for v in own if v.round == self.round]
        self.step = PRECOMMIT_STEP if any(v.vote_type == PRECOMMIT for v in mine) else PREVOTE_STEP
        effects.extend(Broadcast(v) for v in mine)
        step = self.step if self.step == PRECOMMIT_STEP else PREVOTE_STEP
        effects.append(
            ScheduleTimeout(step, self.height, self.round, self.timeouts.for_step(step, self.round))
        )
        self._process(effects)
        return effects

    def on_proposal(self, proposal: Proposal) -> list[Effect]:
        return self._receive(proposal)

    def on_vote(self, vote: Vote) -> list[Effect]:
        return self._receive(vote)

    def on_timeout(self, step: int, height: int, round_: int) -> list[Effect]:
        effects: list[Effect] = []
        if height != self.height or round_ != self.round or self.step == DECIDED:
            return effects
        if step == PROPOSE and self.step == PROPOSE:  # line 57
            self._vote(PREVOTE, NIL, effects)
            self.step = PREVOTE_STEP
        elif step == PREVOTE_STEP and self.step == PREVOTE_STEP:  # line 61
            self._vote(PRECOMMIT, NIL, effects)
            self.step = PRECOMMIT_STEP
        elif step == PRECOMMIT_STEP:  # line 65
            self._start_round(self.round + 1, effects)
        self._process(effects)
        return effects

    def _receive(self, message: Proposal | Vote) -> list[Effect]:
        effects: list[Effect] = []
        if message.height == self.height + 1 or (
            message.height == self.height and (self.step == DECIDED or not self.started)
        ):
            size = _message_bytes(message)
            if (
                len(self.future) < FUTURE_MESSAGES_MAX
                and self._future_bytes + size <= FUTURE_BYTES_MAX
                and message.round <= ROUNDS_AHEAD_MAX
            ):
                self.future.append(message)
                self._future_bytes += size
            return effects
        if message.height != self.height or message.round > self.round + ROUNDS_AHEAD_MAX:
            return effects
        if isinstance(message, Proposal):
            self._add_proposal(message)
        else:
            self._add_vote(message, effects)
        self._process(effects)
        return effects

    def _add_proposal(self, p: Proposal) -> None:
        if p.round in self.proposals or p.proposer != proposer_for(self.validators, p.height, p.round):
            return
        if not self.verify(p.proposer, p.signature, p.sign_bytes(self.chain_id)):
            return
        if self.app.block_hash(p.block) != p.block_hash:
            return  # a block under someone else's hash: validity is cached by hash
        self.proposals[p.round] = p
        self._blocks.setdefault(p.block_hash, p.block)
        self._seen(p.round, p.proposer)

    def _add_vote(self, v: Vote, effects: list[Effect]) -> None:
        weight = self._power.get(v.validator, 0)
        if weight == 0 or not self.verify(v.validator, v.signature, v.sign_bytes(self.chain_id)):
            return
        sets = self.prevotes if v.vote_type == PREVOTE else self.precommits
        earlier = sets.setdefault(v.round, VoteSet()).add(v, weight)
        if earlier is not None:
            effects.append(Equivocation(earlier, v))
        self._seen(v.round, v.validator)

    def _seen(self, round_: int, validator: bytes) -> None:
        self._seen_in_round.setdefault(round_, {})[validator] = self._power[validator]

    # --- the rules ----------------------------------------------------------------------------
    def _start_round(self, round_: int, effects: list[Effect]) -> None:  # line 11
        self.round = round_
        self.step = PROPOSE
        if self._is_validator() and proposer_for(self.validators, self.height, round_) == self.me:
            if self.valid_value is not None:
                block_hash, block = self.valid_value, self._blocks[self.valid_value]
            else:
                block_hash, block = self.app.propose(self.height, round_)
                self._blocks[block_hash] = block
            assert self.signer is not None
            sig = self.signer.sign_proposal(self.chain_id, self.height, round_, block_hash, self.valid_round)
            if sig is not None:
                p = Proposal(
                    self.height, round_, block_hash, self.valid_round, self.signer.pubkey, sig, block
                )
                self.proposals[round_] = p
                effects.append(Broadcast(p))
        effects.append(ScheduleTimeout(PROPOSE, self.height, round_, self.timeouts.for_step(PROPOSE, round_)))

    def _vote(self, vote_type: int, block_hash: bytes, effects: list[Effect]) -> None:
        if not self._is_validator():
            return
        assert self.signer is not None
        sig = self.signer.sign_vote(self.chain_id, vote_type, self.height, self.round, block_hash)
        if sig is None:
            return
        vote = Vote(vote_type, self.height, self.round, block_hash, self.signer.pubkey, sig)
        sets = self.prevotes if vote_type == PREVOTE else self.precommits
        sets.setdefault(self.round, VoteSet()).add(vote, self._power[vote.validator])
        self._seen(self.round, vote.validator)
        effects.append(Broadcast(vote))

    def _is_valid(self, block_hash: bytes) -> bool:
        known = self._valid.get(block_hash)
        if known is None:
            known = self.app.validate(self.height, block_hash, self._blocks[block_hash])
            self._valid[block_hash] = known
        return known

    def _quorum(self, votes: VoteSet | None, block_hash: bytes | None = None) -> bool:
        """More than 2/3 of the power: for ``block_hash``, or for anything when None."""
        if votes is None:
            return False
        power = votes.total if block_hash is None else votes.power_for.get(block_hash, 0)
        return self.validators.has_quorum(power)

    def _once(self, rule: str, round_: int) -> bool:
        key = (rule, round_)
        if key in self._fired:
            return False
        self._fired.add(key)
        return True

    def _process(self, effects: list[Effect]) -> None:
        """Apply every rule whose condition holds, until none does."""
        while self.step != DECIDED and self._step_rules(effects):
            pass

    def _step_rules(self, effects: list[Effect]) -> bool:
        """Try the rules once; True if one changed the state (so the others must be rechecked)."""
        if self._decide(effects):  # line 49
            return True
        r = self.round
        # line 55: f+1 validators already in a later round -> skip to it
        for later in sorted(x for x in self._seen_in_round if x > r):
            if 3 * sum(self._seen_in_round[later].values()) > self.validators.total_power:
                self._start_round(later, effects)
                return True
        proposal = self.proposals.get(r)
        prevotes = self.prevotes.get(r)
        if self.step == PROPOSE and proposal is not None:
            vr = proposal.pol_round
            v = proposal.block_hash
            if vr == -1:  # line 22
                ok = self._is_valid(v) and (self.locked_round == -1 or self.locked_value == v)
                self._vote(PREVOTE, v if ok else NIL, effects)
                self.step = PREVOTE_STEP
                return True
            if 0 <= vr < r and self._quorum(self.prevotes.get(vr), v):  # line 28
                ok = self._is_valid(v) and (self.locked_round <= vr or self.locked_value == v)
                self._vote(PREVOTE, v if ok else NIL, effects)
                self.step = PREVOTE_STEP
                return True
        if (
            self.step == PREVOTE_STEP and self._quorum(prevotes) and self._once("prevote_timeout", r)
        ):  # line 34
            effects.append(
                ScheduleTimeout(PREVOTE_STEP, self.height, r, self.timeouts.for_step(PREVOTE_STEP, r))
            )
        if (
            proposal is not None
            and self.step >= PREVOTE_STEP
            and self._quorum(prevotes, proposal.block_hash)
            and self._is_valid(proposal.block_hash)
            and self._once("lock", r)
        ):  # line 36
            v = proposal.block_hash
            if self.step == PREVOTE_STEP:
                self.locked_value, self.locked_round = v, r
                self._vote(PRECOMMIT, v, effects)
                self.step = PRECOMMIT_STEP
            self.valid_value, self.valid_round = v, r
            return True
        if self.step == PREVOTE_STEP and self._quorum(prevotes, NIL):  # line 44
            self._vote(PRECOMMIT, NIL, effects)
            self.step = PRECOMMIT_STEP
            return True
        if self._quorum(self.precommits.get(r)) and self._once("precommit_timeout", r):  # line 47
            effects.append(
                ScheduleTimeout(PRECOMMIT_STEP, self.height, r, self.timeouts.for_step(PRECOMMIT_STEP, r))
            )
        return False

    def _decide(self, effects: list[Effect]) -> bool:
        for r, proposal in sorted(self.proposals.items()):
            v = proposal.block_hash
            precommits = self.precommits.get(r)
            if self._quorum(precommits, v) and self._is_valid(v):
                assert precommits is not None
                cert = CommitCertificate(self.height, r, v, tuple(precommits.signatures_for(v)))
                effects.append(Decide(self.height, r, v, self._blocks[v], cert))
                self.step = DECIDED
                return True
        return False

    # --- introspection (status, metrics, tests) -----------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "step": STEP_NAMES[self.step],
            "locked_round": self.locked_round,
            "valid_round": self.valid_round,
        }


def _message_bytes(message: Proposal | Vote) -> int:
    """What buffering ``message`` costs, for the future buffer's bound."""
    block = message.block if isinstance(message, Proposal) else None
    return MESSAGE_OVERHEAD_BYTES + (len(block) if isinstance(block, bytes) else 0)
