"""Offline balance proofs: a self-contained file that shows what one clearing account held of one
asset at one height, checkable by anyone who holds nothing but the genesis document.

Why: a client, auditor or regulator must be able to check a balance without trusting the node
that served it and without running one. The file carries the evidence (state proofs, the block
header, its commit certificate and the validator set that signed it); the verifier trusts only
the genesis document's chain id and validator set (the trust anchor), walks any validator-set
changes from there, checks the certificate's signatures and quorum, then the state proofs against
the header's ``state_root``. docs/PROOFS.md specifies the file field by field.

Why here: which keys a balance proof proves, and how their values decode, is the layout of the
accounts and instruments contracts, so this half lives with them (their key builders are used,
never a spelled prefix); the generic proof maths is chain/proof_file.py, which knows no contract.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.display import format_amount
from chain.genesis import ACCOUNT_KINDS, DECIMALS_MAX, Genesis
from chain.ids import is_valid_id
from chain.limits import AMOUNT_MAX
from chain.proof_file import (
    PROOF_FILE_BYTES_MAX,
    PathStep,
    ProofError,
    StateEntry,
    TrustAnchor,
    check_readable,
    check_state_entry,
    decode_header,
    decode_record,
    entry_json,
    field,
    header_fields,
    hex_field,
    iso_time,
    parse_entry,
    parse_path,
    parse_proof_json,
    path_json,
    signer_names,
    verify_signed_header,
)
from contracts.accounts import account_key, balance_key
from contracts.instruments import instrument_key

__all__ = [
    "FORMAT", "PROOF_FILE_BYTES_MAX", "AccountInfo", "BalanceProofResult", "InstrumentInfo", "PathStep",
    "ProofError", "StateEntry", "TrustAnchor", "account_key", "balance_key", "build_balance_proof",
    "instrument_key", "iso_time", "parse_proof_json", "verify_balance_proof",
]  # fmt: skip

FORMAT = "clearchain-balance-proof/1"


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
    h = decode_header(header, "header")
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
            **entry_json(balance),
            "available": available,
            "locked": locked,
            "decimals": decimals,
            "available_display": format_amount(available, decimals),
            "locked_display": format_amount(locked, decimals),
        },
        "account_record": {
            **entry_json(account_record),
            "owner": info.owner,
            "kind": info.kind,
            "client": info.client,
            "status": info.status,
        },
        "instrument": {
            **entry_json(instrument),
            "kind": ins.kind,
            "decimals": ins.decimals,
            "currency": ins.currency,
            "status": ins.status,
        },
        "header": header.hex(),
        "header_fields": header_fields(h),
        "certificate": certificate.hex(),
        "validators": validators.hex(),
        "validator_path": path_json(validator_path),
    }


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
    signed = verify_signed_header(anchor, ev.header, ev.certificate, ev.validators, ev.path)
    header, trusted = signed.header, signed.trusted
    root = header.state_root
    check_state_entry(ev.account_record, account_key(ev.account), root, "account_record")
    check_state_entry(ev.instrument, instrument_key(ev.asset), root, "instrument")
    check_state_entry(ev.balance, balance_key(ev.account, ev.asset), root, "balance")
    info = _account_info(ev.account_record.value, ev.account, header.height)
    ins = _instrument_info(ev.instrument.value, ev.asset, header.height)
    available, locked = _balance(ev.balance.value)
    expected = build_balance_proof(
        ev.account, ev.asset, balance=ev.balance, account_record=ev.account_record,
        instrument=ev.instrument, header=ev.header, certificate=ev.certificate,
        validators=ev.validators, validator_path=ev.path,
    )  # fmt: skip
    check_readable(doc, expected)
    cert = signed.certificate
    return BalanceProofResult(
        chain_id=header.chain_id, height=header.height, block_hash=signed.block_hash, time_ms=header.time_ms,
        state_root=root, account=ev.account, account_info=info, asset=ev.asset, decimals=ins.decimals,
        available=available, locked=locked, present=ev.balance.value is not None,
        signed_power=sum(trusted.power_of(k) for k, _ in cert.signatures), total_power=trusted.total_power,
        signers=signer_names(anchor, cert), validator_changes=len(ev.path),
    )  # fmt: skip


# --- shapes -----------------------------------------------------------------------------------
def _parse_evidence(doc: Any) -> _Evidence:
    """The evidence fields of the document, type-checked. Raises ProofError ``proof_malformed``."""
    if not isinstance(doc, dict):
        raise ProofError("proof_malformed", "a proof document is a JSON object")
    fmt = field(doc, "format", str, "")
    if fmt != FORMAT:
        raise ProofError("proof_malformed", f"format {fmt[:80]!r} is not {FORMAT!r}")
    account = field(doc, "account", str, "")
    asset = field(doc, "asset", str, "")
    for name, value in (("account", account), ("asset", asset)):
        if not is_valid_id(value):
            raise ProofError("proof_malformed", f"{name} must be 1-64 of A-Z a-z 0-9 . _ : -")
    path = parse_path(doc)
    return _Evidence(
        account=account,
        asset=asset,
        balance=parse_entry(doc, "balance"),
        account_record=parse_entry(doc, "account_record"),
        instrument=parse_entry(doc, "instrument"),
        header=hex_field(doc, "header", ""),
        certificate=hex_field(doc, "certificate", ""),
        validators=hex_field(doc, "validators", ""),
        path=path,
    )


def _account_info(value: bytes | None, account: str, height: int) -> AccountInfo:
    if value is None:
        raise ProofError("proof_account", f"there is no account {account} at height {height}")
    owner, kind, client, status, held = decode_record(value, 5, f"account {account}")
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
    kind, decimals, currency, status = decode_record(value, 4, f"instrument {asset}")
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
    available, locked = decode_record(value, 2, "balance")
    for amount in (available, locked):
        if type(amount) is not int or not 0 <= amount <= AMOUNT_MAX:
            raise ProofError("proof_value", f"balance: {amount!r} is not an amount 0..{AMOUNT_MAX}")
    return available, locked
