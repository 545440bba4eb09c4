"""``clearchain keys``: participant key files, and choosing the keys a transaction is signed with.

A keys folder holds one file per key, ``<name>.key`` (a ``/`` in the name becomes ``.``, as
``clearchain net init`` writes ``member-a.user.key`` for the key ``member-a/user``), each the hex
of a 32-byte Ed25519 seed with mode 0600 (chain/keys.py). The folder is ``--keys-dir``, else
``$CLEARCHAIN_KEYS``, else ``.devnet/net/keys``.

A participant signs with the key files whose public keys are in its key policy, exactly
``threshold`` of them, in the policy's order: more signatures than the threshold would only make
the transaction larger (and the chain refuses duplicates).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chain.errors import KeyFileError
from chain.ids import is_valid_id
from chain.keys import KeyPair, read_key_file, write_key_file
from cli.commands.plumbing import KEYS_ENV, json_flag, keys_dir_option

KEY_SUFFIX = ".key"
KEY_FILES_MAX = 10_000  # a keys folder larger than this is not a keys folder


def key_file_name(name: str) -> str:
    """The file a key called ``name`` lives in; raises KeyFileError ``bad_key_name``."""
    stem = name.replace("/", ".")
    if not is_valid_id(stem) or stem.startswith("."):
        raise KeyFileError(
            "bad_key_name", f"key name {name!r}: 1 to 64 of A-Z a-z 0-9 . _ : - / (not starting with . or /)"
        )
    return stem + KEY_SUFFIX


def key_files(keys_dir: Path) -> list[Path]:
    """The ``*.key`` files in ``keys_dir``, by name; raises KeyFileError ``keys_dir_missing``."""
    if not keys_dir.is_dir():
        raise KeyFileError("keys_dir_missing", f"no keys folder {keys_dir} (use --keys-dir or ${KEYS_ENV})")
    files = sorted(p for p in keys_dir.iterdir() if p.name.endswith(KEY_SUFFIX) and p.is_file())
    return files[:KEY_FILES_MAX]


def read_keys(keys_dir: Path) -> tuple[dict[str, tuple[str, KeyPair]], list[str]]:
    """Public key hex -> (key name, key pair) for every readable key file, and a note for each
    file that could not be read (wrong mode, malformed)."""
    found: dict[str, tuple[str, KeyPair]] = {}
    problems = []
    for path in key_files(keys_dir):
        try:
            key = read_key_file(path)
        except KeyFileError as exc:
            problems.append(f"{path.name} ({exc.code})")
            continue
        found.setdefault(key.key_id, (path.name[: -len(KEY_SUFFIX)], key))
    return found, problems


def signing_keys(participant: str, policy: dict[str, Any], keys_dir: Path) -> list[KeyPair]:
    """Exactly ``threshold`` keys of ``participant``'s policy (``GET /participants/{id}``) found in
    ``keys_dir``. Raises KeyFileError ``not_enough_keys`` naming the keys that are missing."""
    threshold = int(policy["threshold"])
    wanted: list[str] = list(policy["keys"])
    found, problems = read_keys(keys_dir)
    have = [found[k] for k in wanted if k in found]
    if len(have) >= threshold:
        return [key for _, key in have[:threshold]]
    missing = [k[:16] + "…" for k in wanted if k not in found]
    note = f"; unreadable files: {', '.join(problems)}" if problems else ""
    names = ", ".join(name for name, _ in have) or "none"
    raise KeyFileError(
        "not_enough_keys",
        f"{participant} signs with {threshold} of its {len(wanted)} keys; {keys_dir} holds {len(have)} "
        f"({names}); missing public keys: {', '.join(missing)}{note}",
    )


def load_named_key(keys_dir: Path, name: str) -> tuple[Path, KeyPair]:
    path = keys_dir / key_file_name(name)
    return path, read_key_file(path)


@click.group()
def keys() -> None:
    """Participant key files (Ed25519 seeds, mode 0600) in the keys folder."""


@keys.command("new")
@click.argument("name")
@keys_dir_option
@json_flag("Print JSON.")
def keys_new(name: str, keys_dir: Path, as_json: bool) -> None:
    """Make a new random key NAME (e.g. member-c/user); never overwrites a key file."""
    path = keys_dir / key_file_name(name)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = KeyPair.generate()
    write_key_file(path, key)
    if as_json:
        click.echo(json.dumps({"name": name, "public_key": key.key_id, "path": str(path)}, indent=2))
    else:
        click.echo(f"{name}  {key.key_id}  ({path})")


@keys.command("list")
@keys_dir_option
@json_flag("Print JSON.")
def keys_list(keys_dir: Path, as_json: bool) -> None:
    """Every key file in the keys folder with its public key."""
    rows: list[dict[str, str | None]] = []
    for path in key_files(keys_dir):
        name = path.name[: -len(KEY_SUFFIX)]
        try:
            rows.append({"name": name, "public_key": read_key_file(path).key_id, "error": None})
        except KeyFileError as exc:
            rows.append({"name": name, "public_key": None, "error": f"{exc.code}: {exc.message}"})
    if as_json:
        click.echo(json.dumps({"keys_dir": str(keys_dir), "keys": rows}, indent=2))
        return
    if not rows:
        click.echo(f"no key files in {keys_dir}")
        return
    width = max(len("name"), *(len(str(r["name"])) for r in rows))
    click.echo(f"{'name'.ljust(width)}  public key")
    for r in rows:
        shown = r["public_key"] or f"(unreadable: {r['error']})"
        click.echo(f"{str(r['name']).ljust(width)}  {shown}")


@keys.command("show")
@click.argument("name")
@keys_dir_option
@json_flag("Print JSON.")
def keys_show(name: str, keys_dir: Path, as_json: bool) -> None:
    """The public key (hex) of key NAME."""
    path, key = load_named_key(keys_dir, name)
    if as_json:
        click.echo(json.dumps({"name": name, "public_key": key.key_id, "path": str(path)}, indent=2))
    else:
        click.echo(key.key_id)


@keys.command("export")
@click.argument("name")
@keys_dir_option
def keys_export(name: str, keys_dir: Path) -> None:
    """Print the SECRET seed (hex) of key NAME; whoever sees it can sign as its owner."""
    _, key = load_named_key(keys_dir, name)
    click.echo(
        f"WARNING: this is the SECRET seed of key {name}. Anyone who sees it can sign as its owner. "
        "Do not paste it anywhere you would not paste a password.",
        err=True,
    )
    click.echo(key.seed.hex())


def register(main: click.Group) -> None:
    """Add this module's commands to the ``clearchain`` group."""
    main.add_command(keys)
