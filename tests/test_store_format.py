"""The data folder's format version: a new store records it with genesis; a store in an older
layout (format 1: no meta/format, tree nodes at their path) or a newer one is refused with
``store_format`` and a message that says what to do, and ``clearchain node run`` shows it as one
line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.encoding import encode
from chain.errors import StoreError
from chain.store import FORMAT_KEY, HEAD_KEY, STORE_FORMAT, MemoryBackend, Store
from cli.main import main
from tests.conftest import Chain


def test_a_new_store_records_its_format(make_chain) -> None:  # type: ignore[no-untyped-def]
    chain: Chain = make_chain("memory")
    assert chain.store.backend.get(FORMAT_KEY) == STORE_FORMAT.to_bytes(8, "big")
    Store(chain.store.backend)  # and opens again


def _format_1_backend() -> MemoryBackend:
    backend = MemoryBackend()
    backend.write({HEAD_KEY: encode([7, b"\x00" * 32]), b"tn/": b"\x91\x01"}, [])
    return backend


def test_an_older_or_newer_layout_is_refused_with_what_to_do() -> None:
    with pytest.raises(StoreError) as err:
        Store(_format_1_backend())
    assert err.value.code == "store_format"
    assert "older clearchain (format 1" in err.value.message and "re-sync" in err.value.message
    newer = MemoryBackend()
    newer.write({HEAD_KEY: encode([7, b"\x00" * 32]), FORMAT_KEY: (STORE_FORMAT + 1).to_bytes(8, "big")}, [])
    with pytest.raises(StoreError) as err:
        Store(newer)
    assert err.value.code == "store_format" and "newer clearchain" in err.value.message
    Store(MemoryBackend())  # an empty folder is a new store


@pytest.mark.io
def test_node_run_on_a_format_1_folder_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    net = tmp_path / "net"
    assert (
        runner.invoke(
            main, ["net", "init", "--dir", str(net), "--validators", "1", "--base-port", "0"]
        ).exit_code
        == 0
    )
    home = next(p for p in sorted(net.iterdir()) if (p / "config.toml").exists())
    import plyvel

    db = plyvel.DB(str(home / "db"), create_if_missing=True)
    db.put(HEAD_KEY, encode([7, b"\x00" * 32]))  # a chain, but no meta/format: format 1
    db.close()
    result = runner.invoke(main, ["node", "run", "--home", str(home), "--quiet"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: store_format: "), result.output
    assert "Traceback" not in result.output
    with pytest.raises(StoreError) as err:  # the node closed the folder: it opens (and refuses) again
        Store.open_leveldb(home / "db")
    assert err.value.code == "store_format"
