"""``encoding.json`` and ``hashing.json``: the canonical msgpack subset (PROTOCOL section 1) and the
domain-tagged hash (section 2), each case computed by ``chain.encoding`` itself.

The canonical cases sit on every width boundary of msgpack (fixint/uint8/.../uint64, the negative
forms, fixstr/str8/str16, bin8/bin16, fixarray/array16), because an implementation that picks a
form by a wrong bound still agrees on every value away from it. The non-canonical cases (every
input a decoder must refuse) and the unencodable values record the error code that
``chain.encoding.decode`` or ``encode`` gives, read from the code, not assumed.
"""

from __future__ import annotations

from typing import Any

from chain.encoding import TAGS, H, decode, encode
from chain.errors import EncodingError
from cli.vectors.notation import to_json


def _deep(levels: int) -> list[Any]:
    """An empty array inside arrays: ``levels`` arrays in all."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


# (name, value): every msgpack form the canonical subset uses, at both sides of each boundary.
_CANONICAL: list[tuple[str, Any]] = [
    ("nil", None),
    ("false", False),
    ("true", True),
    ("int 0", 0),
    ("int 127: positive fixint, largest", 127),
    ("int 128: uint 8, smallest", 128),
    ("int 255: uint 8, largest", 255),
    ("int 256: uint 16, smallest", 256),
    ("int 65535: uint 16, largest", 65535),
    ("int 65536: uint 32, smallest", 65536),
    ("int 2^32-1: uint 32, largest", 2**32 - 1),
    ("int 2^32: uint 64, smallest", 2**32),
    ("int 2^63: uint 64 beyond int 64", 2**63),
    ("int 2^64-1: uint 64, largest", 2**64 - 1),
    ("int -1: negative fixint", -1),
    ("int -32: negative fixint, smallest", -32),
    ("int -33: int 8, largest", -33),
    ("int -128: int 8, smallest", -128),
    ("int -129: int 16, largest", -129),
    ("int -32768: int 16, smallest", -32768),
    ("int -32769: int 32, largest", -32769),
    ("int -2^31: int 32, smallest", -(2**31)),
    ("int -2^31-1: int 64, largest", -(2**31) - 1),
    ("int -2^63: int 64, smallest", -(2**63)),
    ("bytes empty: bin 8", b""),
    ("bytes 1", b"\x00"),
    ("bytes 32: a hash", bytes(range(32))),
    ("bytes 255: bin 8, largest", b"\xab" * 255),
    ("bytes 256: bin 16, smallest", b"\xcd" * 256),
    ("text empty: fixstr", ""),
    ("text ascii", "clearchain"),
    ("text utf-8: two-byte and four-byte characters", "é€𝄞"),
    ("text 31 bytes: fixstr, largest", "a" * 31),
    ("text 32 bytes: str 8, smallest", "b" * 32),
    ("text 255 bytes: str 8, largest", "c" * 255),
    ("text 256 bytes: str 16, smallest", "d" * 256),
    ("text that looks like bytes stays text", "00ff"),
    ("array empty", []),
    ("array of each scalar", [None, True, 1, -1, b"\x01", "x"]),
    ("array 15: fixarray, largest", list(range(15))),
    ("array 16: array 16, smallest", list(range(16))),
    ("array nested", [[], [[]], [1, [2, [3]]]]),
    ("array 16 levels deep: the deepest allowed", _deep(16)),
    ("array of empty values", [b"", "", [], 0, None]),
]

# (name, encoded hex): bytes that decode must refuse. The code is read from chain.encoding.
_REFUSED: list[tuple[str, str]] = [
    ("empty input", ""),
    ("truncated array", "9201"),
    ("truncated bin", "c40561"),
    ("trailing bytes after a value", "0102"),
    ("two values", "c0c0"),
    ("reserved byte 0xc1", "c1"),
    ("5 as uint 8", "cc05"),
    ("5 as uint 16", "cd0005"),
    ("255 as uint 16", "cd00ff"),
    ("5 as uint 64", "cf0000000000000005"),
    ("5 as int 8", "d005"),
    ("-1 as int 8", "d0ff"),
    ("-1 as int 64", "d3ffffffffffffffff"),
    ("200 as int 16 (signed form of a positive value)", "d100c8"),
    ("'a' as str 8", "d90161"),
    ("'a' as str 16", "da000161"),
    ("b'abc' as bin 16", "c50003616263"),
    ("[1] as array 16", "dc000101"),
    ("[] as array 32", "dd00000000"),
    ("float 32", "ca3f800000"),
    ("float 64", "cb3ff0000000000000"),
    ("float inside an array", "9201cb3ff8000000000000"),
    ("map, empty", "80"),
    ("map {1: 2}", "810102"),
    ("ext type, fixext 1", "d40100"),
    ("ext type of zero length", "c7000a"),
    ("text that is not UTF-8", "a1ff"),
    ("array header claiming 100,001 items", "dd000186a1"),
    ("array 17 levels deep", "91" * 16 + "90"),
]

# (name, value): values encode must refuse (notation can express them; floats and maps it cannot).
_UNENCODABLE: list[tuple[str, Any]] = [
    ("int 2^64: beyond uint 64", 2**64),
    ("int -2^63-1: beyond int 64", -(2**63) - 1),
    ("array 17 levels deep", _deep(17)),
]

# What each tag hashes, for the reader; PROTOCOL section 2 lists the same set.
_TAG_USES = {
    "tx": "tx hash: the body a signature signs (section 4)",
    "block": "block hash over the header (section 9)",
    "vote": "vote sign bytes (section 7)",
    "proposal": "proposal sign bytes (section 7)",
    "proposer": "proposer slot with unequal powers (section 7)",
    "validators": "validator set hash (section 7)",
    "commit": "commit certificate hash, last_commit_hash (section 8)",
    "key": "state-tree key path (section 10)",
    "value": "state-tree value digest (section 10)",
    "leaf": "state-tree leaf (section 10)",
    "node": "state-tree internal node (section 10)",
    "list_leaf": "ordered-list Merkle leaf: tx_root, receipts_root (section 6)",
    "list_node": "ordered-list Merkle node (section 6)",
    "receipt": "reserved: no structure is hashed under it today",
    "evidence": "reserved: no structure is hashed under it today",
    "handshake": "p2p handshake digest (section 14)",
}
_HASH_INPUTS = [b"", b"clearchain", bytes(range(100))]


def encoding_doc() -> dict[str, Any]:
    """encoding.json."""
    return {
        "about": (
            "docs/PROTOCOL.md section 1: canonical MessagePack. `canonical`: a value (typed notation, "
            "README.md) and its only encoding; decoding the hex gives the value back. `non_canonical`: hex "
            "that a decoder must refuse, with the error code (encoding_malformed, encoding_type, "
            "encoding_not_canonical). `unencodable`: values an encoder must refuse."
        ),
        "canonical": [
            {"name": name, "value": to_json(value), "encoded": encode(value).hex()}
            for name, value in _CANONICAL
        ],
        "non_canonical": [
            {"name": name, "encoded": data, "error": _decode_error(bytes.fromhex(data))}
            for name, data in _REFUSED
        ],
        "unencodable": [
            {"name": name, "value": to_json(value), "error": _encode_error(value)}
            for name, value in _UNENCODABLE
        ],
    }


def hashing_doc() -> dict[str, Any]:
    """hashing.json."""
    _check_tags()
    cases = [
        {"tag": tag, "data": data.hex(), "hash": H(tag.encode(), data).hex()}
        for tag in sorted(_TAG_USES)
        for data in _HASH_INPUTS
    ]
    return {
        "about": (
            "docs/PROTOCOL.md section 2: H(tag, data) = SHA-256(u8(len(tag)) || tag || data), for "
            "every tag in use. `tags`: each tag with the structures hashed under it; `cases`: tag "
            "(ASCII), data (hex), hash (hex)."
        ),
        "tags": [{"tag": tag, "prefix": _prefix(tag), "hashes": _TAG_USES[tag]} for tag in sorted(_TAG_USES)],
        "cases": cases,
    }


def _prefix(tag: str) -> str:
    return (bytes([len(tag)]) + tag.encode()).hex()


def _decode_error(data: bytes) -> str:
    try:
        decode(data)
    except EncodingError as exc:
        return exc.code
    raise AssertionError(f"{data.hex()} decodes; it belongs in the canonical cases")


def _encode_error(value: Any) -> str:
    try:
        encode(value)
    except EncodingError as exc:
        return exc.code
    raise AssertionError("the value encodes; it belongs in the canonical cases")


def _check_tags() -> None:
    """The tags described here are exactly chain.encoding's (a new tag needs a vector)."""
    if {t.encode() for t in _TAG_USES} != set(TAGS):
        raise AssertionError("hashing vectors and chain.encoding.TAGS disagree")
