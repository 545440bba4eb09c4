"""config.toml: what net init writes loads back; every bad setting is refused, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.errors import ClearchainError
from cli.localnet.network import init_network, load_network
from node.config import ConfigError, NodeConfig, P2PSection, load_config, parse_config, render


def test_render_and_load_round_trip(tmp_path: Path) -> None:
    cfg = NodeConfig(
        p2p=P2PSection(listen="127.0.0.1:1", peers=["127.0.0.1:2", "localhost:3"], observers=["ab" * 32])
    )
    (tmp_path / "config.toml").write_text(render(cfg))
    assert load_config(tmp_path) == cfg


@pytest.mark.io
def test_net_init_writes_loadable_homes(tmp_path: Path) -> None:
    net = init_network(tmp_path / "n", validators=4, observers=1, base_port=0)
    assert load_network(tmp_path / "n") == net
    roles = [n["role"] for n in net["nodes"]]
    assert roles == ["validator"] * 4 + ["observer"]
    for n in net["nodes"]:
        cfg = load_config(tmp_path / "n" / n["home"])
        assert cfg.node.role == n["role"] and cfg.p2p.listen == n["p2p"]
        assert n["p2p"] not in cfg.p2p.peers and len(cfg.p2p.peers) == (3 if n["role"] == "validator" else 4)
        assert (tmp_path / "n" / n["home"] / "node_key").stat().st_mode & 0o077 == 0
    validator_cfg = load_config(tmp_path / "n" / "node0")
    assert validator_cfg.p2p.observers == [net["nodes"][4]["node_key"]]
    with pytest.raises(ClearchainError) as err:
        init_network(tmp_path / "n", validators=4)
    assert err.value.code == "network_exists"


@pytest.mark.parametrize(
    ("doc", "code", "names"),
    [
        ({"nodes": {}}, "config_unknown_key", "[nodes]"),
        ({"consensus": {"timout_propose_ms": 5}}, "config_unknown_key", "consensus.timout_propose_ms"),
        ({"consensus": {"timeout_propose_ms": "5"}}, "config_type", "consensus.timeout_propose_ms"),
        ({"consensus": {"timeout_propose_ms": -1}}, "config_type", "consensus.timeout_propose_ms"),
        ({"consensus": {"timeout_propose_ms": True}}, "config_type", "consensus.timeout_propose_ms"),
        ({"consensus": {"timeout_prevote_ms": 0}}, "config_value", "timeouts"),
        ({"consensus": {"block_txs_max": 10**9}}, "config_value", "block_txs_max"),
        ({"p2p": {"listen": "nowhere"}}, "config_value", "p2p.listen"),
        ({"p2p": {"peers": ["127.0.0.1:99999"]}}, "config_value", "p2p.peers[0]"),
        ({"p2p": {"peers": "127.0.0.1:1"}}, "config_type", "p2p.peers"),
        ({"p2p": {"observers": ["xyz"]}}, "config_value", "p2p.observers[0]"),
        ({"p2p": {"frame_bytes_max": 10}}, "config_value", "frame_bytes_max"),
        ({"node": {"role": "king"}}, "config_value", "node.role"),
        ({"node": "validator"}, "config_type", "[node]"),
        ({"rpc": {"account_history": 0}}, "config_type", "rpc.account_history"),
        ({"consensus": {"block_bytes_max": 10}}, "config_value", "block_bytes_max"),
    ],
)
def test_bad_settings_are_refused_by_name(doc: dict, code: str, names: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert e.value.code == code
    assert names in e.value.message


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert e.value.code == "config_missing"
    (tmp_path / "config.toml").write_text("[node\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert e.value.code == "config_syntax"


def test_account_history_switch_round_trips() -> None:
    cfg = parse_config({"rpc": {"account_history": False}})
    assert cfg.rpc.account_history is False
    import tomllib

    assert parse_config(tomllib.loads(render(cfg))).rpc.account_history is False
    assert parse_config({}).rpc.account_history is True


def test_keep_blocks_is_zero_or_at_least_the_floor() -> None:
    assert parse_config({}).storage.keep_blocks == 0
    assert parse_config({"storage": {"keep_blocks": 1_000}}).storage.keep_blocks == 1_000
    for bad in (1, 999):
        with pytest.raises(ConfigError) as err:
            parse_config({"storage": {"keep_blocks": bad}})
        assert err.value.code == "config_value" and "storage.keep_blocks" in err.value.message
    with pytest.raises(ConfigError) as err:
        parse_config({"storage": {"keep_blocks": -5}})
    assert err.value.code == "config_type"
    assert "\nkeep_blocks = 0\n" in render(NodeConfig()).split("[storage]\n", 1)[1]
