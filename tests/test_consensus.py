"""The consensus state machine, driven directly (the simulator's tests drive it under faults)."""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from chain.certificate import PRECOMMIT, PREVOTE, proposal_sign_bytes, vote_sign_bytes
from chain.keys import KeyPair, verify_signature
from chain.validation import validate_certificate
from chain.validators import Validator, ValidatorSet
from node.consensus import (
    PRECOMMIT_STEP,
    PREVOTE_STEP,
    Broadcast,
    Consensus,
    Decide,
    Equivocation,
    TimeoutParams,
    proposer_for,
)
from node.messages import NIL, Proposal, Vote

KEYS = [KeyPair.dev(f"cons-{i}") for i in range(4)]
VALIDATORS = ValidatorSet.build([Validator(k.public, 10) for k in KEYS])
CHAIN = "cons-test"


class App:
    def propose(self, height: int, round_: int) -> tuple[bytes, Any]:
        block = f"block-{height}-{round_}".encode()
        return hashlib.sha256(block).digest(), block

    def validate(self, height: int, block_hash: bytes, block: Any) -> bool:
        return hashlib.sha256(block).digest() == block_hash

    def block_hash(self, block: Any) -> bytes | None:
        return hashlib.sha256(block).digest() if type(block) is bytes else None


class Signer:
    """Signs, remembering what it signed per (height, round, step): never two different."""

    def __init__(self, key: KeyPair) -> None:
        self.key = key
        self.pubkey = key.public
        self.signed: dict[tuple[int, int, int], bytes] = {}

    def _guard(self, hrs: tuple[int, int, int], block_hash: bytes) -> bool:
        if self.signed.setdefault(hrs, block_hash) != block_hash:
            return False
        return True

    def sign_proposal(self, chain_id: str, h: int, r: int, bh: bytes, pol: int) -> bytes | None:
        return (
            self.key.sign(proposal_sign_bytes(chain_id, h, r, bh, pol))
            if self._guard((h, r, 0), bh)
            else None
        )

    def sign_vote(self, chain_id: str, t: int, h: int, r: int, bh: bytes) -> bytes | None:
        return self.key.sign(vote_sign_bytes(chain_id, t, h, r, bh)) if self._guard((h, r, t), bh) else None


def _vote(key: KeyPair, t: int, h: int, r: int, bh: bytes) -> Vote:
    return Vote(t, h, r, bh, key.public, key.sign(vote_sign_bytes(CHAIN, t, h, r, bh)))


def _network(n_heights: int) -> dict[int, list[bytes]]:
    nodes = [
        Consensus(CHAIN, 1, VALIDATORS, App(), Signer(k), verify_signature, TimeoutParams()) for k in KEYS
    ]
    queue: deque[tuple[int, Any]] = deque()
    decided: dict[int, list[bytes]] = {i: [] for i in range(4)}

    def handle(i: int, effects: list[Any]) -> None:
        for e in effects:
            if isinstance(e, Broadcast):
                queue.extend((j, e.message) for j in range(4) if j != i)
            elif isinstance(e, Decide):
                validate_certificate(e.certificate, CHAIN, VALIDATORS, e.height, e.block_hash)
                decided[i].append(e.block)
                handle(i, nodes[i].advance(VALIDATORS))

    for i, node in enumerate(nodes):
        handle(i, node.start())
    while queue and min(len(d) for d in decided.values()) < n_heights:
        j, m = queue.popleft()
        handle(j, nodes[j].on_proposal(m) if isinstance(m, Proposal) else nodes[j].on_vote(m))
    return decided


def test_four_honest_validators_decide_the_same_blocks_with_valid_certificates() -> None:
    decided = _network(8)
    assert all(len(d) >= 8 for d in decided.values())
    assert all(d[:8] == decided[0][:8] for d in decided.values())
    assert decided[0][0] == b"block-1-0"


def test_proposers_rotate_round_robin_with_equal_power() -> None:
    seen = {proposer_for(VALIDATORS, 1, r) for r in range(4)}
    assert seen == {k.public for k in KEYS}


def test_equivocation_is_reported_and_counted_once() -> None:
    node = Consensus(CHAIN, 1, VALIDATORS, App(), Signer(KEYS[0]), verify_signature, TimeoutParams())
    node.start()
    a = _vote(KEYS[1], PREVOTE, 1, 0, b"\x01" * 32)
    b = _vote(KEYS[1], PREVOTE, 1, 0, b"\x02" * 32)
    assert not any(isinstance(e, Equivocation) for e in node.on_vote(a))
    effects = node.on_vote(b)
    assert Equivocation(a, b) in effects
    # Each vote counts for its own value (as in the paper); the validator counts once in total.
    assert node.prevotes[0].power_for.get(b"\x01" * 32) == 10
    assert node.prevotes[0].power_for.get(b"\x02" * 32) == 10
    assert node.prevotes[0].total == 10


def test_bad_signatures_and_outsiders_are_ignored() -> None:
    node = Consensus(CHAIN, 1, VALIDATORS, App(), Signer(KEYS[0]), verify_signature, TimeoutParams())
    node.start()
    outsider = _vote(KeyPair.dev("outsider"), PREVOTE, 1, 0, NIL)
    forged = Vote(PREVOTE, 1, 0, NIL, KEYS[2].public, outsider.signature)
    assert node.on_vote(outsider) == [] and node.on_vote(forged) == []
    assert 0 not in node.prevotes or KEYS[2].public not in node.prevotes[0].by_validator


def test_restore_after_crash_between_persist_and_send_rebroadcasts_and_keeps_the_lock() -> None:
    """A validator that precommitted a block, crashed, and restarted from its WAL: it is back in
    the precommit step, locked on that block, re-sends the same vote, and its signer refuses to
    sign a conflicting one."""
    proposer_key = next(k for k in KEYS if k.public == proposer_for(VALIDATORS, 1, 0))
    me = next(k for k in KEYS if k is not proposer_key)
    app = App()
    bh, block = app.propose(1, 0)
    proposal = Proposal(
        1, 0, bh, -1, proposer_key.public, proposer_key.sign(proposal_sign_bytes(CHAIN, 1, 0, bh, -1)), block
    )
    signer = Signer(me)
    my_prevote = Vote(PREVOTE, 1, 0, bh, me.public, signer.sign_vote(CHAIN, PREVOTE, 1, 0, bh) or b"")
    my_precommit = Vote(PRECOMMIT, 1, 0, bh, me.public, signer.sign_vote(CHAIN, PRECOMMIT, 1, 0, bh) or b"")
    others = [_vote(k, PREVOTE, 1, 0, bh) for k in KEYS if k is not me][:2]
    wal = [proposal, my_prevote, *others, my_precommit]
    node = Consensus(CHAIN, 1, VALIDATORS, app, signer, verify_signature, TimeoutParams())
    effects = node.restore(wal)
    assert node.step == PRECOMMIT_STEP and node.round == 0
    assert node.locked_value == bh and node.locked_round == 0
    assert Broadcast(my_precommit) in effects and Broadcast(my_prevote) in effects
    assert signer.sign_vote(CHAIN, PRECOMMIT, 1, 0, NIL) is None


def test_timeouts_move_through_the_round_with_no_proposal() -> None:
    key = next(k for k in KEYS if k.public != proposer_for(VALIDATORS, 1, 0))
    node = Consensus(CHAIN, 1, VALIDATORS, App(), Signer(key), verify_signature, TimeoutParams())
    node.start()
    effects = node.on_timeout(0, 1, 0)
    assert node.step == PREVOTE_STEP
    assert [e.message.block_hash for e in effects if isinstance(e, Broadcast)] == [NIL]
    effects = node.on_timeout(1, 1, 0)
    assert node.step == PRECOMMIT_STEP
    assert [(e.message.vote_type, e.message.block_hash) for e in effects if isinstance(e, Broadcast)] == [
        (PRECOMMIT, NIL)
    ]
    assert node.on_timeout(1, 1, 0) == []  # a stale timeout does nothing
    node.on_timeout(2, 1, 0)
    assert node.round == 1 and node.step != PRECOMMIT_STEP
