"""Block headers and blocks.

Header wire form (the block hash is ``H("block", encode(header))``)::

    [chain_id, height, time_ms, prev_block_hash, tx_root, receipts_root, state_root,
     validators_hash, next_validators_hash, proposer, last_commit_hash]

Block wire form: ``[header, [signed tx, ...], last_commit]`` where last_commit is the commit
certificate of the previous block (nil at height 1, whose parent is genesis).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from chain.certificate import CommitCertificate
from chain.encoding import H, decode, encode, encode_trusted
from chain.errors import EncodingError, InvalidBlock, InvalidTransaction
from chain.limits import BLOCK_BYTES_MAX, BLOCK_TXS_MAX, CHAIN_ID_CHARS_MAX
from chain.tx import SignedTx

HASH_BYTES = 32
ZERO_HASH = b"\x00" * HASH_BYTES


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    time_ms: int
    prev_block_hash: bytes
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes
    last_commit_hash: bytes

    def to_wire(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_wire(cls, wire: Any) -> Header:
        """Structural check. Raises InvalidBlock ``header_malformed`` naming the field."""
        names = [f.name for f in fields(cls)]
        if type(wire) is not list or len(wire) != len(names):
            raise InvalidBlock("header_malformed", f"a header has {len(names)} fields")
        for name, value in zip(names, wire, strict=True):
            if name == "chain_id":
                ok = type(value) is str and 0 < len(value) <= CHAIN_ID_CHARS_MAX
            elif name in ("height", "time_ms"):
                ok = type(value) is int and value >= 0
            else:
                ok = type(value) is bytes and len(value) == HASH_BYTES
            if not ok:
                raise InvalidBlock("header_malformed", f"field {name} is of the wrong type")
        return cls(*wire)

    def hash(self) -> bytes:
        return H(b"block", encode(self.to_wire()))


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[SignedTx, ...]
    last_commit: CommitCertificate | None
    # The canonical bytes this block was decoded from, so that storing it does not re-encode
    # every transaction (decode proved that re-encoding gives exactly these bytes). Not an init
    # field, so ``dataclasses.replace`` (a changed block) starts without it.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return self.header.hash()

    def to_wire(self) -> list[Any]:
        return [
            self.header.to_wire(),
            [t.to_wire() for t in self.txs],
            None if self.last_commit is None else self.last_commit.to_wire(),
        ]

    def encode(self) -> bytes:
        if self._encoded is not None:
            return self._encoded
        return encode_trusted(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Block:
        """Decode and structurally check a block. Raises InvalidBlock ``block_malformed`` etc."""
        try:
            wire = decode(data, max_bytes=BLOCK_BYTES_MAX)
        except EncodingError as exc:
            raise InvalidBlock("block_malformed", exc.message) from exc
        block = cls.from_wire(wire, decoded=True)
        # to_wire(from_wire(wire)) == wire field for field, and decode checked that wire encodes
        # back to exactly ``data``: so ``data`` is this block's encoding.
        object.__setattr__(block, "_encoded", bytes(data))
        return block

    @classmethod
    def from_wire(cls, wire: Any, *, decoded: bool = False) -> Block:
        """Build from a decoded array, checking its structure (``decoded``: see SignedTx)."""
        if type(wire) is not list or len(wire) != 3 or type(wire[1]) is not list:
            raise InvalidBlock("block_malformed", "a block is [header, txs, last_commit]")
        header = Header.from_wire(wire[0])
        if len(wire[1]) > BLOCK_TXS_MAX:
            raise InvalidBlock("block_too_large", f"more than {BLOCK_TXS_MAX} transactions")
        txs = []
        for index, item in enumerate(wire[1]):
            try:
                txs.append(SignedTx.from_wire(item, decoded=decoded))
            except InvalidTransaction as exc:
                raise InvalidBlock(
                    "block_tx_malformed", f"tx {index} at height {header.height}: {exc.message}"
                ) from exc
        last_commit = None if wire[2] is None else CommitCertificate.from_wire(wire[2])
        return cls(header, tuple(txs), last_commit)
