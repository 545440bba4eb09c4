"""The INSECURE development network: participants, keys and the default genesis document.

Every key here derives from a public seed (``chain.keys.KeyPair.dev``), like Hardhat's or Anvil's
dev accounts: anyone can sign as anyone. It exists so that a clearing engineer can run a network
in minutes; ``clearchain net init --fresh-keys`` (a later issue) makes a network with real keys.
"""

from __future__ import annotations

from typing import Any

from chain.keys import KeyPair
from contracts import default_registry

CHAIN_ID = "clearchain-dev"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GENESIS_DAY = GENESIS_TIME_MS // 86_400_000  # the day number of a ticket traded at the dev genesis
WARNING = (
    "INSECURE DEVELOPMENT NETWORK: every private key of this genesis derives from a public seed "
    "(sha256('clearchain-dev-INSECURE:' + name)). Never hold real assets under it."
)

# participant id -> (roles, threshold, key names)
PARTICIPANTS: dict[str, tuple[list[str], int, list[str]]] = {
    "admin": (["admin"], 2, ["admin/user", "admin/wallet", "admin/recovery"]),
    "xchg-alpha": (["exchange"], 1, ["xchg-alpha"]),
    "member-a": (["member"], 2, ["member-a/user", "member-a/wallet", "member-a/recovery"]),
    "member-b": (["member"], 2, ["member-b/user", "member-b/wallet", "member-b/recovery"]),
    "custodian": (["custodian"], 1, ["custodian"]),
    "oracle-1": (["oracle"], 1, ["oracle-1"]),
    "oracle-2": (["oracle"], 1, ["oracle-2"]),
    "oracle-3": (["oracle"], 1, ["oracle-3"]),
    "auditor-1": (["auditor"], 1, ["auditor-1"]),
    "issuer-acme": (["issuer", "member"], 1, ["issuer-acme"]),
    "fund-mgr": (["issuer", "member"], 1, ["fund-mgr"]),
}
# Each validator is also a participant, ``validator-<i>`` (role validator), whose 1-of-1 policy
# is its consensus key: it posts its bond and reports evidence with the key it votes with
# (transactions and votes are hashed under different domain tags, so neither can pass for the
# other).
VALIDATOR_PARTICIPANT_ROLES = ["validator"]

INSTRUMENTS: list[dict[str, Any]] = [
    {"id": "USD", "kind": "cash", "decimals": 2},
    {"id": "ACME", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "GLOBEX", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "TBILL", "kind": "fund", "decimals": 4, "currency": "USD"},
    {"id": "BTC", "kind": "crypto", "decimals": 8, "currency": "USD"},
    {"id": "INITECH", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "UMBRELLA", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "HOOLI", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "STARK", "kind": "equity", "decimals": 0, "currency": "USD"},
]

ACCOUNTS: list[dict[str, Any]] = [
    {"id": "A-HOUSE", "owner": "member-a", "kind": "house"},
    {"id": "A-C001", "owner": "member-a", "kind": "client", "client": "client-001"},
    {"id": "A-C002", "owner": "member-a", "kind": "client", "client": "client-002"},
    {"id": "B-HOUSE", "owner": "member-b", "kind": "house"},
    {"id": "B-C001", "owner": "member-b", "kind": "client", "client": "client-101"},
    {"id": "B-C002", "owner": "member-b", "kind": "client", "client": "client-102"},
    # House accounts of participants that post bonds, pay dividends or run a fund.
    {"id": "XA-HOUSE", "owner": "xchg-alpha", "kind": "house"},
    {"id": "O1-HOUSE", "owner": "oracle-1", "kind": "house"},
    {"id": "O2-HOUSE", "owner": "oracle-2", "kind": "house"},
    {"id": "O3-HOUSE", "owner": "oracle-3", "kind": "house"},
    {"id": "ACME-CORP", "owner": "issuer-acme", "kind": "house"},
    {"id": "FUND-HOUSE", "owner": "fund-mgr", "kind": "house"},
]

BALANCES: list[tuple[str, str, int]] = [
    ("A-HOUSE", "USD", 50_000_000_00),
    ("A-C001", "USD", 1_000_000_00),
    ("A-C002", "USD", 250_000_00),
    ("B-HOUSE", "USD", 50_000_000_00),
    ("B-C001", "USD", 500_000_00),
    ("B-C002", "USD", 100_000_00),
    ("A-HOUSE", "ACME", 100_000),
    ("B-HOUSE", "ACME", 100_000),
    ("B-C001", "ACME", 5_000),
    ("A-HOUSE", "GLOBEX", 50_000),
    ("B-HOUSE", "GLOBEX", 50_000),
    ("A-C002", "GLOBEX", 1_000),
    ("A-HOUSE", "TBILL", 10_000_0000),
    ("B-HOUSE", "BTC", 25_00000000),
    ("A-HOUSE", "INITECH", 80_000),
    ("B-HOUSE", "INITECH", 80_000),
    ("A-HOUSE", "UMBRELLA", 60_000),
    ("B-HOUSE", "UMBRELLA", 60_000),
    ("A-HOUSE", "HOOLI", 40_000),
    ("B-HOUSE", "HOOLI", 40_000),
    ("A-HOUSE", "STARK", 30_000),
    ("B-HOUSE", "STARK", 30_000),
    ("XA-HOUSE", "USD", 1_000_000_00),
    ("O1-HOUSE", "USD", 100_000_00),
    ("O2-HOUSE", "USD", 100_000_00),
    ("O3-HOUSE", "USD", 100_000_00),
    ("ACME-CORP", "USD", 10_000_000_00),
    ("ACME-CORP", "ACME", 50_000),
    ("FUND-HOUSE", "USD", 1_000_000_00),
]


# Rule parameters the dev network sets apart from the contracts' defaults (contracts/params.py),
# so that a demo sees a whole settlement cycle in seconds: a "business day" lasts 20 s.
DEV_PARAMS: dict[str, int] = {
    "cycles.day_ms": 20_000,
}


def validator_participant(index: int) -> str:
    return f"validator-{index}"


def validator_account(index: int) -> str:
    return f"V{index}-HOUSE"


VALIDATOR_BOND_FUNDS = 500_000_00  # USD in each validator's house account at genesis


def all_accounts(validators: int = 4) -> list[dict[str, Any]]:
    """``ACCOUNTS`` and each validator's house account."""
    return ACCOUNTS + [
        {"id": validator_account(i), "owner": validator_participant(i), "kind": "house"}
        for i in range(validators)
    ]


def all_balances(validators: int = 4) -> list[tuple[str, str, int]]:
    """``BALANCES`` and each validator's bond funds."""
    return BALANCES + [(validator_account(i), "USD", VALIDATOR_BOND_FUNDS) for i in range(validators)]


def validator_key(index: int) -> KeyPair:
    return KeyPair.dev(f"validator-{index}")


def participants(validators: int) -> dict[str, tuple[list[str], int, list[str]]]:
    """Every participant of a dev-layout network: ``PARTICIPANTS`` and one per validator."""
    out = dict(PARTICIPANTS)
    for i in range(validators):
        name = validator_participant(i)
        out[name] = (VALIDATOR_PARTICIPANT_ROLES, 1, [name])
    return out


def _layout(pid: str) -> tuple[list[str], int, list[str]]:
    if pid in PARTICIPANTS:
        return PARTICIPANTS[pid]
    if pid.startswith("validator-") and pid[len("validator-") :].isdigit():
        return (VALIDATOR_PARTICIPANT_ROLES, 1, [pid])
    raise KeyError(pid)


def participant_keys(pid: str) -> list[KeyPair]:
    """All the dev keys of participant ``pid`` (its policy's threshold of them sign)."""
    return [KeyPair.dev(name) for name in _layout(pid)[2]]


def signing_keys(pid: str) -> list[KeyPair]:
    """Exactly as many of ``pid``'s dev keys as its policy requires."""
    return participant_keys(pid)[: _layout(pid)[1]]


def key_names(pid: str) -> list[str]:
    """The key file names (without ``.key``, ``/`` as ``.``) that sign for ``pid``."""
    roles, threshold, names = _layout(pid)
    return [n.replace("/", ".") for n in names[:threshold]]


def dev_genesis_doc(validators: int = 4, chain_id: str = CHAIN_ID) -> dict[str, Any]:
    """The default genesis document (what the top-level genesis.json holds)."""
    keys = {f"validator-{i}": validator_key(i) for i in range(validators)}
    keys.update({name: KeyPair.dev(name) for _, _, names in PARTICIPANTS.values() for name in names})
    return genesis_doc(keys, validators, chain_id, dev=True)


def fresh_keys(validators: int) -> dict[str, KeyPair]:
    """New random keys for every validator and participant key name of the dev layout."""
    names = [f"validator-{i}" for i in range(validators)]
    names += [name for _, _, key_names in PARTICIPANTS.values() for name in key_names]
    return {name: KeyPair.generate() for name in names}


def genesis_doc(keys: dict[str, KeyPair], validators: int, chain_id: str, dev: bool) -> dict[str, Any]:
    """The dev layout (participants, instruments, accounts, balances) under ``keys``, by key name.
    With ``dev`` the document says its keys are INSECURE and names their public seeds."""
    doc: dict[str, Any] = {"_warning": WARNING} if dev else {}
    doc.update({
        "chain_id": chain_id,
        "genesis_time_ms": GENESIS_TIME_MS,
        "validators": [
            {"name": f"validator-{i}", "pub_key": keys[f"validator-{i}"].key_id, "power": 10}
            for i in range(validators)
        ],
        "participants": [
            {
                "id": pid,
                "roles": roles,
                "threshold": threshold,
                "keys": [keys[name].key_id for name in names],
                **({"_dev_seeds": names} if dev else {}),
            }
            for pid, (roles, threshold, names) in participants(validators).items()
        ],
        "instruments": INSTRUMENTS,
        "accounts": all_accounts(validators),
        "balances": [{"account": a, "asset": s, "amount": n} for a, s, n in all_balances(validators)],
        "contracts": default_registry().code_hashes(),
        "consensus": {"heartbeat_ms": 2000},
        "params": DEV_PARAMS,
    })  # fmt: skip
    return doc
