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
import importlib
import threading
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Final, Protocol

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

INT_MIN: Final = -(2**63)  # the integers msgpack can hold
INT_MAX: Final = 2**64 - 1
_SCALAR_TYPES: Final = frozenset({int, str, bytes, bool, type(None)})
_PLAIN_TYPES: Final = _SCALAR_TYPES | {list}


# One msgpack Packer per thread. ``msgpack.packb`` builds a new Packer on every call, which was
# about two thirds of the cost of encoding a small state value (0.77 us of packb vs 0.33 us);
# the bytes are the same. A Packer is not safe to share between threads (the node's tests run it
# in a thread beside a client), hence thread-local. After a failed pack it resets its buffer.
_local = threading.local()


def _pack(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)``: same bytes, same exceptions."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(value)  # msgpack is untyped
    return packed


class _Digest(Protocol):
    def digest(self) -> bytes: ...


# CPython's own SHA-256 has less per-call overhead than OpenSSL 3 on one- or two-block inputs.
# Imported by name at run time: the module is absent from Python 3.12 on (and so from the type
# stubs there), and this way needs no type: ignore on either version.
try:
    short_sha256: Callable[[bytes], _Digest] = importlib.import_module("_sha256").sha256
except ImportError:  # pragma: no cover - Python 3.12+ or a build without it
    short_sha256 = hashlib.sha256
# Below this many bytes _sha256 is faster (measured: 0.8 vs 1.4 us at 40 bytes, equal at 200,
# twice as slow at 1,000): tree leaves, list-root nodes, tx bodies. Same digest either way.
SHORT_INPUT_BYTES: Final = 112


def H(tag: bytes, data: bytes) -> bytes:
    """Domain-separated SHA-256 digest (32 bytes) of ``data`` under ``tag``."""
    message = _PREFIX[tag] + data
    if len(message) < SHORT_INPUT_BYTES:
        return short_sha256(message).digest()
    return hashlib.sha256(message).digest()


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically.

    Raises EncodingError (code ``encoding_type``) for a float, map, set or any other type outside
    nil/bool/int/bytes/str/array, for an integer outside msgpack's range, and for too deep or too
    large a value.
    """
    _check(value, 0)
    return _pack(value)


def check_value(value: Any) -> None:
    """Raise EncodingError unless ``value`` can be encoded canonically (the checks of encode)."""
    _check(value, 0)


def encode_trusted(value: Any) -> bytes:
    """Encode a value this process built from checked parts (the hot path skips the type walk).

    Only for values whose every leaf was produced by this code from decoded or validated input;
    the output is the same canonical bytes that ``encode`` gives.
    """
    return _pack(value)


def encode_joined(encoded: Sequence[bytes]) -> bytes:
    """The encoding of an array from its items' encodings:
    ``encode_joined([encode_trusted(a), encode_trusted(b)]) == encode_trusted([a, b])``, since
    msgpack writes an array as its header followed by its items. Saves encoding items twice
    (a block's receipts: once for the receipts root, once for the store)."""
    n = len(encoded)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 0x10000:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(encoded)


def decode(data: bytes, *, max_bytes: int = ENCODED_BYTES_MAX) -> Any:
    """Decode canonical bytes into a value (arrays come back as lists).

    Raises EncodingError: ``encoding_too_large`` (input over ``max_bytes``), ``encoding_malformed``
    (not msgpack, truncated, trailing bytes, bad UTF-8, ext types, maps), ``encoding_type``
    (floats), ``encoding_not_canonical`` (a longer form than needed).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError("encoding_malformed", f"expected bytes, got {type(data).__name__}")
    value = unpack_unchecked(data, max_bytes)
    if type(value) is not list or not is_plain_list(value):
        _check(value, 0)  # refuses what the quick test could not accept, with the same error
    if _pack(value) != bytes(data):
        raise EncodingError("encoding_not_canonical", "value is not in its shortest encoding")
    return value


def unpack_unchecked(data: bytes | bytearray | memoryview, max_bytes: int) -> Any:
    """The first half of ``decode``: msgpack within the bounds, without the type and canonical
    checks, so a caller that knows the shape to expect can make them more cheaply (a signed tx).
    A value it returns is only safe once those checks pass.

    Raises EncodingError ``encoding_too_large`` or ``encoding_malformed`` as ``decode`` does.
    """
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
            # The length bounds above still let through an empty map and an empty ext type; the
            # hooks refuse those too, so every map and every ext is malformed, whatever its size.
            object_hook=_refuse_map,
            ext_hook=_refuse_ext,
        )
    except msgpack.ExtraData as exc:
        raise EncodingError("encoding_malformed", "trailing bytes after the value") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise EncodingError("encoding_malformed", f"not canonical msgpack: {exc}") from exc
    return value


def _refuse_map(_: object) -> None:
    raise ValueError("maps are not allowed")


def _refuse_ext(code: int, _: bytes) -> None:
    raise ValueError(f"extension type {code} is not allowed")


def is_plain_list(value: list[Any], levels: int = ENCODED_DEPTH_MAX) -> bool:
    """A quick test, for decoded values, that accepts only what ``_check`` accepts: a list of
    nil/bool/int/bytes/str and lists of them, nested at most ``levels`` deep (every list at
    depth d < levels, the outer one at depth 0). ``levels`` is less than ``ENCODED_DEPTH_MAX``
    for a list found that far inside the value being decoded (a signed tx's arguments).

    Why: decoding a block or a block's receipts walked tens of thousands of small lists one item
    at a time in ``_check``; here each nesting level is flattened and its types collected by C
    code (``chain``, ``map``, ``set``), so the Python work is per level, not per item.
    Integers are not range-checked: msgpack cannot hold one outside the 64-bit range, so this is
    only for values that ``msgpack.unpackb`` produced. A False answer means "not sure": the
    caller then runs ``_check``, which raises the exact error it always did.
    """
    level: list[Any] = [value]
    for _ in range(levels):
        items = list(chain.from_iterable(level))
        types = set(map(type, items))
        if types <= _SCALAR_TYPES:
            return True
        if not types <= _PLAIN_TYPES:
            return False  # a float, say: _check names it
        level = [item for item in items if type(item) is list]
    return False  # lists nested deeper than the bound: _check refuses them


def _check(value: Any, depth: int) -> None:
    """Refuse anything but nil/bool/int/bytes/str and arrays of them, within the bounds.

    Flat arrays are checked in one loop (the common case: state values, trade tickets); only
    nested arrays recurse.
    """
    kind = type(value)
    if kind is int:
        if value < INT_MIN or value > INT_MAX:
            raise EncodingError("encoding_type", f"integer {value} outside the 64-bit range")
    elif kind is bytes or kind is str or value is None or kind is bool:
        return
    elif kind is list or (isinstance(value, tuple) and kind is not msgpack.ExtType):
        if depth >= ENCODED_DEPTH_MAX:
            raise EncodingError("encoding_type", f"nesting deeper than {ENCODED_DEPTH_MAX}")
        for item in value:
            t = type(item)
            if t is int:
                if item < INT_MIN or item > INT_MAX:
                    raise EncodingError("encoding_type", f"integer {item} outside the 64-bit range")
            elif not (t is str or t is bytes or item is None or t is bool):
                _check(item, depth + 1)
    elif kind is float:
        raise EncodingError("encoding_type", "floats are not allowed; use integer minor units")
    else:
        raise EncodingError("encoding_type", f"type {kind.__name__} cannot be encoded")
