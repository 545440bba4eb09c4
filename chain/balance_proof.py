"""Offline balance proofs: a self-contained file that shows what one clearing account held of one
asset at one height, checkable by anyone who holds nothing but the genesis document.

Why: a client, auditor or regulator must be able to check a balance without trusting the node
that served it and without running one. The file carries the evidence (state proofs, the block
header, its commit certificate and the validator set that signed it); the verifier trusts only
the genesis document's chain id and validator set (the trust anchor), walks any validator-set
changes from there, checks the certificate's signatures and quorum, then the state proofs against
the header's ``state_root``. docs/PROOFS.md specifies the file field by field.

Pure: no I/O, clock or randomness. ``parse_proof_json`` takes the file's bytes,
``verify_balance_proof`` the decoded document and the anchor, and either returns a
``BalanceProofResult`` or raises ``ProofError`` with a stable code:

- ``proof_malformed``    not a proof document: a missing field, a wrong type, bad hex, bytes that
                         do not decode, an unknown format, a file too large;
- ``proof_chain``        the header is for another chain than the genesis;
- ``proof_validator_path`` a step of the validator-set path does not follow from the trusted set;
- ``proof_validators``   the validator set does not hash to the header's ``validators_hash``, or is
                         not the set trusted from genesis;
- ``proof_certificate``  the certificate is not a quorum of valid precommits for this header;
- ``proof_key``          a state key is not the one for this account / asset;
- ``proof_state``        a state proof does not verify against the header's ``state_root``;
- ``proof_account``      the account does not exist at that height;
- ``proof_instrument``   the asset is not an instrument at that height;
- ``proof_value``        a proven value does not decode to its record ([available, locked] ...);
- ``proof_mismatch``     a readable copy in the file disagrees with the evidence.

``build_balance_proof`` assembles the document from the raw pieces (the prover, tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from chain.block import Header
from chain.certificate import CommitCertificate
from chain.display import format_amount
from chain.encoding import decode
from chain.errors import ClearchainError, EncodingError, InvalidBlock
from chain.genesis import ACCOUNT_KINDS, DECIMALS_MAX, Genesis
from chain.ids import is_valid_id
from chain.limits import AMOUNT_MAX, ENCODED_BYTES_MAX
from chain.proof import verify_proof
from chain.validators import Validator, ValidatorSet

FORMAT = "clearchain-balance-proof/1"
PROOF_FILE_BYTES_MAX = 16 * 1024 * 1024  # a proof file, read whole
VALIDATOR_PATH_STEPS_MAX = 1_024  # validator-set changes a file may walk through
HEX_CHARS_MAX = 2 * ENCODED_BYTES_MAX  # one hex field
ACCOUNT_PREFIX = "accounts/acct/"
BALANCE_PREFIX = "accounts/bal/"
INSTRUMENT_PREFIX = "instruments/"
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class ProofError(ClearchainError):
    """A balance proof that does not prove what it claims; ``code`` names the check that failed."""


def balance_key(account: str, asset: str) -> bytes:
    return f"{BALANCE_PREFIX}{account}/{asset}".encode()


def account_key(account: str) -> bytes:
    return f"{ACCOUNT_PREFIX}{account}".encode()


def instrument_key(asset: str) -> bytes:
    return f"{INSTRUMENT_PREFIX}{asset}".encode()


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
class AccountInfo:
    owner: str
    kind: str
    client: str | None
    status: str


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    kind: str
    decimals: int
    currency: str | None
    status: str


@dataclass(frozen=True, slots=True)
class BalanceProofResult:
    """What a verified file proves."""

    chain_id: str
    height: int
    block_hash: bytes
    time_ms: int
    state_root: bytes
    account: str
    account_info: AccountInfo
    asset: str
    decimals: int
    available: int
    locked: int
    present: bool  # False: the balance record is proven absent, i.e. a zero balance
    signed_power: int
    total_power: int
    signers: tuple[str, ...]  # names from the anchor, else the public key's first 16 hex digits
    validator_changes: int

    def statement(self) -> str:
        """One sentence saying exactly what was proven."""
        a = self.account_info
        whose = f"{a.kind} account of {a.owner}" + (f" for client {a.client}" if a.client else "")
        available = format_amount(self.available, self.decimals)
        locked = format_amount(self.locked, self.decimals)
        held = f"held {available} {self.asset} available and {locked} locked"
        if not self.present:
            held += " (no balance record: a zero balance, proven by absence)"
        trust = (
            f"; the validator set is trusted from genesis through {self.validator_changes} change(s)"
            if self.validator_changes
            else ""
        )
        return (
            f"account {self.account} ({whose}, {a.status}) {held} at height {self.height} "
            f"(block {self.block_hash.hex()}, time {iso_time(self.time_ms)}) of chain {self.chain_id}: "
            f"the state root {self.state_root.hex()} is signed by validators holding "
            f"{self.signed_power} of {self.total_power} power ({', '.join(self.signers)}){trust}"
        )

    def to_json(self) -> dict[str, Any]:
        a = self.account_info
        return {
            "ok": True, "chain_id": self.chain_id, "height": self.height,
            "block_hash": self.block_hash.hex(), "time_ms": self.time_ms, "state_root": self.state_root.hex(),
            "account": self.account, "owner": a.owner, "kind": a.kind, "client": a.client, "status": a.status,
            "asset": self.asset, "decimals": self.decimals, "available": self.available, "locked": self.locked,
            "present": self.present, "signed_power": self.signed_power, "total_power": self.total_power,
            "signers": list(self.signers), "validator_changes": self.validator_changes,
            "statement": self.statement(),
        }  # fmt: skip


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


# --- building ---------------------------------------------------------------------------------
def build_balance_proof(
    account: str,
    asset: str,
    *,
    balance: StateEntry,
    account_record: StateEntry,
    instrument: StateEntry,
    header: bytes,
    certificate: bytes,
    validators: bytes,
    validator_path: Sequence[PathStep] = (),
) -> dict[str, Any]:
    """The proof document (JSON-ready) from its evidence. Checks that each piece decodes and
    that the values are records of the right shape (ProofError), not the signatures: the
    verifier does that."""
    h = _header(header, "header")
    info = _account_info(account_record.value, account, h.height)
    ins = _instrument_info(instrument.value, asset, h.height)
    available, locked = _balance(balance.value)
    decimals = ins.decimals
    return {
        "format": FORMAT,
        "chain_id": h.chain_id,
        "account": account,
        "asset": asset,
        "height": h.height,
        "block_hash": h.hash().hex(),
        "time_ms": h.time_ms,
        "state_root": h.state_root.hex(),
        "balance": {
            **_entry_json(balance),
            "available": available,
            "locked": locked,
            "decimals": decimals,
            "available_display": format_amount(available, decimals),
            "locked_display": format_amount(locked, decimals),
        },
        "account_record": {
            **_entry_json(account_record),
            "owner": info.owner,
            "kind": info.kind,
            "client": info.client,
            "status": info.status,
        },
        "instrument": {
            **_entry_json(instrument),
            "kind": ins.kind,
            "decimals": ins.decimals,
            "currency": ins.currency,
            "status": ins.status,
        },
        "header": header.hex(),
        "header_fields": header_fields(h),
        "certificate": certificate.hex(),
        "validators": validators.hex(),
        "validator_path": [
            {
                "height": _header(s.header, f"validator_path[{i}].header").height,
                "header": s.header.hex(),
                "certificate": s.certificate.hex(),
                "validators": s.validators.hex(),
            }
            for i, s in enumerate(validator_path)
        ],
    }


def _entry_json(entry: StateEntry) -> dict[str, Any]:
    return {
        "key": entry.key.hex(),
        "key_text": entry.key.decode("utf-8", "replace"),
        "value": None if entry.value is None else entry.value.hex(),
        "proof": entry.proof.hex(),
    }


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
@dataclass(frozen=True, slots=True)
class _Evidence:
    account: str
    asset: str
    balance: StateEntry
    account_record: StateEntry
    instrument: StateEntry
    header: bytes
    certificate: bytes
    validators: bytes
    path: tuple[PathStep, ...]


def verify_balance_proof(doc: Any, anchor: Genesis | TrustAnchor) -> BalanceProofResult:
    """Check a decoded proof document against the trust anchor (a genesis document, or its chain
    id and validator set). Returns what it proves; raises ProofError (codes in the module
    docstring) at the first check that fails."""
    if isinstance(anchor, Genesis):
        anchor = TrustAnchor.from_genesis(anchor)
    ev = _parse_evidence(doc)
    header = _header(ev.header, "header")
    if header.chain_id != anchor.chain_id:
        raise ProofError(
            "proof_chain", f"the header is for chain {header.chain_id!r}, the genesis for {anchor.chain_id!r}"
        )
    trusted = _walk_validator_path(anchor, ev.path, header.height)
    signers_set = _validator_set(ev.validators, "validators")
    if signers_set.hash() != header.validators_hash:
        raise ProofError(
            "proof_validators",
            f"the validator set hashes to {signers_set.hash().hex()}, "
            f"the header's validators_hash is {header.validators_hash.hex()}",
        )
    if header.validators_hash != trusted.hash():
        raise ProofError(
            "proof_validators",
            f"height {header.height} was signed by set {header.validators_hash.hex()}, but the set trusted "
            f"from genesis{' after the path' if ev.path else ''} is {trusted.hash().hex()}",
        )
    cert = _certificate(ev.certificate, "certificate")
    block_hash = header.hash()
    try:
        cert.verify(anchor.chain_id, trusted, header.height, block_hash)
    except InvalidBlock as exc:
        raise ProofError("proof_certificate", f"{exc.code}: {exc.message}") from None
    root = header.state_root
    _check_state(ev.account_record, account_key(ev.account), root, "account_record")
    _check_state(ev.instrument, instrument_key(ev.asset), root, "instrument")
    _check_state(ev.balance, balance_key(ev.account, ev.asset), root, "balance")
    info = _account_info(ev.account_record.value, ev.account, header.height)
    ins = _instrument_info(ev.instrument.value, ev.asset, header.height)
    available, locked = _balance(ev.balance.value)
    _check_readable(doc, ev)
    names = {v.pubkey: v.name for v in anchor.validators.validators}
    return BalanceProofResult(
        chain_id=header.chain_id, height=header.height, block_hash=block_hash, time_ms=header.time_ms,
        state_root=root, account=ev.account, account_info=info, asset=ev.asset, decimals=ins.decimals,
        available=available, locked=locked, present=ev.balance.value is not None,
        signed_power=sum(trusted.power_of(k) for k, _ in cert.signatures), total_power=trusted.total_power,
        signers=tuple(names.get(k) or k.hex()[:16] for k, _ in cert.signatures),
        validator_changes=len(ev.path),
    )  # fmt: skip


def _walk_validator_path(anchor: TrustAnchor, path: tuple[PathStep, ...], height: int) -> ValidatorSet:
    """The validator set trusted at ``height``: the genesis set, moved along each change that
    the set trusted until then certified. Raises ProofError ``proof_validator_path``."""
    trusted = anchor.validators
    last = 0
    for i, step in enumerate(path):
        where = f"validator_path[{i}]"
        h = _header(step.header, f"{where}.header")
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
        cert = _certificate(step.certificate, f"{where}.certificate")
        try:
            cert.verify(anchor.chain_id, trusted, h.height, h.hash())
        except InvalidBlock as exc:
            raise ProofError("proof_validator_path", f"{where}: {exc.code}: {exc.message}") from None
        new = _validator_set(step.validators, f"{where}.validators")
        if new.hash() != h.next_validators_hash:
            raise ProofError(
                "proof_validator_path",
                f"{where}: the new set hashes to {new.hash().hex()}, "
                f"the header's next_validators_hash is {h.next_validators_hash.hex()}",
            )
        trusted, last = new, h.height
    return trusted


def _check_state(entry: StateEntry, expected_key: bytes, root: bytes, name: str) -> None:
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


def _check_readable(doc: dict[str, Any], ev: _Evidence) -> None:
    """Every readable copy must be what the evidence says, so that a person reading the file
    is never misled: rebuild the document from the evidence and compare field by field."""
    expected = build_balance_proof(
        ev.account, ev.asset, balance=ev.balance, account_record=ev.account_record,
        instrument=ev.instrument, header=ev.header, certificate=ev.certificate,
        validators=ev.validators, validator_path=ev.path,
    )  # fmt: skip
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
def _parse_evidence(doc: Any) -> _Evidence:
    """The evidence fields of the document, type-checked. Raises ProofError ``proof_malformed``."""
    if not isinstance(doc, dict):
        raise ProofError("proof_malformed", "a proof document is a JSON object")
    fmt = _field(doc, "format", str, "")
    if fmt != FORMAT:
        raise ProofError("proof_malformed", f"format {fmt[:80]!r} is not {FORMAT!r}")
    account = _field(doc, "account", str, "")
    asset = _field(doc, "asset", str, "")
    for name, value in (("account", account), ("asset", asset)):
        if not is_valid_id(value):
            raise ProofError("proof_malformed", f"{name} must be 1-64 of A-Z a-z 0-9 . _ : -")
    path = _field(doc, "validator_path", list, "")
    if len(path) > VALIDATOR_PATH_STEPS_MAX:
        raise ProofError("proof_malformed", f"validator_path has over {VALIDATOR_PATH_STEPS_MAX} steps")
    steps = []
    for i, step in enumerate(path):
        where = f"validator_path[{i}]"
        if not isinstance(step, dict):
            raise ProofError("proof_malformed", f"{where} must be an object")
        steps.append(
            PathStep(
                _hexfield(step, "header", where),
                _hexfield(step, "certificate", where),
                _hexfield(step, "validators", where),
            )
        )
    return _Evidence(
        account=account,
        asset=asset,
        balance=_entry(doc, "balance"),
        account_record=_entry(doc, "account_record"),
        instrument=_entry(doc, "instrument"),
        header=_hexfield(doc, "header", ""),
        certificate=_hexfield(doc, "certificate", ""),
        validators=_hexfield(doc, "validators", ""),
        path=tuple(steps),
    )


def _entry(doc: dict[str, Any], name: str) -> StateEntry:
    obj = _field(doc, name, dict, "")
    value = None if obj.get("value", 0) is None else _hexfield(obj, "value", name)
    return StateEntry(_hexfield(obj, "key", name), value, _hexfield(obj, "proof", name))


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    path = f"{where}.{name}" if where else name
    if name not in obj:
        raise ProofError("proof_malformed", f"{path} is missing")
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProofError("proof_malformed", f"{path} must be {'an' if kind is int else 'a'} {kind.__name__}")
    return value


def _hexfield(obj: dict[str, Any], name: str, where: str) -> bytes:
    text = _field(obj, name, str, where)
    if len(text) > HEX_CHARS_MAX or not _HEX.fullmatch(text):
        path = f"{where}.{name}" if where else name
        raise ProofError(
            "proof_malformed", f"{path} must be lower-case hex of at most {HEX_CHARS_MAX // 2} bytes"
        )
    return bytes.fromhex(text)


def _header(data: bytes, where: str) -> Header:
    try:
        return Header.from_wire(decode(data))
    except (EncodingError, InvalidBlock) as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None


def _certificate(data: bytes, where: str) -> CommitCertificate:
    try:
        return CommitCertificate.from_wire(decode(data))
    except (EncodingError, InvalidBlock) as exc:
        raise ProofError("proof_malformed", f"{where}: {exc.message}") from None


def _validator_set(data: bytes, where: str) -> ValidatorSet:
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


def _record(value: bytes | None, size: int, what: str) -> list[Any]:
    assert value is not None
    try:
        wire = decode(value)
    except EncodingError as exc:
        raise ProofError("proof_value", f"{what}: {exc.message}") from None
    if type(wire) is not list or len(wire) != size:
        raise ProofError("proof_value", f"{what} is not a record of {size} fields")
    return wire


def _account_info(value: bytes | None, account: str, height: int) -> AccountInfo:
    if value is None:
        raise ProofError("proof_account", f"there is no account {account} at height {height}")
    owner, kind, client, status, held = _record(value, 5, f"account {account}")
    ok = (
        type(owner) is str and kind in ACCOUNT_KINDS and (client is None or type(client) is str)
        and type(status) is str and type(held) is int
    )  # fmt: skip
    if not ok:
        raise ProofError("proof_value", f"account {account}: not [owner, kind, client, status, assets_held]")
    return AccountInfo(owner, kind, client, status)


def _instrument_info(value: bytes | None, asset: str, height: int) -> InstrumentInfo:
    if value is None:
        raise ProofError("proof_instrument", f"there is no instrument {asset} at height {height}")
    kind, decimals, currency, status = _record(value, 4, f"instrument {asset}")
    ok = (
        type(kind) is str and type(decimals) is int and 0 <= decimals <= DECIMALS_MAX
        and (currency is None or type(currency) is str) and type(status) is str
    )  # fmt: skip
    if not ok:
        raise ProofError("proof_value", f"instrument {asset}: not [kind, decimals, currency, status]")
    return InstrumentInfo(kind, decimals, currency, status)


def _balance(value: bytes | None) -> tuple[int, int]:
    """(available, locked); an absent record is a zero balance."""
    if value is None:
        return 0, 0
    available, locked = _record(value, 2, "balance")
    for amount in (available, locked):
        if type(amount) is not int or not 0 <= amount <= AMOUNT_MAX:
            raise ProofError("proof_value", f"balance: {amount!r} is not an amount 0..{AMOUNT_MAX}")
    return available, locked
