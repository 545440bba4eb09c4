"""Genesis: the shipped genesis.json, validation errors that name the field, code pinning."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chain.errors import ContractCodeMismatch, GenesisError
from chain.genesis import load_genesis, parse_genesis
from chain.ledger import Ledger
from chain.store import Store
from cli.localnet import devnet
from contracts import default_registry

ROOT = Path(__file__).parent.parent


def test_shipped_genesis_is_the_dev_genesis_with_current_code_hashes() -> None:
    """If this fails after a contract change, run `make genesis` and commit genesis.json."""
    shipped = json.loads((ROOT / "genesis.json").read_text())
    assert shipped == json.loads(json.dumps(devnet.dev_genesis_doc()))
    assert "INSECURE" in shipped["_warning"]
    g = load_genesis(ROOT / "genesis.json")
    default_registry().check_pins(g.contracts)
    assert len(g.validators.validators) == 4


def _bad(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(devnet.dev_genesis_doc())
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, named",
    [
        ("chain_id", "", "chain_id"),
        ("chain_id", _DELETE, "chain_id"),
        ("genesis_time_ms", "soon", "genesis_time_ms"),
        ("validators.0.pub_key", "zz", "validators[0].pub_key"),
        ("validators.1.power", 0, "validators[1].power"),
        ("participants.2.keys.0", "00", "participants[2].keys[0]"),
        ("participants.0.threshold", 4, "participants[0].threshold"),
        ("participants.1.roles.0", "king", "participants[1].roles[0]"),
        ("participants.3.id", "member-a", "participants[3].id"),
        ("instruments.1.currency", "ACME", "instruments[1].currency"),
        ("instruments.0.kind", "gold", "instruments[0].kind"),
        ("accounts.1.owner", "xchg-alpha", "accounts[1].owner"),
        ("accounts.1.client", _DELETE, "accounts[1].client"),
        ("balances.0.account", "NOPE", "balances[0].account"),
        ("balances.0.asset", "NOPE", "balances[0].asset"),
        ("balances.0.amount", -1, "balances[0].amount"),
        ("balances.0.amount", True, "balances[0].amount"),
        ("contracts.settlement", "abc", "contracts.settlement"),
        ("consensus.heartbeat_ms", 0, "consensus.heartbeat_ms"),
        ("consensus.warp_speed", 1, "consensus.warp_speed"),
    ],
)
def test_errors_name_the_field(path: str, value: Any, named: str) -> None:
    with pytest.raises(GenesisError) as err:
        parse_genesis(_bad(path, value))
    assert err.value.message.startswith(named + ":"), err.value.message


def test_floats_in_the_file_are_refused(tmp_path: Path) -> None:
    text = (ROOT / "genesis.json").read_text().replace('"amount": 5000000000', '"amount": 5000000000.0', 1)
    path = tmp_path / "g.json"
    path.write_text(text)
    with pytest.raises(GenesisError) as err:
        load_genesis(path)
    assert err.value.code == "genesis_malformed" and "integer" in err.value.message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(GenesisError) as err:
        load_genesis(tmp_path / "missing.json")
    assert err.value.code == "genesis_unreadable"
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(GenesisError) as err:
        load_genesis(tmp_path / "x.json")
    assert err.value.code == "genesis_malformed"


def test_node_refuses_code_that_differs_from_the_pins() -> None:
    doc = devnet.dev_genesis_doc()
    doc["contracts"]["settlement"] = "0" * 64
    with pytest.raises(ContractCodeMismatch) as err:
        Ledger(Store.in_memory(), parse_genesis(doc), default_registry())
    assert "settlement" in err.value.message
    doc = devnet.dev_genesis_doc()
    del doc["contracts"]["custody"]
    with pytest.raises(ContractCodeMismatch):
        Ledger(Store.in_memory(), parse_genesis(doc), default_registry())


def test_genesis_refuses_a_participant_account_with_a_system_account_id() -> None:
    doc = devnet.dev_genesis_doc()
    doc["accounts"].append({"id": "BOND-POOL", "owner": "member-a", "kind": "house"})
    with pytest.raises(GenesisError) as err:
        Ledger(Store.in_memory(), parse_genesis(doc), default_registry())
    assert err.value.code == "genesis_invalid" and "BOND-POOL" in err.value.message


def test_genesis_block_is_deterministic_and_matches_the_store() -> None:
    g = parse_genesis(devnet.dev_genesis_doc())
    a = Ledger(Store.in_memory(), g, default_registry())
    b = Ledger(Store.in_memory(), g, default_registry())
    assert a.head.hash() == b.head.hash() == a.genesis_block().hash()
    assert a.head.height == 0 and a.head.prev_block_hash == b"\x00" * 32


def _series_doc(size: int, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(devnet.dev_genesis_doc())
    series = {"prefix": "BA-", "count": size, "owner": "member-a", "kind": "client", "client_prefix": "c-BA-",
              "balances": {"USD": 10**12, "ACME": 10**9}}  # fmt: skip
    series.update(changes)
    doc["account_series"] = [series]
    return doc


def test_an_account_series_is_the_same_state_as_listing_each_account() -> None:
    listed = copy.deepcopy(devnet.dev_genesis_doc())
    ids = [f"BA-{i}" for i in range(40)]
    listed["accounts"] += [{"id": a, "owner": "member-a", "kind": "client", "client": f"c-{a}"} for a in ids]
    listed["balances"] += [
        {"account": a, "asset": s, "amount": n} for a in ids for s, n in (("ACME", 10**9), ("USD", 10**12))
    ]
    roots = [
        Ledger(Store.in_memory(), parse_genesis(d), default_registry()).head.state_root
        for d in (listed, _series_doc(40))
    ]
    assert roots[0] == roots[1]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"count": 0}, "account_series[0].count"),
        ({"owner": "xchg-alpha"}, "account_series[0].owner"),  # a client series needs a clearing member
        ({"client_prefix": None}, "account_series[0].client_prefix"),
        ({"kind": "house"}, "account_series[0].client_prefix"),  # a house series names no client
        ({"prefix": "A-C00"}, "accounts"),  # A-C001 is already a listed account
        ({"balances": {"USD": 0}}, "account_series[0].balances.USD"),
        ({"balances": {"XYZ": 1}}, "account_series"),
    ],
)
def test_account_series_errors_name_the_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(GenesisError) as err:
        parse_genesis(_series_doc(3, **changes))
    assert named in err.value.message
