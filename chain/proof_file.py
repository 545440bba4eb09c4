"""Offline proof files: the generic half of checking a state proof without trusting the node that
served it, given nothing but a trust anchor (a chain id and its genesis validator set).

Why in chain/: this is the protocol's proof maths and knows no contract. It walks the
validator-set changes from the anchor, checks a header's commit certificate for a quorum, checks
each state proof against the header's ``state_root``, and parses a proof file's JSON strictly.
What a file proves about which records (an account's balance: contracts/proofs.py) is the
business of the contract that owns those records. docs/PROOFS.md specifies the file.

Pure: no I/O, clock or randomness. Failures raise ``ProofError`` with a stable code
(``proof_malformed``, ``proof_chain``, ``proof_validator_path``, ``proof_validators``,
``proof_certificate``, ``proof_state``, ``proof_key``, ``proof_value``, ``proof_mismatch``;
meanings in docs/PROOFS.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from chain.block import Header
from chain.certificate import CommitCertificate
from chain.encoding import decode
from chain.errors import ClearchainError, EncodingError, InvalidBlock
from chain.genesis import Genesis
from chain.limits import ENCODED_BYTES_MAX
from chain.proof import verify_proof
from chain.validation import validate_certificate
from chain.validators import Validator, ValidatorSet

PROOF_FILE_BYTES_MAX = 16 * 1024 * 1024  # a proof file, read whole
VALIDATOR_PATH_STEPS_MAX = 1_024  # validator-set changes a file may walk through
HEX_CHARS_MAX = 2 * ENCODED_BYTES_MAX  # one hex field
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class ProofError(ClearchainError):
    """A proof that does not prove what it claims; ``code`` names the check that failed."""


# --- the evidence -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StateEntry:
    """One state key, its stored value (canonical msgpack; None = absent) and the encoded proof."""

    key: bytes
    value: bytes | None
    proof: bytes


@dataclass(frozen=True, slots=True)
class PathStep:
    """One validator-set change: the header whose ``next_validators_hash`` changed, its
    certificate (signed by the set trusted until then) and the new set (``[[pubkey, power]]``)."""

    header: bytes
    certificate: bytes
    validators: bytes


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """What the verifier trusts: a chain id and its genesis validator set (names for display)."""

    chain_id: str
    validators: ValidatorSet

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> TrustAnchor:
        return cls(genesis.chain_id, genesis.validators)


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """A header proven signed by the validator set trusted from the anchor."""

    header: Header
    block_hash: bytes
    certificate: CommitCertificate
    trusted: ValidatorSet


def verify_signed_header(
    anchor: Genesis | TrustAnchor,
    header: bytes,
    certificate: bytes,
    validators: bytes,
    path: tuple[PathStep, ...],
) -> SignedHeader:
    """Check that ``header`` is of the anchor's chain and certified by the validator set trusted
    from the anchor through ``path``. Raises ProofError (``proof_malformed``, ``proof_chain``,
    ``proof_validator_path``, ``proof_validators``, ``proof_certificate``)."""
    if isinstance(anchor, Genesis):
        anchor = TrustAnchor.from_genesis(anchor)
    h = decode_header(header, "header")
    if h.chain_id != anchor.chain_id:
        raise ProofError(
            "proof_chain", f"the header is for chain {h.chain_id!r}, the genesis for {anchor.chain_id!r}"
        )
    trusted = walk_validator_path(anchor, path, h.height)
    signers_set = decode_validator_set(validators, "validators")
    if signers_set.hash() != h.validators_hash:
        raise ProofError(
            "proof_validators",
            f"the validator set hashes to {signers_set.hash().hex()}, "
            f"the header's validators_hash is {h.validators_hash.hex()}",
        )
    if h.validators_hash != trusted.hash():
        raise ProofError(
            "proof_validators",
            f"height {h.height} was signed by set {h.validators_hash.hex()}, but the set trusted "
            f"from genesis{' after the path' if path else ''} is {trusted.hash().hex()}",
        )
    cert = decode_certificate(certificate, "certificate")
    block_hash = h.hash()
    try:
        validate_certificate(cert, anchor.chain_id, trusted, h.height, block_hash)
    except InvalidBlock as exc:
        raise ProofError("proof_certificate", f"{exc.code}: {exc.message}") from None
    return SignedHeader(h, block_hash, cert, trusted)


def signer_names(anchor: Genesis | TrustAnchor, cert: CommitCertificate) -> tuple[str, ...]:
    """The certificate's signers by the anchor's names, else the public key's first 16 hex digits."""
    validators = anchor.validators.validators
    names = {v.pubkey: v.name for v in validators}
    return tuple(names.get(k) or k.hex()[:16] for k, _ in cert.signatures)


def iso_time(time_ms: int) -> str:
    """A block time (ms since the Unix epoch, >= 0) as ISO 8601 UTC to the millisecond.

    Integer civil-calendar arithmetic (H. Hinnant's ``civil_from_days``), not ``datetime``: no
    clock in sight, and any uint from a file converts (a year past 9999 included) without error.
    """
    days, ms_of_day = divmod(time_ms, 86_400_000)
    seconds, ms = divmod(ms_of_day, 1000)
    z = days + 719_468
    era, doe = divmod(z, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return (
        f"{year:04d}-{month:02d}-{day:02d}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
        f"{seconds % 60:02d}.{ms:03d}Z"
    )


def header_fields(header: Header) -> dict[str, Any]:
    """The readable copy of a header: the API's form (bytes as hex, integers as numbers)."""
    return {f.name: _json_value(getattr(header, f.name)) for f in fields(header)}


def _json_value(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def entry_json(entry: StateEntry) -> dict[str, Any]:
    """A state entry's fields in a proof file (with its key as text, for a person to read)."""
    return {
        "key": entry.key.hex(),
        "key_text": entry.key.decode("utf-8", "replace"),
        "value": None if entry.value is None else entry.value.hex(),
        "proof": entry.proof.hex(),
    }


def path_json(path: Sequence[PathStep]) -> list[dict[str, Any]]:
    """The validator path's steps in a proof file."""
    return [
        {
            "height": decode_header(s.header, f"validator_path[{i}].header").height,
            "header": s.header.hex(),
            "certificate": s.certificate.hex(),
            "validators": s.validators.hex(),
        }
        for i, s in enumerate(path)
    ]


# --- reading ----------------------------------------------------------------------------------
def parse_proof_json(data: bytes) -> Any:
    """The decoded JSON of a proof file. Raises ProofError ``proof_malformed`` (too large, not
    JSON, a float or NaN anywhere, an integer of thousands of digits, nesting too deep)."""
    if len(data) > PROOF_FILE_BYTES_MAX:
        raise ProofError("proof_malformed", f"the file is over {PROOF_FILE_BYTES_MAX} bytes")
    try:
        return json.loads(data, parse_float=_refuse_number, parse_constant=_refuse_number)
    except (ValueError, RecursionError, _Refused) as exc:
        raise ProofError("proof_malformed", f"not a JSON proof document: {exc}") from None


class _Refused(Exception):
    pass


def _refuse_number(text: str) -> Any:
    raise _Refused(f"number {text} is not an integer")


# --- verifying --------------------------------------------------------------------------------
def walk_validator_path(anchor: TrustAnchor, path: tuple[PathStep, ...], height: int) -> ValidatorSet:
    """The validator set trusted at ``height``: the genesis set, moved along each change that
    the set trusted until then certified. Raises ProofError ``proof_validator_path``."""
    trusted = anchor.validators
    last = 0
    for i, step in enumerate(path):
        where = f"validator_path[{i}]"
        h = decode_header(step.header, f"{where}.header")
        if h.chain_id != anchor.chain_id:
            raise ProofError("proof_validator_path", f"{where}: header of chain {h.chain_id!r}")
        if not last < h.height < height:
            raise ProofError(
                "proof_validator_path",
                f"{where}: height {h.height} is not between {last} and the proven height {height}",
            )
        if h.validators_hash != trusted.hash():
            raise ProofError(
                "proof_validator_path",
                f"{where}: height {h.height} is signed by set {h.validators_hash.hex()}, "
                f"the trusted set is {trusted.hash().hex()}",
            )
        if h.next_validators_hash == trusted.hash():
            raise ProofError("proof_validator_path", f"{where}: height {h.height} changes no validator")
        cert = decode_certificate(step.certificate, f"{where}.certificate")
        try:
            validate_certificate(cert, anchor.chain_id, trusted, h.height, h.hash())
        except InvalidBlock as exc:
            raise ProofError("proof_validator_path", f"{where}: {exc.code}: {exc.message}") from None
        new = decode_validator_set(step.validators, f"{where}.validators")
        if new.hash() != h.next_validators_hash:
            raise ProofError(
                "proof_validator_path",
                f"{where}: the new set hashes to {new.hash().hex()}, "
                f"the header's next_validators_hash is {h.next_validators_hash.hex()}",
            )
        trusted, last = new, h.height
    return trusted


def check_state_entry(entry: StateEntry, expected_key: bytes, root: bytes, name: str) -> None:
    if entry.key != expected_key:
        raise ProofError("proof_key", f"{name}.key is {entry.key!r}, expected {expected_key.decode()!r}")
    try:
        wire = decode(entry.proof)
    except EncodingError as exc:
        raise ProofError("proof_malformed", f"{name}.proof: {exc.message}") from None
    if not verify_proof(root, entry.key, entry.value, wire):
        claim = "absent" if entry.value is None else f"= {entry.value.hex()}"
        raise ProofError(
            "proof_state",
            f"{name}: the proof does not show {expected_key.decode()} {claim} under state root {root.hex()}",
        )


def check_readable(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every readable copy must be what the evidence says, so that a person reading the file
    is never misled: ``expected`` is the document rebuilt from the evidence; compare field by
    field. Raises ProofError ``proof_mismatch``."""
    for name in sorted(set(doc) | set(expected)):
        if name not in doc or name not in expected:
            raise ProofError(
                "proof_mismatch", f"field {name} is {'missing' if name not in doc else 'unexpected'}"
            )
        found, want = doc[name], expected[name]
        if isinstance(want, dict) and isinstance(found, dict):
            for sub in sorted(set(found) | set(want)):
                seen, said = _canonical(found, sub), _canonical(want, sub)
                if seen != said:
                    raise ProofError("proof_mismatch", f"{name}.{sub} is {seen}; the evidence says {said}")
        elif _canonical(doc, name) != _canonical(expected, name):
            raise ProofError(
                "proof_mismatch",
                f"{name} is {_canonical(doc, name)}; the evidence says {_canonical(expected, name)}",
            )


def _canonical(obj: dict[str, Any], name: str) -> str:
    """``obj[name]`` as sorted-key JSON (so 1 and true differ), shortened for messages."""
    if name not in obj:
        return "absent"
    try:
        text = json.dumps(obj[name], sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return "not JSON"
    return text if len(text) <= 80 else text[:77] + "..."


# --- shapes -----------------------------------------------------------------------------------
def parse_path(doc: dict[str, Any]) -> tuple[PathStep, ...]:
    """The document's ``validator_path``, type-checked. Raises ProofError ``proof_malformed``."""
    path = field(doc, "validator_path", list, "")
    if len(path) > VALIDATOR_PATH_STEPS_MAX:
        raise ProofError("proof_malformed", f"validator_path has over {VALIDATOR_PATH_STEPS_MAX} steps")
    steps = []
    for i, step in enumerate(path):
        where = f"validator_path[{i}]"
        if not isinstance(step, dict):
            raise ProofError("proof_malformed", f"{where} must be an object")
        steps.append(
            PathStep(
                hex_field(step, "header", where),
                hex_field(step, "certificate", where),
                hex_field(step, "validators", where),
            )
        )
    return tuple(steps)


def parse_entry(doc: dict[str, Any], name: str) -> StateEntry:
    obj = field(doc, name, dict, "")
    value = None if obj.get("value", 0) is None else hex_field(obj, "value", name)
    return StateEntry(hex_field(obj, "key", name), value, hex_field(obj, "proof", name))


def field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    path = f"{where}.{name}" if where else name
    if name not in obj:
        raise ProofError("proof_malformed", f"{path} is missing")
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProofError("proof_malformed", f"{path} must be {'an' if kind is int else 'a'} {kind.__name__}")
    return value


def hex_field(obj: dict[str, Any], name: str, where: str) -> bytes:
    text = field(obj, name, str, where)
    if len(text) > HEX_CHARS_MAX or not _HEX.fullmatch(text):
        path = f"{where}.{name}" if where else name
        raise ProofError(
            "proof_malformed", f"{path} must be lower-case hex of at most {HEX_CHARS_MAX // 2} bytes"
        )
    return bytes.fromhex(text)


def decode_header(data: bytes, where: str) -> Header:
    try:
        return Header.from_wire(decode(data))
    except (EncodingError, InvalidBlock) as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None


def decode_certificate(data: bytes, where: str) -> CommitCertificate:
    try:
        return CommitCertificate.from_wire(decode(data))
    except (EncodingError, InvalidBlock) as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None


def decode_validator_set(data: bytes, where: str) -> ValidatorSet:
    """A set from ``[[pubkey, power], ...]``. Raises ProofError ``proof_malformed`` for bytes
    that are not a valid set (undecodable, a bad key or power, a key twice, too many)."""
    try:
        wire = decode(data)
    except EncodingError as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None
    if type(wire) is not list or not all(type(v) is list and len(v) == 2 for v in wire):
        raise ProofError("proof_malformed", f"{where}: a validator set is [[pubkey, power], ...]")
    try:
        return ValidatorSet.build([Validator(k, p) for k, p in wire])
    except InvalidBlock as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None


def decode_record(value: bytes | None, size: int, what: str) -> list[Any]:
    assert value is not None
    try:
        wire = decode(value)
    except EncodingError as exc:
        raise ProofError("proof_value", f"{what}: {exc.message}") from None
    if type(wire) is not list or len(wire) != size:
        raise ProofError("proof_value", f"{what} is not a record of {size} fields")
    return wire
