"""The genesis document: loading, validation, and the genesis block.

A genesis document (JSON) fixes the chain id, genesis time, validators, participants with their
key policies and roles, instruments, clearing accounts, opening balances issued by the custodian,
the SHA-256 of each contract's source, and consensus parameters. Every validation error names the
offending field by its path, e.g. ``participants[2].keys[0]``.

The genesis block is height 0: no transactions, no certificate, ``prev_block_hash`` all zero;
its ``state_root`` commits to the initial state, which the contracts build from the document
(``ContractRuntime.init_genesis``). Its hash anchors the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import GenesisError
from chain.ids import is_valid_id
from chain.keys import PUBKEY_BYTES
from chain.limits import AMOUNT_MAX, CHAIN_ID_CHARS_MAX, GENESIS_BYTES_MAX, POLICY_KEYS_MAX
from chain.validators import POWER_MAX, Validator, ValidatorSet

ROLES = ("admin", "member", "exchange", "custodian", "oracle", "validator", "auditor", "issuer")
INSTRUMENT_KINDS = ("cash", "equity", "fund", "bond", "crypto")
ACCOUNT_KINDS = ("house", "client")
ACCOUNT_SERIES_MAX = 10_000_000  # accounts in one genesis series
DECIMALS_MAX = 18

DEFAULT_CONSENSUS = {
    "timeout_propose_ms": 1000,
    "timeout_prevote_ms": 500,
    "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250,
    "heartbeat_ms": 2000,
    "block_txs_max": 5000,
}


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    roles: tuple[str, ...]
    threshold: int
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Instrument:
    id: str
    kind: str
    decimals: int
    currency: str | None  # settlement currency of a security; None for cash


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    owner: str
    kind: str
    client: str | None


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: ValidatorSet
    participants: tuple[Participant, ...]
    instruments: tuple[Instrument, ...]
    accounts: tuple[Account, ...]
    balances: tuple[Balance, ...]
    contracts: tuple[tuple[str, str], ...]  # (name, sha256 hex), sorted by name
    consensus: tuple[tuple[str, int], ...]
    params: tuple[tuple[str, int], ...] = ()  # ("<contract>.<name>", value), sorted; contracts/params.py

    def consensus_param(self, name: str) -> int:
        return dict(self.consensus)[name]

    def validator_names(self) -> dict[bytes, str]:
        return {v.pubkey: v.name for v in self.validators.validators}


def load_genesis(path: Path) -> Genesis:
    """Read and validate a genesis file. Raises GenesisError naming the bad field."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise GenesisError("genesis_unreadable", f"{path}: {exc.strerror}") from exc
    if len(raw) > GENESIS_BYTES_MAX:
        raise GenesisError("genesis_too_large", f"{path} is over {GENESIS_BYTES_MAX} bytes")
    try:
        doc = json.loads(raw, parse_float=_no_float)
    except (ValueError, _FloatFound) as exc:
        raise GenesisError("genesis_malformed", f"{path}: {exc}") from exc
    return parse_genesis(doc)


class _FloatFound(Exception):
    pass


def _no_float(text: str) -> Any:
    raise _FloatFound(f"number {text} is not an integer; amounts are integer minor units")


def parse_genesis(doc: Any) -> Genesis:
    """Validate a decoded genesis document."""
    _need(isinstance(doc, dict), "", "the document must be a JSON object")
    chain_id = _field(doc, "chain_id", str, "")
    _need(0 < len(chain_id) <= CHAIN_ID_CHARS_MAX and is_valid_id(chain_id), "chain_id", "1-64 id characters")
    time_ms = _field(doc, "genesis_time_ms", int, "")
    _need(time_ms >= 0, "genesis_time_ms", "must be >= 0")

    validators = []
    for i, v in enumerate(_list(doc, "validators", "")):
        where = f"validators[{i}]"
        pub = _pubkey(_field(v, "pub_key", str, where), f"{where}.pub_key")
        power = _field(v, "power", int, where)
        _need(1 <= power <= POWER_MAX, f"{where}.power", f"must be 1..{POWER_MAX}")
        name = v.get("name", "")
        _need(isinstance(name, str), f"{where}.name", "must be a string")
        validators.append(Validator(pub, power, name))
    _need(bool(validators), "validators", "at least one validator")
    _need(len({v.pubkey for v in validators}) == len(validators), "validators", "duplicate pub_key")

    participants = []
    for i, p in enumerate(_list(doc, "participants", "")):
        where = f"participants[{i}]"
        pid = _id(p, "id", where)
        roles = _list(p, "roles", where)
        for j, role in enumerate(roles):
            _need(role in ROLES, f"{where}.roles[{j}]", f"unknown role {role!r}; one of {', '.join(ROLES)}")
        _need(len(set(roles)) == len(roles), f"{where}.roles", "a role is listed twice")
        keys = [_pubkey(k, f"{where}.keys[{j}]") for j, k in enumerate(_list(p, "keys", where))]
        _need(1 <= len(keys) <= POLICY_KEYS_MAX, f"{where}.keys", f"1 to {POLICY_KEYS_MAX} keys")
        _need(len(set(keys)) == len(keys), f"{where}.keys", "a key is listed twice")
        threshold = _field(p, "threshold", int, where)
        _need(1 <= threshold <= len(keys), f"{where}.threshold", f"must be 1..{len(keys)}")
        participants.append(Participant(pid, tuple(sorted(roles)), threshold, tuple(sorted(keys))))
    _unique([p.id for p in participants], "participants", "id")
    by_id = {p.id: p for p in participants}

    instruments = []
    for i, ins in enumerate(_list(doc, "instruments", "")):
        where = f"instruments[{i}]"
        iid = _id(ins, "id", where)
        kind = _field(ins, "kind", str, where)
        _need(kind in INSTRUMENT_KINDS, f"{where}.kind", f"one of {', '.join(INSTRUMENT_KINDS)}")
        decimals = _field(ins, "decimals", int, where)
        _need(0 <= decimals <= DECIMALS_MAX, f"{where}.decimals", f"must be 0..{DECIMALS_MAX}")
        currency = ins.get("currency")
        if kind == "cash":
            _need(currency is None, f"{where}.currency", "a cash instrument has no currency")
        else:
            _need(isinstance(currency, str), f"{where}.currency", "a security names its settlement currency")
        instruments.append(Instrument(iid, kind, decimals, currency))
    _unique([x.id for x in instruments], "instruments", "id")
    kinds = {x.id: x.kind for x in instruments}
    for i, ins in enumerate(instruments):
        if ins.currency is not None:
            _need(
                kinds.get(ins.currency) == "cash",
                f"instruments[{i}].currency",
                f"{ins.currency!r} is not a cash instrument",
            )

    accounts = []
    for i, a in enumerate(_list(doc, "accounts", "")):
        where = f"accounts[{i}]"
        aid = _id(a, "id", where)
        owner = _id(a, "owner", where)
        _need(owner in by_id, f"{where}.owner", f"{owner!r} is not a participant")
        kind = _field(a, "kind", str, where)
        _need(kind in ACCOUNT_KINDS, f"{where}.kind", f"one of {', '.join(ACCOUNT_KINDS)}")
        client = a.get("client")
        if kind == "client":
            # Client assets are segregated under a clearing member; any participant may own a
            # house account (an exchange or oracle posts its bond from one).
            _need("member" in by_id[owner].roles, f"{where}.owner", f"{owner!r} is not a clearing member")
            _need(is_valid_id(client), f"{where}.client", "a client account names its client")
        else:
            _need(client is None, f"{where}.client", "only client accounts name a client")
        accounts.append(Account(aid, owner, kind, client))
    series_balances = _account_series(doc, by_id, accounts)
    _unique([a.id for a in accounts], "accounts", "id")
    account_ids = {a.id for a in accounts}

    balances = []
    seen = set()
    for i, b in enumerate(_list(doc, "balances", "")):
        where = f"balances[{i}]"
        account = _id(b, "account", where)
        _need(account in account_ids, f"{where}.account", f"unknown account {account!r}")
        asset = _id(b, "asset", where)
        _need(asset in kinds, f"{where}.asset", f"unknown instrument {asset!r}")
        amount = _field(b, "amount", int, where)
        _need(0 < amount <= AMOUNT_MAX, f"{where}.amount", f"must be 1..{AMOUNT_MAX}")
        _need((account, asset) not in seen, where, "a second balance for the same account and asset")
        seen.add((account, asset))
        balances.append(Balance(account, asset, amount))
    for b in series_balances:
        _need(b.asset in kinds, "account_series", f"unknown instrument {b.asset!r}")
        _need(
            (b.account, b.asset) not in seen,
            "account_series",
            f"a second balance for {b.account} in {b.asset}",
        )
        seen.add((b.account, b.asset))
    balances += series_balances
    if balances:
        _need(
            any("custodian" in p.roles for p in participants),
            "balances",
            "opening balances need a custodian to have issued them",
        )

    contracts = _field(doc, "contracts", dict, "")
    pins = []
    for name, digest in sorted(contracts.items()):
        _need(
            isinstance(digest, str) and len(digest) == 64 and _is_hex(digest),
            f"contracts.{name}",
            "the SHA-256 hex of the contract source",
        )
        pins.append((name, digest))
    _need(bool(pins), "contracts", "no contracts pinned")

    consensus = dict(DEFAULT_CONSENSUS)
    given = doc.get("consensus", {})
    _need(isinstance(given, dict), "consensus", "must be an object")
    for name, value in given.items():
        _need(name in DEFAULT_CONSENSUS, f"consensus.{name}", "unknown parameter")
        _need(type(value) is int and value > 0, f"consensus.{name}", "must be a positive integer")
        consensus[name] = value

    params = doc.get("params", {})
    _need(isinstance(params, dict), "params", 'must be an object of "<contract>.<name>": integer')
    for name, value in params.items():
        _need(
            name.count(".") == 1 and all(is_valid_id(part) for part in name.split(".")),
            f"params.{name}",
            "must be <contract>.<name>",
        )
        _need(type(value) is int and -(2**63) <= value < 2**63, f"params.{name}", "must be a 64-bit integer")

    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=time_ms,
        validators=ValidatorSet.build(validators),
        participants=tuple(participants),
        instruments=tuple(instruments),
        accounts=tuple(accounts),
        balances=tuple(balances),
        contracts=tuple(pins),
        consensus=tuple(sorted(consensus.items())),
        params=tuple(sorted(params.items())),
    )


def _need(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise GenesisError("genesis_invalid", f"{field or 'genesis'}: {message}")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _account_series(doc: dict[str, Any], by_id: dict[str, Any], accounts: list[Account]) -> list[Balance]:
    """Expand ``account_series``: ``count`` accounts ``<prefix><i>`` (i from 0) of one owner and
    kind, each opened with the same ``balances`` (``{asset: amount}``); a client series names
    client ``<client_prefix><i>``. The same accounts and balances as listing each one, in a
    document a few hundred bytes long instead of ~170 bytes per account (a million accounts
    would not fit in GENESIS_BYTES_MAX). Appends to ``accounts``; returns the balances."""
    out: list[Balance] = []
    for i, s in enumerate(doc.get("account_series", [])):
        where = f"account_series[{i}]"
        _need(isinstance(s, dict), where, "an object")
        prefix, owner, kind = (
            _field(s, "prefix", str, where),
            _id(s, "owner", where),
            _field(s, "kind", str, where),
        )
        count = _field(s, "count", int, where)
        _need(0 < count <= ACCOUNT_SERIES_MAX, f"{where}.count", f"1..{ACCOUNT_SERIES_MAX}")
        _need(is_valid_id(f"{prefix}{count - 1}"), f"{where}.prefix", "prefix + number must be an account id")
        _need(owner in by_id, f"{where}.owner", f"{owner!r} is not a participant")
        _need(kind in ACCOUNT_KINDS, f"{where}.kind", f"one of {', '.join(ACCOUNT_KINDS)}")
        client_prefix = s.get("client_prefix")
        if kind == "client":
            _need("member" in by_id[owner].roles, f"{where}.owner", f"{owner!r} is not a clearing member")
            _need(
                isinstance(client_prefix, str) and is_valid_id(f"{client_prefix}{count - 1}"),
                f"{where}.client_prefix",
                "a client series names its clients",
            )
        else:
            _need(client_prefix is None, f"{where}.client_prefix", "only client accounts name a client")
        opening = _field(s, "balances", dict, where)
        for asset, amount in opening.items():
            _need(
                type(amount) is int and 0 < amount <= AMOUNT_MAX,
                f"{where}.balances.{asset}",
                f"must be 1..{AMOUNT_MAX}",
            )
        for n in range(count):
            aid = f"{prefix}{n}"
            accounts.append(
                Account(aid, owner, kind, None if client_prefix is None else f"{client_prefix}{n}")
            )
            out.extend(Balance(aid, asset, amount) for asset, amount in sorted(opening.items()))
    return out


def _field(obj: Any, name: str, kind: type, where: str) -> Any:
    _need(isinstance(obj, dict), where, "must be an object")
    _need(name in obj, _join(where, name), "missing")
    value = obj[name]
    ok = type(value) is int if kind is int else isinstance(value, kind)
    _need(ok, _join(where, name), f"must be {kind.__name__}")
    return value


def _list(obj: Any, name: str, where: str) -> list[Any]:
    value: list[Any] = _field(obj, name, list, where)  # checked a list by _field
    return value


def _id(obj: Any, name: str, where: str) -> str:
    value: str = _field(obj, name, str, where)  # checked a str by _field
    _need(is_valid_id(value), _join(where, name), "1-64 characters of A-Z a-z 0-9 . _ : -")
    return value


def _pubkey(text: Any, field: str) -> bytes:
    _need(
        isinstance(text, str) and len(text) == 2 * PUBKEY_BYTES and _is_hex(text),
        field,
        "a 32-byte Ed25519 public key in hex",
    )
    return bytes.fromhex(text)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _unique(values: list[str], where: str, name: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        _need(v not in seen, f"{where}[{i}].{name}", f"duplicate {v!r}")
        seen.add(v)
