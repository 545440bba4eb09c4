"""``keys.json``: dev keys, Ed25519 signatures and key policies (PROTOCOL section 3), computed by
``chain.keys`` and ``chain.policy``.

Ed25519 signing is deterministic (RFC 8032), so the signatures of fixed seeds over fixed messages
are fixed, and a file can hold them. The refused signatures are the ones implementations disagree
on when they do not use libsodium's rules: a non-canonical S, a small-order public key.
"""

from __future__ import annotations

from typing import Any

from chain.encoding import H, encode
from chain.errors import InvalidTransaction
from chain.keys import DEV_SEED_PREFIX, KeyPair, verify_signature
from chain.policy import KeyPolicy, policy_key
from chain.state import StateReader
from cli.localnet import devnet

# The group order of Ed25519: S + L is the same scalar as S, in a non-canonical form.
_ED25519_L = 2**252 + 27742317777372353535851937790883648493
# The neutral point (0, 1): a small-order public key, refused by libsodium.
_SMALL_ORDER_KEY = bytes([1]) + bytes(31)

# The digest the policy cases sign: a tx hash, as a transaction's signatures would.
POLICY_DIGEST = H(b"tx", encode(["clearchain-dev", "member-b", 1, "custody", "request_withdrawal", [], 0]))


def dev_key_names() -> list[str]:
    """Every key name of the dev genesis: the validators, then each participant's keys."""
    names = [f"validator-{i}" for i in range(4)]
    return names + [n for _, _, key_names in devnet.PARTICIPANTS.values() for n in key_names]


def keys_doc(genesis_state: StateReader) -> dict[str, Any]:
    """keys.json; ``genesis_state`` is the dev genesis's state (for the policy records)."""
    return {
        "about": (
            "docs/PROTOCOL.md section 3: Ed25519 keys and signatures (libsodium crypto_sign_open "
            "rules) and key policies. `dev_keys`: seed = SHA-256(seed_prefix || name), public = the "
            "Ed25519 public key of that seed. `signatures`: (public, message, signature) and whether "
            "it verifies. `policies`: [threshold, [keys sorted]] and its encoding; `genesis_policies`: "
            "the state record of each dev participant's policy, [threshold, keys, active]. "
            "`bad_policies`: refused with bad_policy. `policy_checks`: signature sets over `digest` "
            "and the result, `ok` or the code of the first failure."
        ),
        "seed_prefix": DEV_SEED_PREFIX.hex(),
        "dev_keys": [
            {"name": name, "seed": KeyPair.dev(name).seed.hex(), "public": KeyPair.dev(name).key_id}
            for name in dev_key_names()
        ],
        "signatures": _signature_cases(),
        "policies": _policies(),
        "genesis_policies": _genesis_policies(genesis_state),
        "bad_policies": _bad_policies(),
        "digest": POLICY_DIGEST.hex(),
        "policy_checks": _policy_checks(),
    }


def _signature_cases() -> list[dict[str, Any]]:
    alice, bob = KeyPair.dev("validator-0"), KeyPair.dev("xchg-alpha")
    cases: list[tuple[str, bytes, bytes, bytes]] = []
    for message in (b"", b"clearchain", POLICY_DIGEST):
        cases.append((f"{len(message)}-byte message", alice.public, message, alice.sign(message)))
    sig = bob.sign(POLICY_DIGEST)
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    cases += [
        ("another key's signature", bob.public, POLICY_DIGEST, sig),
        ("message changed", bob.public, POLICY_DIGEST[:-1] + b"\x00", sig),
        ("signature's R changed", bob.public, POLICY_DIGEST, bytes([sig[0] ^ 1]) + sig[1:]),
        ("signature's S changed", bob.public, POLICY_DIGEST, sig[:63] + bytes([sig[63] ^ 0x01])),
        ("non-canonical S (S + L)", bob.public, POLICY_DIGEST, r + (s + _ED25519_L).to_bytes(32, "little")),
        ("signed by another key", alice.public, POLICY_DIGEST, sig),
        ("small-order public key", _SMALL_ORDER_KEY, POLICY_DIGEST, _SMALL_ORDER_KEY + bytes(32)),
        ("all-zero signature", bob.public, POLICY_DIGEST, bytes(64)),
        ("signature of 63 bytes", bob.public, POLICY_DIGEST, sig[:63]),
        ("public key of 31 bytes", bob.public[:31], POLICY_DIGEST, sig),
    ]
    return [
        {
            "name": name,
            "public": public.hex(),
            "message": message.hex(),
            "signature": signature.hex(),
            "valid": verify_signature(public, signature, message),
        }
        for name, public, message, signature in cases
    ]


def _policy_of(participant: str) -> KeyPolicy:
    _, threshold, _ = devnet.PARTICIPANTS[participant]
    return KeyPolicy.build(threshold, [k.public for k in devnet.participant_keys(participant)])


def _policies() -> list[dict[str, Any]]:
    out = []
    for participant in ("member-b", "xchg-alpha"):
        policy = _policy_of(participant)
        out.append(
            {
                "name": participant,
                "threshold": policy.threshold,
                "keys": [k.hex() for k in policy.keys],
                "encoded": encode(policy.to_wire()).hex(),
            }
        )
    return out


def _genesis_policies(state: StateReader) -> list[dict[str, Any]]:
    out = []
    for participant in sorted(devnet.PARTICIPANTS):
        key = policy_key(participant)
        record = state.get_state(key)
        assert record is not None, f"no policy for {participant} in the dev genesis"
        out.append({"participant": participant, "state_key": key.hex(), "state_value": record.hex()})
    return out


def _bad_policies() -> list[dict[str, Any]]:
    k = [KeyPair.dev(f"policy-{i}").public for i in range(9)]
    cases: list[tuple[str, int, list[bytes]]] = [
        ("no keys", 1, []),
        ("nine keys", 1, k[:9]),
        ("a key listed twice", 1, [k[0], k[0]]),
        ("threshold 0", 0, k[:2]),
        ("threshold above the number of keys", 3, k[:2]),
        ("a key of 31 bytes", 1, [k[0][:31]]),
    ]
    out = []
    for name, threshold, keys in cases:
        out.append(
            {
                "name": name,
                "threshold": threshold,
                "keys": [x.hex() for x in keys],
                "error": _build_error(threshold, keys),
            }
        )
    return out


def _build_error(threshold: int, keys: list[bytes]) -> str:
    try:
        KeyPolicy.build(threshold, keys)
    except InvalidTransaction as exc:
        return exc.code
    raise AssertionError("the policy builds; it is not a bad one")


def _policy_checks() -> list[dict[str, Any]]:
    user, wallet, recovery = devnet.participant_keys("member-b")
    stranger = KeyPair.dev("validator-0")
    d = POLICY_DIGEST

    def good(key: KeyPair) -> tuple[bytes, bytes]:
        return key.public, key.sign(d)

    def bad(key: KeyPair) -> tuple[bytes, bytes]:
        return key.public, key.sign(d + b"other")

    cases: list[tuple[str, str, list[tuple[bytes, bytes]]]] = [
        ("2 of 3: user and wallet", "member-b", [good(user), good(wallet)]),
        ("2 of 3: wallet and user, other order", "member-b", [good(wallet), good(user)]),
        ("2 of 3: recovery and user", "member-b", [good(recovery), good(user)]),
        ("2 of 3: all three", "member-b", [good(user), good(wallet), good(recovery)]),
        ("2 of 3: one signature", "member-b", [good(user)]),
        ("2 of 3: no signature", "member-b", []),
        ("2 of 3: one key twice", "member-b", [good(user), good(user)]),
        ("2 of 3: a key outside the policy", "member-b", [good(user), good(stranger)]),
        ("2 of 3: a bad signature", "member-b", [good(user), bad(wallet)]),
        (
            "2 of 3: a bad signature before a stranger (first failure)",
            "member-b",
            [bad(user), good(stranger)],
        ),
        (
            "2 of 3: a stranger before a bad signature (first failure)",
            "member-b",
            [good(stranger), bad(user)],
        ),
        ("2 of 3: a bad signature then the same key twice", "member-b", [bad(user), good(user)]),
        ("1 of 1: its key", "xchg-alpha", [good(devnet.participant_keys("xchg-alpha")[0])]),
        (
            "1 of 1: its key and a stray valid signature",
            "xchg-alpha",
            [good(devnet.participant_keys("xchg-alpha")[0]), good(stranger)],
        ),
    ]
    return [
        {
            "name": name,
            "policy": policy,
            "signatures": [[p.hex(), s.hex()] for p, s in sigs],
            "result": _check_result(_policy_of(policy), sigs),
        }
        for name, policy, sigs in cases
    ]


def _check_result(policy: KeyPolicy, sigs: list[tuple[bytes, bytes]]) -> str:
    try:
        policy.check(sigs, POLICY_DIGEST)
    except InvalidTransaction as exc:
        return exc.code
    return "ok"
