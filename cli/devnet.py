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
    "auditor-1": (["auditor"], 1, ["auditor-1"]),
}

INSTRUMENTS: list[dict[str, Any]] = [
    {"id": "USD", "kind": "cash", "decimals": 2},
    {"id": "ACME", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "GLOBEX", "kind": "equity", "decimals": 0, "currency": "USD"},
    {"id": "TBILL", "kind": "fund", "decimals": 4, "currency": "USD"},
    {"id": "BTC", "kind": "crypto", "decimals": 8, "currency": "USD"},
]

ACCOUNTS: list[dict[str, Any]] = [
    {"id": "A-HOUSE", "owner": "member-a", "kind": "house"},
    {"id": "A-C001", "owner": "member-a", "kind": "client", "client": "client-001"},
    {"id": "A-C002", "owner": "member-a", "kind": "client", "client": "client-002"},
    {"id": "B-HOUSE", "owner": "member-b", "kind": "house"},
    {"id": "B-C001", "owner": "member-b", "kind": "client", "client": "client-101"},
    {"id": "B-C002", "owner": "member-b", "kind": "client", "client": "client-102"},
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
]


def validator_key(index: int) -> KeyPair:
    return KeyPair.dev(f"validator-{index}")


def participant_keys(pid: str) -> list[KeyPair]:
    """All the dev keys of participant ``pid`` (its policy's threshold of them sign)."""
    return [KeyPair.dev(name) for name in PARTICIPANTS[pid][2]]


def signing_keys(pid: str) -> list[KeyPair]:
    """Exactly as many of ``pid``'s dev keys as its policy requires."""
    return participant_keys(pid)[: PARTICIPANTS[pid][1]]


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
            for pid, (roles, threshold, names) in PARTICIPANTS.items()
        ],
        "instruments": INSTRUMENTS,
        "accounts": ACCOUNTS,
        "balances": [{"account": a, "asset": s, "amount": n} for a, s, n in BALANCES],
        "contracts": default_registry().code_hashes(),
        "consensus": {"heartbeat_ms": 2000},
    })  # fmt: skip
    return doc
