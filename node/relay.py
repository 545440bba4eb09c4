"""Consensus gossip: the STATUS a node announces, and what it re-sends to a peer that lacks it.

Why: Algorithm 1 assumes that a message one correct node holds eventually reaches every correct
node. Own proposals and votes are broadcast once; over lossy links some never arrive, and a lost
prevote of a polka can keep a proposer from learning the value locked nodes hold, so rounds go by
(the simulator's seed 4051: six rounds for one height at 20% loss). As CometBFT's gossip routines
do, every node therefore announces, with its (height, round, step), what it holds for that round
(the proposal, and a bitmap of the validators whose prevote and precommit it has), and on every
tick sends each peer at its height that is stuck (two STATUS in a row with the same height, round
and step) what its last STATUS says it lacks, bounded per tick. A peer that moves on needs
nothing, and its STATUS is up to a tick old: re-sending to it would mostly repeat what is on the
way.
A node whose own (height, round, step) has not moved since its previous tick also sends what it
holds for the rounds that may matter beyond the peer's own: its round, its valid round (the polka
a proposer needs in order to re-propose the locked value) and the proof-of-lock round of the
proposal. A peer that has decided the height needs nothing more for it.

STATUS is ``[5, height, round, step, has_proposal, prevotes, precommits]``; the two bitmaps have
bit ``i`` (byte ``i // 8``, mask ``1 << (i % 8)``) set for the ``i``-th validator of the set in key
order. The older ``[5, height, round, step]`` is still accepted: a peer that sends it gets the
stalled bundle only, as before. Nothing here iterates a set or dict in hash order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from chain.validators import ValidatorSet
from node.consensus import Consensus, VoteSet
from node.inbound import PROPOSAL, STATUS, VOTE, is_uint, need

BITMAP_BYTES_MAX: Final = 1024  # 8,192 validators
RELAY_MESSAGES_PER_PEER_MAX: Final = 256  # re-sent to one peer in one tick


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a peer said it holds for the round of its STATUS."""

    proposal: bool
    prevotes: bytes
    precommits: bytes


@dataclass(frozen=True, slots=True)
class PeerRound:
    height: int
    round: int
    step: int
    holdings: Holdings | None  # None: the peer sent the older, shorter STATUS
    stuck: bool = False  # its previous STATUS named the same (height, round, step)


class ValidatorIndex:
    """Position of each validator in its set, for the bitmaps; rebuilt when the set changes."""

    def __init__(self) -> None:
        self._set: ValidatorSet | None = None
        self._index: dict[bytes, int] = {}

    def of(self, validators: ValidatorSet) -> dict[bytes, int]:
        if validators is not self._set:
            self._set = validators
            self._index = {v.pubkey: i for i, v in enumerate(validators.validators)}
        return self._index


def bitmap(votes: VoteSet | None, index: dict[bytes, int]) -> bytes:
    out = bytearray((len(index) + 7) // 8)
    if votes is not None:
        for validator in votes.by_validator:
            i = index.get(validator)
            if i is not None:
                out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def has_bit(bits: bytes, i: int) -> bool:
    return (i >> 3) < len(bits) and bool(bits[i >> 3] & (1 << (i & 7)))


def status_message(c: Consensus, index: ValidatorIndex) -> list[Any]:
    r = c.round
    positions = index.of(c.validators)
    return [
        STATUS,
        c.height,
        r,
        c.step,
        int(r in c.proposals),
        bitmap(c.prevotes.get(r), positions),
        bitmap(c.precommits.get(r), positions),
    ]


def parse_status(message: list[Any]) -> PeerRound:
    """Raises ``Misbehaved("bad_status")`` for anything but the two STATUS forms."""
    need(len(message) in (4, 7) and all(is_uint(x) for x in message[1:4]), "bad_status")
    if len(message) == 4:
        return PeerRound(message[1], message[2], message[3], None)
    has_proposal, prevotes, precommits = message[4:]
    need(
        has_proposal in (0, 1)
        and type(has_proposal) is int
        and type(prevotes) is bytes
        and type(precommits) is bytes
        and len(prevotes) <= BITMAP_BYTES_MAX
        and len(precommits) <= BITMAP_BYTES_MAX,
        "bad_status",
    )
    return PeerRound(message[1], message[2], message[3], Holdings(bool(has_proposal), prevotes, precommits))


def lacking(c: Consensus, peer: PeerRound, index: ValidatorIndex, stalled: bool) -> list[list[Any]]:
    """What to send a peer at our height: if it is stuck, what its STATUS says it lacks for its
    round; and if we are stalled, what we hold for the other rounds that matter. At most
    ``RELAY_MESSAGES_PER_PEER_MAX`` messages, proposals first within each round."""
    positions = index.of(c.validators)
    out: list[list[Any]] = []
    held = peer.holdings
    if held is not None and peer.stuck:
        _round(c, peer.round, positions, held, out)
    if stalled:
        proposal = c.proposals.get(peer.round)
        rounds = {peer.round, c.round, c.valid_round, -1 if proposal is None else proposal.pol_round}
        for r in sorted(rounds - {-1}):
            if r != peer.round or held is None:
                _round(c, r, positions, None, out)
    return out[:RELAY_MESSAGES_PER_PEER_MAX]


def _round(
    c: Consensus, r: int, positions: dict[bytes, int], held: Holdings | None, out: list[list[Any]]
) -> None:
    """Our messages of round ``r`` that are not in ``held`` (all of them if ``held`` is None)."""
    p = c.proposals.get(r)
    if p is not None and (held is None or not held.proposal):
        out.append([PROPOSAL, p.to_wire()])
    pairs = [(c.prevotes.get(r), None if held is None else held.prevotes)]
    pairs.append((c.precommits.get(r), None if held is None else held.precommits))
    for votes, bits in pairs:
        if votes is None:
            continue
        for validator in sorted(votes.by_validator):
            if bits is not None and has_bit(bits, positions[validator]):
                continue
            for bh in sorted(votes.by_validator[validator]):
                out.append([VOTE, votes.by_validator[validator][bh].to_wire()])
