"""``clearchain audit | export | report activity`` against a running node: from its API, from its
data folder while it runs (through a snapshot), and from export files in both formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.localnet.network import init_network
from cli.main import main
from tests.netutil import NodeThread
from tests.test_cli import FAST, Net


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("audit") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    n = Net(directory, node.url)
    n.ok(
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 10 --price 180.00 --trade-id AU-1"
    )
    n.ok(
        "trade submit --buyer A-C002 --seller B-C001 --instrument ACME --qty 5 --price 181.00 --trade-id AU-2"
    )
    n.run(
        "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty 999999 --price 1.00 --trade-id AU-3"
    )
    n.ok("deposit --account B-C002 --asset USD --amount 50.00 --reference audit-wire-1")
    try:
        yield n
    finally:
        node.stop()


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.io
def test_audit_from_the_api(net: Net) -> None:
    genesis = str(net.dir / "genesis.json")
    code, out, err = _cli("audit", "--node", net.url, "--genesis", genesis, "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["ok"] and doc["trades_settled"] == 2 and doc["trades_failed"] == 1
    assert doc["assets"]["USD"]["deposited"] == "50.00"
    assert doc["assets"]["USD"]["delivered"] == "2,705.00"  # 10 x 180.00 + 5 x 181.00
    assert doc["validators"][0]["signed"] == doc["blocks"] == doc["height"]
    code, out, err = _cli("audit", "--node", net.url, "--genesis", genesis, "--quiet")
    assert code == 0 and "audit passed" in out and "trades settled 2, failed 1" in out


@pytest.mark.io
def test_audit_of_the_data_folder_while_the_node_runs(net: Net) -> None:
    code, out, err = _cli("audit", "--home", str(net.dir / "node0"), "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["ok"] and "snapshot at height" in doc["source"] and doc["trades_settled"] == 2


@pytest.mark.io
@pytest.mark.parametrize("fmt", ["msgpack", "jsonl"])
def test_export_then_audit_the_file(net: Net, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"history.{fmt}"
    code, out, err = _cli("export", "--node", net.url, "--format", fmt, "--out", str(path))
    assert code == 0, err
    assert "exported heights 1.." in err
    code, out, err = _cli("audit", str(path), "--genesis", str(net.dir / "genesis.json"), "--json")
    assert code == 0, out + err
    assert json.loads(out)["trades_settled"] == 2
    if fmt == "jsonl":  # a tampered line is named by height and field
        lines = path.read_text().splitlines()
        record = json.loads(lines[1])
        record["certificate"] = record["certificate"][:-2] + (
            "00" if record["certificate"][-2:] != "00" else "01"
        )
        lines[1] = json.dumps(record)
        path.write_text("\n".join(lines) + "\n")
        code, out, err = _cli("audit", str(path), "--genesis", str(net.dir / "genesis.json"), "--quiet")
        assert code == 2
        assert (
            "AUDIT FAILED at height 1" in err and "certificate.signatures[0] (certificate_signature)" in err
        )


@pytest.mark.io
def test_a_partial_export_cannot_be_audited(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "tail.msgpack"
    assert _cli("export", "--node", net.url, "--from", "2", "--out", str(path))[0] == 0
    code, out, err = _cli("audit", str(path), "--genesis", str(net.dir / "genesis.json"))
    assert code == 1 and err.startswith("error: history_partial:")


@pytest.mark.io
def test_audit_against_another_genesis_fails_at_height_zero(net: Net, tmp_path: Path) -> None:
    doc = json.loads((net.dir / "genesis.json").read_text())
    doc["chain_id"] = "another-chain"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    code, out, err = _cli("audit", "--node", net.url, "--genesis", str(other), "--quiet")
    assert code == 2 and "height 0: chain_id" in err


@pytest.mark.io
def test_member_activity_report(net: Net) -> None:
    code, out, err = _cli(
        "report",
        "activity",
        "--node",
        net.url,
        "--genesis",
        str(net.dir / "genesis.json"),
        "--format",
        "json",
    )
    assert code == 0, out + err
    rows = {r["member"]: r for r in json.loads(out)["members"]}
    assert (rows["member-a"]["trades"], rows["member-a"]["settled"], rows["member-a"]["failed"]) == (3, 2, 1)
    assert rows["member-a"]["paid"] == {"USD": "2,705.00"} and rows["member-b"]["received"] == {
        "USD": "2,705.00"
    }
    assert rows["member-a"]["fail_codes"] == {"insufficient_securities": 1}
    code, out, _ = _cli(
        "report",
        "activity",
        "--node",
        net.url,
        "--genesis",
        str(net.dir / "genesis.json"),
        "--format",
        "csv",
        "--member",
        "member-b",
    )
    assert out.splitlines()[0].startswith("member,trades,settled,failed")
    assert out.splitlines()[1].startswith("member-b,3,2,1,insufficient_securities:1,")
    code, out, _ = _cli(
        "report",
        "activity",
        "--node",
        net.url,
        "--genesis",
        str(net.dir / "genesis.json"),
        "--from",
        "999999",
    )
    assert code == 1
