"""The machinery every clearing contract shares: declared parameters (genesis overrides, bounds
kept in state), views over the API, paged state scans from a start key, and system accounts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import ContractError, GenesisError
from chain.executor import CallEnv
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.state import BlockState
from chain.store import Store
from cli.client import ApiError, Client
from cli.localnet import devnet
from cli.localnet.network import init_network
from contracts import accounts, default_registry, params
from contracts.api import Context
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_cli import FAST


def _genesis_with(**overrides: Any) -> Any:
    doc = devnet.dev_genesis_doc()
    doc["params"] = overrides
    return parse_genesis(doc)


def _ctx(chain: Chain, contract: str = "oracle") -> Context:
    head = chain.ledger.head
    state = chain.state()
    state.begin()  # writes go through a transaction's journal
    return Context(state, CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b""), "", contract)


# --- parameters -------------------------------------------------------------------------------
def test_every_declared_parameter_is_in_state_with_its_bounds() -> None:
    chain = Chain(Store.in_memory(), _genesis_with(**{"oracle.staleness_blocks": 7}))
    ctx = _ctx(chain)
    for contract in default_registry().contracts:
        stored = dict(params.all_params(ctx, contract.name))
        assert set(stored) == set(contract.PARAMS), contract.name
        for name, p in contract.PARAMS.items():
            value = 7 if (contract.name, name) == ("oracle", "staleness_blocks") else p.default
            assert stored[name] == (value, p.min, p.max)
    assert params.get(ctx, "oracle", "staleness_blocks") == 7


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"oracle.no_such": 1}, "params.oracle.no_such"),
        ({"nothing.staleness_blocks": 1}, "params.nothing.staleness_blocks"),
        ({"oracle.staleness_blocks": 0}, "params.oracle.staleness_blocks"),
        ({"oracle.staleness_blocks": 10**12}, "params.oracle.staleness_blocks"),
        ({"oracle.staleness_blocks": "5"}, "params.oracle.staleness_blocks"),
        ({"oracle": 5}, "params.oracle"),
    ],
)
def test_bad_genesis_parameters_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(GenesisError) as err:
        Ledger(Store.in_memory(), _genesis_with(**overrides), default_registry())
    assert field in err.value.message


def test_a_change_is_checked_against_the_bounds_in_state() -> None:
    chain = Chain(Store.in_memory(), parse_genesis(devnet.dev_genesis_doc()))
    ctx = _ctx(chain)
    low, high = params.bounds(ctx, "oracle", "band_bps") or (0, 0)
    assert params.set_value(ctx, "oracle", "band_bps", high) == 1_000  # returns the old value
    assert params.get(ctx, "oracle", "band_bps") == high
    with pytest.raises(ContractError) as err:
        params.set_value(ctx, "oracle", "band_bps", high + 1)
    assert err.value.code == "param_out_of_bounds"
    with pytest.raises(ContractError) as err:
        params.set_value(ctx, "oracle", "nothing", 1)
    assert err.value.code == "unknown_param"
    with pytest.raises(ContractError) as err:
        params.get(ctx, "oracle", "nothing")
    assert err.value.code == "unknown_param"
    assert low >= 1


# --- paged scans ------------------------------------------------------------------------------
_KEYS = st.lists(st.binary(min_size=0, max_size=4), max_size=30, unique=True)


@settings(max_examples=60)
@given(base=_KEYS, written=_KEYS, deleted=_KEYS, start=st.binary(max_size=4), prefix=st.binary(max_size=1))
def test_a_scan_from_a_start_key_is_the_tail_of_the_full_scan(
    tmp_path_factory: pytest.TempPathFactory,
    base: list[bytes],
    written: list[bytes],
    deleted: list[bytes],
    start: bytes,
    prefix: bytes,
) -> None:
    stores = [Store.in_memory(), Store.open_leveldb(tmp_path_factory.mktemp("scan") / "db")]
    try:
        for store in stores:
            store.backend.write({b"s/" + k: b"\xa1x" for k in base}, [])
            state = BlockState(store)
            state.begin()
            for k in written:
                state.put(k, "y")
            for k in deleted:
                state.delete(k)
            full = [(k, v) for k, v in state.iterate(prefix) if k >= prefix + start]
            assert list(state.iterate(prefix, start)) == full
            assert list(store.iterate_state(prefix, start)) == [
                (k, v) for k, v in store.iterate_state(prefix) if k >= prefix + start
            ]
    finally:
        for store in stores:
            store.close()


def test_holders_page_through_an_asset_in_account_order() -> None:
    chain = Chain(Store.in_memory(), parse_genesis(devnet.dev_genesis_doc()))
    ctx = _ctx(chain, "accounts")
    expected = sorted(a for a, s, _ in devnet.all_balances() if s == "USD")
    seen: list[str] = []
    after = None
    while True:
        page = accounts.holders(ctx, "USD", after, 3)
        if not page:
            break
        assert len(page) <= 3
        seen += [a for a, _, _ in page]
        after = page[-1][0]
    assert seen == expected
    assert all(avail > 0 for _, avail, _ in accounts.holders(ctx, "USD", None, 100))


def test_a_system_account_belongs_to_its_contract_only() -> None:
    chain = Chain(Store.in_memory(), parse_genesis(devnet.dev_genesis_doc()))
    ctx = _ctx(chain, "margin")
    accounts.open_system(ctx, "SYS-1")
    accounts.open_system(ctx, "SYS-1")  # idempotent for its owner
    record = accounts.get_account(ctx, "SYS-1")
    assert record is not None and record.owner == "@margin" and record.kind == "house"
    with pytest.raises(ContractError) as err:
        accounts.open_system(ctx.view("bonds"), "SYS-1")
    assert err.value.code == "account_exists"
    with pytest.raises(ContractError) as err:
        accounts.open_system(ctx, "A-C001")
    assert err.value.code == "account_exists"


# --- views over the API -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("views") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield node.url
    finally:
        node.stop()


@pytest.mark.io
def test_get_contracts_lists_methods_views_and_parameters(node_url: str) -> None:
    doc = Client(node_url).get("/contracts")
    by_name = {c["name"]: c for c in doc["contracts"]}
    assert list(by_name) == [c.name for c in default_registry().contracts]
    oracle = by_name["oracle"]
    assert {"name": "submit", "args": ["instrument", "price"]} in oracle["methods"]
    assert "price" in oracle["views"]
    assert oracle["params"]["staleness_blocks"] == {"value": 100, "min": 1, "max": 1_000_000}
    assert len(oracle["code_hash"]) == 64
    json.dumps(doc)


@pytest.mark.io
def test_a_view_answers_and_refuses_with_codes(node_url: str) -> None:
    client = Client(node_url)
    doc = client.get("/contracts/oracle/price", instrument="ACME")
    assert doc["contract"] == "oracle" and doc["result"] == {
        "instrument": "ACME",
        "price": None,
        "submissions": [],
    }
    for path, query, status, code in [
        ("/contracts/oracle/nothing", {}, 404, "unknown_view"),
        ("/contracts/nothing/price", {}, 404, "unknown_view"),
        ("/contracts/oracle/price", {"instrument": "NOPE"}, 404, "unknown_instrument"),
        ("/contracts/oracle/price", {"instrument": "ACME", "height": "x"}, 400, "bad_query"),
        ("/contracts/oracle/price", {"instrument": "A" * 300}, 400, "bad_query"),
    ]:
        with pytest.raises(ApiError) as err:
            client.get(path, **query)
        assert (err.value.status, err.value.code) == (status, code), path
