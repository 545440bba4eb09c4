"""Conformance vectors: ``clearchain vectors`` writes ``docs/vectors/*.json``, and the tests
regenerate them and compare, as Ethereum's consensus-spec tests double as vectors.

Each module here builds some of the files from the shipped code and the development genesis,
deterministically (fixed keys, fixed times, no clock): ``primitives`` (canonical encoding, key
policies, tx and block hashes, commit certificates, state-tree proofs) and ``rulebook`` (every
method of every contract and every task, with the pre-state root, the call, the post-state root
and the receipt, failures included). A file maps a name to a JSON document; bytes are lower-case
hex strings. An implementation written from docs/ alone checks itself against these files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_DIR = Path("docs/vectors")


def build_all() -> dict[str, Any]:
    """Every vector file, by file name (``encoding.json``, ``contracts/settlement.json``, ...)."""
    from cli.vectors import primitives, rulebook

    files: dict[str, Any] = {}
    for part in (primitives.files(), rulebook.files()):
        clash = files.keys() & part.keys()
        if clash:
            raise ValueError(f"two builders write {sorted(clash)}")
        files.update(part)
    return files


def render(doc: Any) -> str:
    """One file's text: sorted keys, two-space indent, a final newline, so a diff reads well."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def write_all(out: Path) -> list[Path]:
    """Write every vector file under ``out``; remove stale ``*.json`` there. Returns the paths."""
    files = build_all()
    written = []
    for name, doc in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(doc))
        written.append(path)
    for stale in sorted(out.rglob("*.json")):
        if stale.relative_to(out).as_posix() not in files:
            stale.unlink()
    return written


def differences(out: Path) -> list[str]:
    """Names of the files under ``out`` that are missing, stale or differ from a fresh build."""
    files = build_all()
    bad = []
    for name, doc in sorted(files.items()):
        path = out / name
        if not path.exists() or path.read_text() != render(doc):
            bad.append(name)
    for extra in sorted(out.rglob("*.json")) if out.exists() else []:
        if extra.relative_to(out).as_posix() not in files:
            bad.append(extra.relative_to(out).as_posix())
    return bad
