"""Canonical msgpack encoding and domain-separated SHA-256: the one module for everything hashed
or signed.

Why so strict: every validator must derive the same bytes, hence the same hashes, from the same
value. So hashed structures are msgpack *arrays* of integers, byte strings, text, booleans and
nil; floats, maps and extension types are refused in both directions; decoding bounds every
length, refuses trailing bytes, and refuses any encoding that is not the shortest one (re-encoding
a decoded value must give back the input bytes).

Hashing: ``H(tag, data) = SHA-256(u8(len(tag)) || tag || data)``. The tag names the kind of object
(``tx``, ``block``, ``vote``, ``leaf`` ...), so that no object of one kind can be passed off as
another; the length byte keeps one tag from being a prefix of another.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgpack

from chain.errors import EncodingError
from chain.limits import ENCODED_BYTES_MAX, ENCODED_DEPTH_MAX, ENCODED_ITEMS_MAX

# Every domain tag in use; docs/PROTOCOL.md lists the same set. A tag outside it is a bug.
TAGS: Final = frozenset(
    {
        b"tx",  # transaction signing digest and tx hash
        b"block",  # block hash over the header
        b"vote",  # prevote / precommit sign bytes
        b"proposal",  # proposal sign bytes
        b"proposer",  # proposer selection with unequal voting power
        b"validators",  # validator set hash
        b"commit",  # commit certificate hash (last_commit_hash)
        b"key",  # state-tree key path: H("key", state_key)
        b"value",  # state-tree value digest
        b"leaf",  # state-tree leaf
        b"node",  # state-tree internal node
        b"list_leaf",  # ordered-list Merkle leaf (tx root, receipts root)
        b"list_node",  # ordered-list Merkle node
        b"receipt",  # receipt digest
        b"evidence",  # equivocation evidence
        b"handshake",  # p2p challenge
    }
)

_PREFIX: Final = {tag: bytes([len(tag)]) + tag for tag in TAGS}

Value = None | bool | int | bytes | str | list["Value"] | tuple["Value", ...]

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def H(tag: bytes, data: bytes) -> bytes:
    """Domain-separated SHA-256 digest (32 bytes) of ``data`` under ``tag``."""
    return hashlib.sha256(_PREFIX[tag] + data).digest()


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically.

    Raises EncodingError (code ``encoding_type``) for a float, map, set or any other type outside
    nil/bool/int/bytes/str/array, for an integer outside msgpack's range, and for too deep or too
    large a value.
    """
    _check(value, 0)
    return msgpack.packb(value, use_bin_type=True)


def check_value(value: Any) -> None:
    """Raise EncodingError unless ``value`` can be encoded canonically (the checks of encode)."""
    _check(value, 0)


def encode_trusted(value: Any) -> bytes:
    """Encode a value this process built from checked parts (the hot path skips the type walk).

    Only for values whose every leaf was produced by this code from decoded or validated input;
    the output is the same canonical bytes that ``encode`` gives.
    """
    return msgpack.packb(value, use_bin_type=True)


def decode(data: bytes, *, max_bytes: int = ENCODED_BYTES_MAX) -> Any:
    """Decode canonical bytes into a value (arrays come back as lists).

    Raises EncodingError: ``encoding_too_large`` (input over ``max_bytes``), ``encoding_malformed``
    (not msgpack, truncated, trailing bytes, bad UTF-8, ext types, maps), ``encoding_type``
    (floats), ``encoding_not_canonical`` (a longer form than needed).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError("encoding_malformed", f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise EncodingError("encoding_too_large", f"{len(data)} bytes exceeds {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=ENCODED_ITEMS_MAX,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise EncodingError("encoding_malformed", "trailing bytes after the value") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise EncodingError("encoding_malformed", f"not canonical msgpack: {exc}") from exc
    _check(value, 0)
    if msgpack.packb(value, use_bin_type=True) != bytes(data):
        raise EncodingError("encoding_not_canonical", "value is not in its shortest encoding")
    return value


def _check(value: Any, depth: int) -> None:
    """Refuse anything but nil/bool/int/bytes/str and arrays of them, within the bounds.

    Flat arrays are checked in one loop (the common case: state values, trade tickets); only
    nested arrays recurse.
    """
    kind = type(value)
    if kind is int:
        if value < _INT_MIN or value > _INT_MAX:
            raise EncodingError("encoding_type", f"integer {value} outside the 64-bit range")
    elif kind is bytes or kind is str or value is None or kind is bool:
        return
    elif kind is list or isinstance(value, tuple):
        if depth >= ENCODED_DEPTH_MAX:
            raise EncodingError("encoding_type", f"nesting deeper than {ENCODED_DEPTH_MAX}")
        for item in value:
            t = type(item)
            if t is int:
                if item < _INT_MIN or item > _INT_MAX:
                    raise EncodingError("encoding_type", f"integer {item} outside the 64-bit range")
            elif not (t is str or t is bytes or item is None or t is bool):
                _check(item, depth + 1)
    elif kind is float:
        raise EncodingError("encoding_type", "floats are not allowed; use integer minor units")
    else:
        raise EncodingError("encoding_type", f"type {kind.__name__} cannot be encoded")
