"""Canonical encoding: round trips both ways, and every non-canonical input refused."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.encoding import TAGS, H, decode, encode
from chain.errors import EncodingError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)


@given(values)
def test_decode_inverts_encode(value: object) -> None:
    assert decode(encode(value)) == value


@given(values)
def test_encode_inverts_decode(value: object) -> None:
    data = encode(value)
    assert encode(decode(data)) == data


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        [1, 2.0],
        {"a": 1},
        {1, 2},
        [[[0.0]]],
        object(),
        msgpack.ExtType(1, b""),
        [msgpack.ExtType(1, b"")],
    ],
)
def test_encode_refuses_floats_maps_and_other_types(value: object) -> None:
    with pytest.raises(EncodingError) as err:
        encode(value)
    assert err.value.code == "encoding_type"


@pytest.mark.parametrize(
    "data, code",
    [
        (msgpack.packb(1.5), "encoding_type"),
        (msgpack.packb([1, 2.5]), "encoding_type"),
        (msgpack.packb({"a": 1}), "encoding_malformed"),
        (msgpack.packb(1) + b"\x00", "encoding_malformed"),  # trailing bytes
        (b"\x92\x01", "encoding_malformed"),  # truncated array
        (b"\xd9\x01\xff", "encoding_malformed"),  # invalid UTF-8
        (b"\xd4\x01\x00", "encoding_malformed"),  # ext type
        (b"\xc7\x00\x0a", "encoding_malformed"),  # ext type of zero length (once accepted)
        (b"\x80", "encoding_malformed"),  # the empty map (once encoding_type)
        (b"\xcd\x00\x05", "encoding_not_canonical"),  # 5 as uint16
        (b"\xd9\x01a", "encoding_not_canonical"),  # "a" as str8
        (b"\xdc\x00\x01\x01", "encoding_not_canonical"),  # [1] as array16
        (b"\xc4\x01a"[:2], "encoding_malformed"),
        (b"", "encoding_malformed"),
    ],
)
def test_decode_refuses_non_canonical_input(data: bytes, code: str) -> None:
    with pytest.raises(EncodingError) as err:
        decode(data)
    assert err.value.code == code


def test_decode_bounds_size_and_depth() -> None:
    with pytest.raises(EncodingError) as err:
        decode(encode(b"x" * 100), max_bytes=50)
    assert err.value.code == "encoding_too_large"
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(EncodingError):
        decode(msgpack.packb(deep))
    with pytest.raises(EncodingError):
        encode(deep)


@given(st.binary(max_size=64))
def test_decode_of_random_bytes_never_raises_anything_else(data: bytes) -> None:
    try:
        value = decode(data)
    except EncodingError:
        return
    assert encode(value) == data


def test_domain_tags_separate_kinds() -> None:
    digests = {H(tag, b"same bytes") for tag in TAGS}
    assert len(digests) == len(TAGS)
    # The length byte keeps a tag from being a prefix of tag + data.
    assert H(b"tx", b"x") != H(b"tx", b"") != H(b"tx", b"\x00")


def test_tag_rule_is_sha256_of_length_tag_data() -> None:
    import hashlib

    assert H(b"block", b"abc") == hashlib.sha256(b"\x05block" + b"abc").digest()
