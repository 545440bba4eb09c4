"""``certificates.json``: the validator set hash, vote and proposal sign bytes, proposer selection
(PROTOCOL section 7), and commit certificates for block 1 of the vector chain, valid and invalid,
with the code ``chain.validation.validate_certificate`` gives (section 8).

Each invalid certificate breaks one rule and keeps every other, so the code names that rule.
"""

from __future__ import annotations

from typing import Any

from chain.certificate import PRECOMMIT, PREVOTE, CommitCertificate, proposal_sign_bytes, vote_sign_bytes
from chain.encoding import encode
from chain.errors import BlockRuleViolation
from chain.keys import KeyPair
from chain.validation import validate_certificate
from chain.validators import Validator, ValidatorSet
from cli.localnet import devnet
from cli.vectors.prim_chain import DevChain
from node.consensus import proposer_for


def certificates_doc(chain: DevChain) -> dict[str, Any]:
    """certificates.json, from ``chain`` after ``prim_chain.produce_blocks``."""
    validators = chain.genesis.validators
    chain_id = chain.genesis.chain_id
    block1 = chain.store.header(1)
    block2 = chain.store.header(2)
    assert block1 is not None and block2 is not None
    return {
        "about": (
            "docs/PROTOCOL.md sections 7 and 8. `validator_sets`: [[pubkey, power], ...] sorted by "
            "pubkey, its encoding and validators_hash, the proposer of some (height, round). "
            "`votes`: vote sign bytes (the encoded array and its hash) and one signed Vote wire; "
            "`proposals`: proposal sign bytes. `certificates`: CommitCertificate encodings checked "
            "for `height`/`block_hash` (block 1 of blocks.json) under the genesis validator set "
            "on `chain_id`, with their commit_hash and the result: `ok` or the code of the first "
            "failing rule."
        ),
        "validator_sets": [_set_json(validators), _set_json(_unequal_set())],
        "votes": _votes(chain_id, block1.hash()),
        "proposals": _proposals(chain_id, block1.hash()),
        "certificates": _certificates(chain_id, validators, block1.hash(), block2.hash()),
    }


def _unequal_set() -> ValidatorSet:
    return ValidatorSet.build(
        [
            Validator(KeyPair.dev(f"validator-{i}").public, power, f"validator-{i}")
            for i, power in enumerate((3, 5, 7, 25))
        ]
    )


def _set_json(validators: ValidatorSet) -> dict[str, Any]:
    rounds = [(1, 0), (1, 1), (2, 0), (5, 3), (100, 7), (2**32, 0)]
    return {
        "validators": [[v.pubkey.hex(), v.power] for v in validators.validators],
        "total_power": validators.total_power,
        "encoded": encode(validators.to_wire()).hex(),
        "validators_hash": validators.hash().hex(),
        "proposers": [
            {"height": h, "round": r, "proposer": proposer_for(validators, h, r).hex()} for h, r in rounds
        ],
    }


def _votes(chain_id: str, block_hash: bytes) -> list[dict[str, Any]]:
    cases = [
        ("prevote", PREVOTE, 1, 0, block_hash),
        ("precommit", PRECOMMIT, 1, 0, block_hash),
        ("nil prevote", PREVOTE, 1, 0, b""),
        ("nil precommit at round 3", PRECOMMIT, 1, 3, b""),
        ("precommit at a large height", PRECOMMIT, 2**40, 2, block_hash),
    ]
    signer = devnet.validator_key(0)
    out = []
    for name, vote_type, height, round_, target in cases:
        sign_bytes = vote_sign_bytes(chain_id, vote_type, height, round_, target)
        signature = signer.sign(sign_bytes)
        out.append(
            {
                "name": name,
                "chain_id": chain_id,
                "vote_type": vote_type,
                "height": height,
                "round": round_,
                "block_hash": target.hex(),
                "encoded": encode([chain_id, vote_type, height, round_, target]).hex(),
                "sign_bytes": sign_bytes.hex(),
                "validator": signer.key_id,
                "signature": signature.hex(),
                "vote_wire_encoded": encode(
                    [vote_type, height, round_, target, signer.public, signature]
                ).hex(),
            }
        )
    return out


def _proposals(chain_id: str, block_hash: bytes) -> list[dict[str, Any]]:
    out = []
    for name, height, round_, pol_round in [
        ("fresh proposal", 1, 0, -1),
        ("re-proposal of round 0", 1, 2, 0),
    ]:
        out.append(
            {
                "name": name,
                "chain_id": chain_id,
                "height": height,
                "round": round_,
                "block_hash": block_hash.hex(),
                "pol_round": pol_round,
                "encoded": encode([chain_id, height, round_, block_hash, pol_round]).hex(),
                "sign_bytes": proposal_sign_bytes(chain_id, height, round_, block_hash, pol_round).hex(),
            }
        )
    return out


def _certificates(
    chain_id: str, validators: ValidatorSet, block_hash: bytes, other_hash: bytes
) -> list[dict[str, Any]]:
    keys = sorted((devnet.validator_key(i) for i in range(4)), key=lambda k: k.public)
    outsider = KeyPair.dev("validator-9")

    def precommits(
        signers: list[KeyPair], *, height: int = 1, round_: int = 0, target: bytes = block_hash,
        vote_type: int = PRECOMMIT, signed_chain: str = chain_id,
    ) -> list[tuple[bytes, bytes]]:  # fmt: skip
        digest = vote_sign_bytes(signed_chain, vote_type, height, round_, target)
        return [(k.public, k.sign(digest)) for k in signers]

    def cert(
        sigs: list[tuple[bytes, bytes]], *, height: int = 1, round_: int = 0, target: bytes = block_hash
    ) -> CommitCertificate:
        return CommitCertificate(height, round_, target, tuple(sigs))

    three = precommits(keys[:3])
    tampered = [three[0], (three[1][0], bytes([three[1][1][0] ^ 1]) + three[1][1][1:]), three[2]]
    with_outsider = sorted(three + precommits([outsider]))
    cases: list[tuple[str, CommitCertificate]] = [
        ("all four validators", cert(precommits(keys))),
        ("three of four: 30 of 40 power", cert(three)),
        ("three of four at round 2", cert(precommits(keys[:3], round_=2), round_=2)),
        ("two of four: 20 of 40 power is not a quorum", cert(precommits(keys[:2]))),
        ("no signatures", cert([])),
        ("for another block", cert(precommits(keys[:3], target=other_hash), target=other_hash)),
        ("for another height", cert(precommits(keys[:3], height=2), height=2)),
        ("a signature changed", cert(tampered)),
        ("signed on another chain id", cert(precommits(keys[:3], signed_chain="clearchain-other"))),
        ("prevotes, not precommits", cert(precommits(keys[:3], vote_type=PREVOTE))),
        ("signed at another round than it claims", cert(precommits(keys[:3], round_=1))),
        ("entries not in ascending key order", cert([three[1], three[0], three[2]])),
        ("one validator twice", cert([three[0], three[0], three[1], three[2]])),
        ("a signer outside the validator set", cert(with_outsider)),
    ]
    out = []
    for name, certificate in cases:
        out.append(
            {
                "name": name,
                "chain_id": chain_id,
                "height": 1,
                "block_hash": block_hash.hex(),
                "encoded": encode(certificate.to_wire()).hex(),
                "commit_hash": certificate.hash().hex(),
                "result": _check(certificate, chain_id, validators, block_hash),
            }
        )
    return out


def _check(certificate: CommitCertificate, chain_id: str, validators: ValidatorSet, block_hash: bytes) -> str:
    try:
        validate_certificate(certificate, chain_id, validators, 1, block_hash)
    except BlockRuleViolation as exc:
        return exc.code
    return "ok"
