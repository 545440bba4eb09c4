"""Keys, key files and key policies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chain.errors import InvalidTransaction, KeyFileError
from chain.keys import KeyPair, read_key_file, verify_signature, write_key_file
from chain.policy import KeyPolicy


def test_sign_and_verify() -> None:
    key = KeyPair.generate()
    sig = key.sign(b"message")
    assert verify_signature(key.public, sig, b"message")
    assert not verify_signature(key.public, sig, b"messagE")
    assert not verify_signature(KeyPair.generate().public, sig, b"message")
    assert not verify_signature(key.public, sig[:-1] + bytes([sig[-1] ^ 1]), b"message")
    assert not verify_signature(key.public[:31], sig, b"message")


def test_dev_keys_are_deterministic_and_distinct() -> None:
    assert KeyPair.dev("a").public == KeyPair.dev("a").public
    assert KeyPair.dev("a").public != KeyPair.dev("b").public


def test_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "k"
    write_key_file(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_key_file(path).public == key.public
    with pytest.raises(KeyFileError) as err:
        write_key_file(path, key)
    assert err.value.code == "key_exists"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k"
    write_key_file(path, KeyPair.generate())
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as err:
        read_key_file(path)
    assert err.value.code == "key_permissions"


def test_missing_and_malformed_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as err:
        read_key_file(tmp_path / "none")
    assert err.value.code == "key_missing"
    bad = tmp_path / "bad"
    bad.write_text("not hex")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyFileError) as err:
        read_key_file(bad)
    assert err.value.code == "key_malformed"


def test_two_of_three_policy() -> None:
    user, wallet, recovery, stranger = (KeyPair.generate() for _ in range(4))
    policy = KeyPolicy.build(2, [user.public, wallet.public, recovery.public])
    digest = b"d" * 32
    policy.check([(user.public, user.sign(digest)), (recovery.public, recovery.sign(digest))], digest)
    cases = [
        ([(user.public, user.sign(digest))], "insufficient_signatures"),
        ([(user.public, user.sign(digest)), (user.public, user.sign(digest))], "duplicate_signer"),
        (
            [(user.public, user.sign(digest)), (stranger.public, stranger.sign(digest))],
            "signer_not_in_policy",
        ),
        ([(user.public, user.sign(digest)), (wallet.public, wallet.sign(b"e" * 32))], "bad_signature"),
    ]
    for sigs, code in cases:
        with pytest.raises(InvalidTransaction) as err:
            policy.check(sigs, digest)
        assert err.value.code == code


@pytest.mark.parametrize("threshold, count", [(0, 1), (3, 2), (1, 0), (1, 9)])
def test_bad_policies_are_refused(threshold: int, count: int) -> None:
    with pytest.raises(InvalidTransaction) as err:
        KeyPolicy.build(threshold, [KeyPair.dev(str(i)).public for i in range(count)])
    assert err.value.code == "bad_policy"
