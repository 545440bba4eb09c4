"""docs/PROTOCOL.md's rules, written from the page alone, for the spec-only conformance verifier
(tests/test_conformance_primitives.py).

Why a separate implementation: the vectors are built by the chain's code, so checking them with
that code would prove nothing about the page. This module imports no ``chain``, ``contracts``,
``node`` or ``cli`` module (hashlib, msgpack and libsodium only), as a third party's verifier
would; where it needed something the page did not say, the page was fixed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgpack
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

ZERO = b"\x00" * 32
DEPTH_MAX = 16  # section 1: arrays nest at most 16 deep
ITEMS_MAX = 100_000
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # section 4
UINT63_MAX = 2**63 - 1


class Refused(Exception):
    """A rule refused the input; ``code`` is the stable code the page names."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- sections 1 and 2 ------------------------------------------------------------------------
def H(tag: str, data: bytes) -> bytes:
    return hashlib.sha256(bytes([len(tag)]) + tag.encode() + data).digest()


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _no_map(_: Any) -> None:
    raise ValueError("map")


def _no_ext(_: int, __: bytes) -> None:
    raise ValueError("ext")


def decode(data: bytes) -> Any:
    """Section 1, in its order: one msgpack value of the allowed types (``encoding_malformed``),
    no floats and no deeper nesting than allowed (``encoding_type``), then re-encoding gives the
    input back (``encoding_not_canonical``)."""
    try:
        value = msgpack.unpackb(
            data, raw=False, max_array_len=ITEMS_MAX, object_hook=_no_map, ext_hook=_no_ext
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # any parse failure
        raise Refused("encoding_malformed") from exc
    check_types(value, 0)
    if pack(value) != data:
        raise Refused("encoding_not_canonical")
    return value


def check_types(value: Any, depth: int) -> None:
    """What an encoder refuses too (``encoding_type``)."""
    if isinstance(value, float):
        raise Refused("encoding_type")
    if type(value) is int and not -(2**63) <= value <= 2**64 - 1:
        raise Refused("encoding_type")
    if isinstance(value, list):
        if depth >= DEPTH_MAX:
            raise Refused("encoding_type")
        for item in value:
            check_types(item, depth + 1)


def from_notation(doc: dict[str, Any]) -> Any:
    """docs/vectors/README.md's typed notation."""
    ((kind, item),) = doc.items()
    return {
        "nil": lambda: None,
        "bool": lambda: bool(item),
        "int": lambda: int(item),
        "bytes": lambda: bytes.fromhex(item),
        "text": lambda: str(item),
        "array": lambda: [from_notation(x) for x in item],
    }[kind]()


# --- section 3 -------------------------------------------------------------------------------
def verifies(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    if len(pubkey) != 32 or len(signature) != 64:
        return False
    try:
        crypto_sign_open(signature + message, pubkey)
    except (BadSignatureError, ValueError):
        return False
    return True


def policy_error(threshold: Any, keys: list[Any]) -> str | None:
    """``bad_policy`` unless 1-8 distinct 32-byte keys and 1 <= threshold <= len(keys)."""
    ok = (
        type(threshold) is int
        and 1 <= len(keys) <= 8
        and all(type(k) is bytes and len(k) == 32 for k in keys)
        and len(set(keys)) == len(keys)
        and 1 <= threshold <= len(keys)
    )
    return None if ok else "bad_policy"


def check_policy(threshold: int, keys: list[bytes], signatures: list[list[bytes]], digest: bytes) -> str:
    """Section 3's check, signature by signature in order, then the count."""
    seen: set[bytes] = set()
    for pubkey, signature in signatures:
        if pubkey not in keys:
            return "signer_not_in_policy"
        if pubkey in seen:
            return "duplicate_signer"
        if not verifies(pubkey, signature, digest):
            return "bad_signature"
        seen.add(pubkey)
    return "ok" if len(seen) >= threshold else "insufficient_signatures"


# --- sections 4 and 6 ------------------------------------------------------------------------
def signed_tx(data: bytes) -> list[Any]:
    """Section 4's structure of an encoded SignedTx: ``tx_malformed`` or ``too_many_signatures``."""
    try:
        wire = decode(data)
    except Refused as exc:
        raise Refused("tx_malformed") from exc
    if not (isinstance(wire, list) and len(wire) == 2 and isinstance(wire[0], list) and len(wire[0]) == 7):
        raise Refused("tx_malformed")
    (chain_id, sender, nonce, contract, method, args, valid_until), sigs = wire
    fields_ok = (
        _text(chain_id)
        and type(sender) is str
        and ID_RE.fullmatch(sender) is not None
        and type(nonce) is int
        and 1 <= nonce <= UINT63_MAX
        and _text(contract)
        and _text(method)
        and isinstance(args, list)
        and type(valid_until) is int
        and 0 <= valid_until <= UINT63_MAX
        and isinstance(sigs, list)
        and len(sigs) >= 1
    )
    if not fields_ok:
        raise Refused("tx_malformed")
    if len(sigs) > 8:
        raise Refused("too_many_signatures")
    for pair in sigs:
        if not (isinstance(pair, list) and len(pair) == 2 and _bin(pair[0], 32) and _bin(pair[1], 64)):
            raise Refused("tx_malformed")
    return wire


def _text(value: Any) -> bool:
    return type(value) is str and 1 <= len(value) <= 64


def _bin(value: Any, size: int) -> bool:
    return type(value) is bytes and len(value) == size


def list_root(items: list[bytes]) -> bytes:
    """Section 6."""
    if not items:
        return ZERO

    def root(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = 1 << ((len(hashes) - 1).bit_length() - 1)
        return H("list_node", root(hashes[:k]) + root(hashes[k:]))

    return root([H("list_leaf", x) for x in items])


# --- sections 7 and 8 ------------------------------------------------------------------------
def validators_hash(validators: list[list[Any]]) -> bytes:
    return H("validators", pack(sorted(validators)))


def proposer(validators: list[list[Any]], height: int, round_: int) -> bytes:
    """Section 7: round robin with equal powers, else the owner of a hashed slot."""
    ordered = sorted(validators)
    if len({power for _, power in ordered}) == 1:
        return ordered[(height + round_) % len(ordered)][0]
    slot = int.from_bytes(H("proposer", pack([height, round_]))[:8], "big") % sum(p for _, p in ordered)
    for pubkey, power in ordered:
        if slot < power:
            return pubkey
        slot -= power
    raise AssertionError("unreachable")


def vote_sign_bytes(chain_id: str, vote_type: int, height: int, round_: int, block_hash: bytes) -> bytes:
    return H("vote", pack([chain_id, vote_type, height, round_, block_hash]))


def check_certificate(
    cert: list[Any], chain_id: str, validators: list[list[Any]], height: int, block_hash: bytes
) -> str:
    """Section 8's rules in its order; the code of the first that fails, or ``ok``."""
    c_height, c_round, c_hash, entries = cert
    if c_height != height:
        return "certificate_height"
    if c_hash != block_hash:
        return "certificate_block"
    power_of = {pubkey: power for pubkey, power in validators}
    digest = vote_sign_bytes(chain_id, 2, c_height, c_round, c_hash)
    signed, previous = 0, b""
    for pubkey, signature in entries:
        if pubkey <= previous:
            return "certificate_order"
        previous = pubkey
        if pubkey not in power_of:
            return "certificate_signer"
        if not verifies(pubkey, signature, digest):
            return "certificate_signature"
        signed += power_of[pubkey]
    return "ok" if 3 * signed > 2 * sum(power_of.values()) else "certificate_quorum"


# --- section 10 ------------------------------------------------------------------------------
def kh(key: bytes) -> bytes:
    return H("key", key)


def leaf(key_hash: bytes, value_hash: bytes) -> bytes:
    return H("leaf", key_hash + value_hash)


def node_hash(bitmap: int, children: list[bytes]) -> bytes:
    return H("node", bitmap.to_bytes(2, "big") + b"".join(children))


def tree(items: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    """Section 10.2-10.3: the root and the stored records (nibble path -> encoded record)."""
    leaves = sorted((kh(k), H("value", v)) for k, v in items.items())
    records: dict[bytes, bytes] = {}
    if not leaves:
        return ZERO, records
    if len(leaves) == 1:
        records[b""] = pack(list(leaves[0]))
        return leaf(*leaves[0]), records
    return _node(b"", leaves, records)[0], records


def _node(path: bytes, leaves: list[tuple[bytes, bytes]], records: dict[bytes, bytes]) -> tuple[bytes, Any]:
    """(hash, record child form) of the slot at ``path`` holding ``leaves`` (at least one)."""
    if len(leaves) == 1:
        return leaf(*leaves[0]), list(leaves[0])
    depth = len(path)
    bitmap, hashes, record = 0, [], []
    for nibble in range(16):
        group = [x for x in leaves if int(x[0].hex()[depth], 16) == nibble]
        if group:
            bitmap |= 1 << nibble
            child_hash, form = _node(path + bytes([nibble]), group, records)
            hashes.append(child_hash)
            record.append(form)
    records[path] = pack([bitmap, *record])
    digest = node_hash(bitmap, hashes)
    return digest, digest


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Any) -> bool:
    """Section 10.4, rule by rule."""
    # 1. Types
    if not (_bin(root, 32) and type(key) is bytes and (value is None or type(value) is bytes)):
        return False
    if not (isinstance(proof, list) and len(proof) == 2 and isinstance(proof[0], list)):
        return False
    steps, terminal = proof
    if len(steps) > 64:
        return False
    for step in steps:
        if not (
            isinstance(step, list) and len(step) == 2 and type(step[0]) is int and isinstance(step[1], list)
        ):
            return False
        if not (1 <= step[0] <= 0xFFFF and all(_bin(s, 32) for s in step[1])):
            return False
    # 2. The terminal agrees with the claim
    if not (isinstance(terminal, list) and terminal and type(terminal[0]) is int):
        return False
    kind, key_hash = terminal[0], kh(key)
    nibbles = key_hash.hex()
    if kind == 1 and len(terminal) == 1 and value is not None:
        slot: bytes | None = leaf(key_hash, H("value", value))
    elif kind == 0 and len(terminal) == 1 and value is None:
        slot = None
    elif kind == 2 and len(terminal) == 3 and value is None:
        okh, ovh = terminal[1], terminal[2]
        if not (_bin(okh, 32) and _bin(ovh, 32)) or okh == key_hash:
            return False
        if okh.hex()[: len(steps)] != nibbles[: len(steps)]:
            return False
        slot = leaf(okh, ovh)
    else:
        return False
    # 3. No steps
    if not steps:
        return root == ZERO if slot is None else slot == root
    # 4. Up the steps
    for depth in range(len(steps) - 1, -1, -1):
        bitmap, siblings = steps[depth]
        n = int(nibbles[depth], 16)
        present = bool(bitmap >> n & 1)
        if present != (slot is not None):
            return False
        count = bin(bitmap).count("1")
        if len(siblings) != count - (1 if present else 0):
            return False
        if count == 1 and depth == len(steps) - 1 and slot is not None:
            return False  # a node whose only child is a leaf never exists
        children, rest = [], iter(siblings)
        for i in range(16):
            if bitmap >> i & 1:
                children.append(slot if i == n else next(rest))
        slot = node_hash(bitmap, children)  # type: ignore[arg-type]
    # 5.
    return slot == root
