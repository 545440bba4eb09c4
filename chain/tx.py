"""Transactions: the unsigned body, its signatures, and the checks that need no state.

Wire form of a signed transaction (one msgpack array)::

    [[chain_id, sender, nonce, contract, method, args, valid_until_height],
     [[pubkey, signature], ...]]

The tx hash is ``H("tx", encode(body))``; every signature signs that hash. ``valid_until_height``
0 means the transaction does not expire (replay is still impossible: nonces are per sender and
strictly sequential).

The tx hash leaves the signatures out (it is what they sign, and the tx's id), so a block commits
to them through its ``tx_root`` instead: ``compute_tx_root`` is over the whole signed encodings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from chain.encoding import H, decode, encode, encode_trusted, is_plain_list, unpack_unchecked
from chain.errors import EncodingError, InvalidTransaction
from chain.ids import is_valid_id
from chain.keys import PUBKEY_BYTES, SIGNATURE_BYTES, KeyPair
from chain.limits import (
    CHAIN_ID_CHARS_MAX,
    ENCODED_DEPTH_MAX,
    NAME_CHARS_MAX,
    TX_BYTES_MAX,
    TX_SIGNATURES_MAX,
)
from chain.merkle import list_root

NONCE_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Tx:
    """The signed part of a transaction."""

    chain_id: str
    sender: str
    nonce: int
    contract: str
    method: str
    args: list[Any]
    valid_until_height: int

    def to_wire(self) -> list[Any]:
        return [
            self.chain_id,
            self.sender,
            self.nonce,
            self.contract,
            self.method,
            self.args,
            self.valid_until_height,
        ]

    def digest(self) -> bytes:
        """The tx hash: what every signature signs."""
        return H(b"tx", encode(self.to_wire()))

    def sign(self, keys: list[KeyPair]) -> SignedTx:
        """Sign with each of ``keys`` (as many as the sender's policy needs)."""
        digest = self.digest()
        sigs = tuple((k.public, k.sign(digest)) for k in keys)
        return SignedTx(self, sigs, digest)


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A transaction with its signatures; ``hash`` is the tx hash (computed once)."""

    tx: Tx
    signatures: tuple[tuple[bytes, bytes], ...]
    hash: bytes
    # The canonical encoding, once known (decoded from it, or encoded once): the tx root, the
    # mempool and the block's bytes all need it. Not an init field, so a changed copy starts
    # without it.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def to_wire(self) -> list[Any]:
        return [self.tx.to_wire(), [[p, s] for p, s in self.signatures]]

    def encode(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = encode_trusted(self.to_wire())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> SignedTx:
        """Decode and structurally check a signed tx (no state, no signature check)."""
        stx = _decode_canonical(data)
        if stx is not None:
            return stx
        try:
            wire = decode(data, max_bytes=TX_BYTES_MAX)
        except EncodingError as exc:
            raise InvalidTransaction("tx_malformed", exc.message) from exc
        return cls.from_wire(wire, decoded=True)

    @classmethod
    def from_wire(cls, wire: Any, *, decoded: bool = False) -> SignedTx:
        """Build from a decoded array, checking every field's type and bound.

        ``decoded``: ``wire`` came straight from ``chain.encoding.decode`` (of this tx or of a
        block holding it), which has already checked every value in it; the body is then
        encoded for its hash without walking it a second time (same bytes either way).

        Raises InvalidTransaction with code ``tx_malformed`` naming the field, or
        ``too_many_signatures``.
        """
        body, pairs = _checked_fields(wire)
        try:
            digest = H(b"tx", encode_trusted(body) if decoded else encode(body))
        except EncodingError as exc:
            raise InvalidTransaction("tx_malformed", exc.message) from exc
        return cls(Tx(*body), pairs, digest)


def compute_tx_root(txs: Sequence[SignedTx]) -> bytes:
    """A block header's ``tx_root``: the list root (``chain/merkle``) of each signed tx's
    encoding, body and signatures, in block order.

    Why the signed bytes and not the tx hashes: a tx hash leaves the signatures out, so a root of
    hashes would let a history carry another valid signature set (another 2 of a 3-key policy)
    under the same block hash. Over the signed bytes, the block hash commits to who signed.
    """
    return list_root([t.encode() for t in txs])


# A signed tx's encoding starts with these two bytes: an array of 2, then its body, an array of 7.
_SIGNED_TX_HEAD: Final = b"\x92\x97"
# The body is at depth 1 of the signed tx and its arguments at depth 2, so the lists inside the
# arguments may nest two levels less deep than in a whole encoded value.
_ARGS_LEVELS: Final = ENCODED_DEPTH_MAX - 2


def _decode_canonical(data: bytes) -> SignedTx | None:
    """``SignedTx.decode`` of well-formed input, at about half the cost; None means "not sure",
    and the caller then runs the full decode, which accepts or refuses exactly as it always did.

    Why it is the same: the field checks leave only the arguments to test for floats and depth;
    and the input is the canonical encoding exactly when it is the array header followed by the
    body's and the signatures' own canonical encodings (msgpack writes an array as its header
    and then its items). So the body's bytes, which the tx hash covers, come out of that test
    and need not be encoded a second time (they were, before: ~24 us a settle tx, now ~10).
    """
    if type(data) is not bytes or not data.startswith(_SIGNED_TX_HEAD):
        return None
    try:
        wire = unpack_unchecked(data, TX_BYTES_MAX)
        body, pairs = _checked_fields(wire)
    except (EncodingError, InvalidTransaction):
        return None
    if not is_plain_list(body[5], _ARGS_LEVELS):
        return None
    body_bytes = encode_trusted(body)
    if data != b"\x92" + body_bytes + encode_trusted(wire[1]):
        return None
    stx = SignedTx(Tx(*body), pairs, H(b"tx", body_bytes))
    object.__setattr__(stx, "_encoded", data)
    return stx


def _checked_fields(wire: Any) -> tuple[list[Any], tuple[tuple[bytes, bytes], ...]]:
    """The body and (pubkey, signature) pairs of a decoded signed tx, each field checked.

    Raises InvalidTransaction ``tx_malformed`` naming the field, or ``too_many_signatures``.
    """
    if type(wire) is not list or len(wire) != 2:
        raise InvalidTransaction("tx_malformed", "a signed tx is [body, signatures]")
    body, sigs = wire
    if type(body) is not list or len(body) != 7:
        raise InvalidTransaction("tx_malformed", "the tx body has 7 fields")
    chain_id, sender, nonce, contract, method, args, valid_until = body
    _require(type(chain_id) is str and 0 < len(chain_id) <= CHAIN_ID_CHARS_MAX, "chain_id")
    _require(is_valid_id(sender), "sender")
    _require(type(nonce) is int and 1 <= nonce <= NONCE_MAX, "nonce")
    _require(type(contract) is str and 0 < len(contract) <= NAME_CHARS_MAX, "contract")
    _require(type(method) is str and 0 < len(method) <= NAME_CHARS_MAX, "method")
    _require(type(args) is list, "args")
    _require(type(valid_until) is int and 0 <= valid_until <= NONCE_MAX, "valid_until_height")
    if type(sigs) is not list or not sigs:
        raise InvalidTransaction("tx_malformed", "signatures must be a non-empty list")
    if len(sigs) > TX_SIGNATURES_MAX:
        raise InvalidTransaction(
            "too_many_signatures", f"{len(sigs)} signatures; at most {TX_SIGNATURES_MAX}"
        )
    pairs = []
    for pair in sigs:
        _require(
            type(pair) is list
            and len(pair) == 2
            and type(pair[0]) is bytes
            and len(pair[0]) == PUBKEY_BYTES
            and type(pair[1]) is bytes
            and len(pair[1]) == SIGNATURE_BYTES,
            "signatures",
        )
        pairs.append((pair[0], pair[1]))
    return body, tuple(pairs)


def _require(ok: bool, field: str) -> None:
    if not ok:
        raise InvalidTransaction("tx_malformed", f"field {field} is missing or of the wrong type")
