"""A lying validator, for fault tests only (``node.faults``: enabled by the test flag alone).

Why it exists: safety with less than a third of the power byzantine is the chain's central claim,
and a claim is tested by an adversary that really signs. This validator runs the honest node and
adds one kind of lie, with its own consensus key and outside its double-sign guard:

- ``equivocate``: at a seeded share of its votes it also signs a conflicting vote (nil for a
  block, a block nobody proposed for nil) and sends each peer both, in an order drawn per peer,
  so some peers count one and some the other. Every honest node that sees both holds a double
  vote: evidence, a ``bonds.submit_evidence`` transaction, a slashed bond.
- ``invalid_block``: when it proposes, it proposes a block with one lie drawn in turn from a state
  root it did not compute, a transaction root that does not match, a time an hour ahead, and a
  wrong parent. It accepts its own lie; honest validators prevote nil and the next round goes on.
- ``garbage``: on a seeded share of ticks it sends one peer bytes no honest node sends: an
  undecodable frame, an oversized length, a known type with a junk payload, a malformed
  transaction. Honest peers drop the connection; it redials, and does it again.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Final

from chain.block import Block
from chain.certificate import vote_sign_bytes
from chain.encoding import H
from chain.keys import KeyPair
from node import p2p
from node.messages import NIL, Proposal, Vote

EQUIVOCATE_SHARE: Final = 0.3  # of its votes
GARBAGE_SHARE: Final = 0.2  # of its ticks
LIES: Final = ("state_root", "tx_root", "time", "prev_block_hash")
_VOTE, _TXS = int(p2p.MSG.VOTE), int(p2p.MSG.TXS)


class ByzantineValidator:
    def __init__(
        self, mode: str, key: KeyPair, chain_id: str, seed: int, transport: p2p.Transport, log: Any
    ) -> None:
        self.mode = mode
        self.key = key
        self.chain_id = chain_id
        self.rng = random.Random(seed)
        self.transport = transport
        self.log = log
        self.lies_told = 0

    # --- equivocate ---------------------------------------------------------------------------
    def broadcast(self, message: Proposal | Vote) -> bool:
        """Send an own consensus message its way; False: send it honestly."""
        if (
            self.mode != "equivocate"
            or not isinstance(message, Vote)
            or self.rng.random() >= EQUIVOCATE_SHARE
        ):
            return False
        other = self.conflicting(message)
        honest, lie = [_VOTE, message.to_wire()], [_VOTE, other.to_wire()]
        for pubkey in sorted(self.transport.peers):
            first, second = (honest, lie) if self.rng.random() < 0.5 else (lie, honest)
            self.transport.send(pubkey, first)
            self.transport.send(pubkey, second)
        self.lies_told += 1
        self.log.warning(
            "BYZANTINE: double vote at height %d round %d type %d",
            message.height,
            message.round,
            message.vote_type,
        )
        return True

    def conflicting(self, vote: Vote) -> Vote:
        """The same vote for another value, signed with the same key."""
        block_hash = (
            H(b"leaf", b"equivocation:%d:%d" % (vote.height, vote.round)) if vote.block_hash == NIL else NIL
        )
        sig = self.key.sign(
            vote_sign_bytes(self.chain_id, vote.vote_type, vote.height, vote.round, block_hash)
        )
        return Vote(vote.vote_type, vote.height, vote.round, block_hash, vote.validator, sig)

    # --- invalid_block ------------------------------------------------------------------------
    def wrap_app(self, app: Any) -> None:
        """Make ``app.propose`` return a block with a lie that ``app`` itself accepts."""
        if self.mode != "invalid_block":
            return
        honest_propose = app.propose

        def propose(height: int, round_: int) -> tuple[bytes, Any]:
            block_hash, encoded = honest_propose(height, round_)
            block, result = app._blocks[block_hash], app._results[block_hash]
            lie = LIES[self.lies_told % len(LIES)]
            bad = Block(self.corrupt(block.header, lie), block.txs, block.last_commit)
            bad_hash = bad.hash()
            app._blocks[bad_hash], app._results[bad_hash] = bad, result
            self.lies_told += 1
            self.log.warning("BYZANTINE: proposing height %d round %d with a false %s", height, round_, lie)
            return bad_hash, bad.encode()

        app.propose = propose

    @staticmethod
    def corrupt(header: Any, lie: str) -> Any:
        if lie == "time":
            return dataclasses.replace(header, time_ms=header.time_ms + 3_600_000)
        return dataclasses.replace(header, **{lie: H(b"leaf", b"lie:" + getattr(header, lie))})

    # --- garbage ------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.mode != "garbage" or not self.transport.peers or self.rng.random() >= GARBAGE_SHARE:
            return
        pubkey = self.rng.choice(sorted(self.transport.peers))
        peer = self.transport.peers[pubkey]
        kind = self.rng.randrange(4)
        if kind == 0:  # a frame that does not decode
            body = bytes([0xC1]) + self.rng.randbytes(self.rng.randrange(1, 64))
            peer.writer.write(len(body).to_bytes(p2p.HEADER_BYTES, "big") + body)
        elif kind == 1:  # a length beyond any frame
            peer.writer.write((2**32 - 1).to_bytes(p2p.HEADER_BYTES, "big"))
        elif kind == 2:  # a vote that is not one
            self.transport.send(pubkey, [_VOTE, ["junk", self.rng.randrange(2**32)]])
        else:  # a transaction that does not decode
            self.transport.send(pubkey, [_TXS, [self.rng.randbytes(40)]])
        self.lies_told += 1
        self.log.warning("BYZANTINE: sent garbage (kind %d) to %s", kind, pubkey.hex()[:12])
