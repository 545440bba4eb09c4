"""``clearchain account prove | verify-proof | reserves``: offline balance proofs and the reserves
report.

``account prove`` gathers, from a node's API, everything a third party needs to check a balance
with nothing but the genesis document (contracts/proofs.py builds and checks the file;
docs/PROOFS.md specifies it). It is race-free: the node proves against its head, which may move
between calls, so the three state proofs must come from one height (else they are fetched
again) and the block is then fetched by that exact height. ``verify-proof`` needs no node.

``reserves`` shows, per asset, client and house balances against the custodian's latest
attestation (``GET /reserves``); ``reserves attest`` sends one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from chain.block import Block
from chain.certificate import CommitCertificate
from chain.encoding import encode
from chain.genesis import load_genesis
from chain.limits import AMOUNT_MAX
from chain.validators import Validator, ValidatorSet
from cli.amounts import format_amount, parse_amount
from cli.client import segment
from cli.commands.ledger import account
from cli.commands.plumbing import (
    CliError,
    echo_json,
    json_option,
    read_options,
    reading_options,
    table,
    where,
)
from cli.commands.session import Session, require_ok, signing_command
from cli.inputs import parse_id
from contracts.proofs import (
    PROOF_FILE_BYTES_MAX,
    BalanceProofResult,
    ProofError,
    StateEntry,
    TrustAnchor,
    account_key,
    balance_key,
    build_balance_proof,
    instrument_key,
    parse_proof_json,
    verify_balance_proof,
)

PROVE_ATTEMPTS_MAX = 10  # tries to read the three state proofs at one height while blocks commit
_ZERO = re.compile(r"0+(?:\.0+)?")


# --- account prove ----------------------------------------------------------------------------
@click.command("prove")
@click.argument("account_id", metavar="ID")
@click.option("--asset", required=True, help="Instrument id, e.g. USD.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the proof here (default: print it).",
)
@read_options
def account_prove(account_id: str, asset: str, out: Path | None, node_url: str | None) -> None:
    """Write a proof of ID's ASSET balance that anyone can check offline with the genesis
    document (clearchain verify-proof)."""
    parse_id(account_id, "account id")
    session = Session(node_url)
    session.instrument(asset)  # unknown_instrument before anything else
    session.get(f"/accounts/{segment(account_id)}")  # unknown_account
    try:
        doc, result = gather_proof(session, account_id, asset)
    except (KeyError, TypeError, ValueError) as exc:  # a reply not shaped as docs/API.md says
        raise CliError(
            "node_reply_malformed", f"unexpected reply from {session.client.url}: {exc!r}"
        ) from None
    if out is None:
        echo_json(doc)
        return
    try:
        out.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise CliError("write_failed", f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}: {result.statement()}")
    click.echo(f"check it offline: clearchain verify-proof {out} --genesis genesis.json")


def gather_proof(session: Session, account: str, asset: str) -> tuple[dict[str, Any], BalanceProofResult]:
    """The proof document from the node's API, checked against the node's own genesis anchor
    before it is handed out. Raises CliError ``head_moving``, ``no_certificate``,
    ``validator_path_unsupported``, or the ProofError code if the node's evidence is bad."""
    keys = {
        "balance": balance_key(account, asset),
        "account": account_key(account),
        "instrument": instrument_key(asset),
    }
    for _ in range(PROVE_ATTEMPTS_MAX):
        replies = {name: session.get("/state/proof", key=key.hex()) for name, key in keys.items()}
        heights = {int(r["height"]) for r in replies.values()}
        if len(heights) == 1:
            break
    else:
        raise CliError(
            "head_moving", f"the head moved during each of {PROVE_ATTEMPTS_MAX} attempts; try again"
        )
    height = heights.pop()
    entries = {name: _entry(replies[name], keys[name]) for name in keys}
    block_doc = session.get(f"/blocks/{height}", raw="1")
    header = Block.decode(bytes.fromhex(block_doc["raw"])).header
    if header.state_root.hex() != replies["balance"]["state_root"]:
        raise CliError(
            "node_inconsistent", f"block {height}'s state root is not the one the proofs are against"
        )
    cert_doc = block_doc.get("certificate")
    if cert_doc is None:
        raise CliError(
            "no_certificate",
            f"block {height} has no commit certificate (the genesis block); wait for block 1",
        )
    certificate = CommitCertificate(
        int(cert_doc["height"]),
        int(cert_doc["round"]),
        bytes.fromhex(cert_doc["block_hash"]),
        tuple((bytes.fromhex(s["validator"]), bytes.fromhex(s["signature"])) for s in cert_doc["signatures"]),
    )
    anchor = _genesis_anchor(session, header.validators_hash, height)
    try:
        doc = build_balance_proof(
            account,
            asset,
            balance=entries["balance"],
            account_record=entries["account"],
            instrument=entries["instrument"],
            header=encode(header.to_wire()),
            certificate=encode(certificate.to_wire()),
            validators=encode(anchor.validators.to_wire()),
            validator_path=(),
        )
        result = verify_balance_proof(doc, anchor)
    except ProofError as exc:
        raise CliError(exc.code, f"the node's evidence does not verify: {exc.message}") from None
    return doc, result


def _entry(reply: dict[str, Any], key: bytes) -> StateEntry:
    value = reply.get("value")
    return StateEntry(key, None if value is None else bytes.fromhex(value), bytes.fromhex(reply["proof"]))


def _genesis_anchor(session: Session, signed_by: bytes, height: int) -> TrustAnchor:
    """The genesis chain id and validator set, as this node reports them, when the set that
    signed block ``height`` is the genesis set. This version builds no validator path, so any
    other set is ``validator_path_unsupported`` (docs/PROOFS.md)."""
    genesis = session.get("/blocks/0")["header"]
    genesis_set = bytes.fromhex(genesis["validators_hash"])
    if signed_by != genesis_set:
        raise CliError(
            "validator_path_unsupported",
            f"block {height} was signed by validator set {signed_by.hex()}, not the genesis set "
            f"{genesis_set.hex()}; proofs across validator-set changes are not built yet",
        )
    doc = session.get("/validators")
    current = ValidatorSet.build(
        [Validator(bytes.fromhex(v["pub_key"]), int(v["power"]), str(v["name"])) for v in doc["validators"]]
    )
    if current.hash() != genesis_set:
        raise CliError(
            "validator_path_unsupported",
            f"the validator set has changed since genesis (now {current.hash().hex()}); "
            "proofs across validator-set changes are not built yet",
        )
    return TrustAnchor(str(genesis["chain_id"]), current)


# --- verify-proof -----------------------------------------------------------------------------
@click.command("verify-proof")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The chain's genesis document: the only thing trusted.",
)
@json_option
def verify_proof_cmd(path: Path, genesis_path: Path, as_json: bool) -> None:
    """Check a balance proof FILE offline against the genesis document; say what it proves."""
    genesis = load_genesis(genesis_path)
    try:
        with path.open("rb") as f:
            data = f.read(PROOF_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise CliError("proof_unreadable", f"{path}: {exc.strerror}") from None
    result = verify_balance_proof(parse_proof_json(data), genesis)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(f"verified: {result.statement()}")


# --- reserves ---------------------------------------------------------------------------------
@click.group("reserves", invoke_without_command=True)
@reading_options
@click.pass_context
def reserves(ctx: click.Context, node_url: str | None, as_json: bool) -> None:
    """Client and house balances per asset against the custodian's attested reserves.

    Without a subcommand: the report, taken at the node's head."""
    if ctx.invoked_subcommand is not None:
        if node_url is not None or as_json:
            raise click.UsageError(
                f"put the options after the subcommand: clearchain reserves {ctx.invoked_subcommand} ..."
            )
        return
    doc = Session(node_url).get("/reserves")
    if as_json:
        echo_json(doc)
    else:
        click.echo(reserves_text(doc))


def reserves_text(doc: dict[str, Any]) -> str:
    """The report as a table, then one line per shortfall."""
    lines = [f"reserves at height {doc['height']}, state root {doc['state_root']}"]
    rows, shortfalls = [], []
    for a in doc["assets"]:
        show = lambda units, d=int(a["decimals"]): format_amount(int(units), d)  # noqa: E731
        attested = a["attested"]
        if attested is None:
            attested_text, ref, coverage = "not attested", "", "-"
        else:
            attested_text, ref = show(attested["amount"]), f"{attested['reference']} (h {attested['height']})"
            coverage = format_amount(int(a["coverage"]), int(a["decimals"]), signed=True)
            if a["coverage"] < 0:
                coverage += "  SHORTFALL"
                shortfalls.append(
                    f"SHORTFALL {a['asset']}: clients hold {show(a['client_total'])}, the custodian attests "
                    f"{show(attested['amount'])}: short by {show(-a['coverage'])}"
                )
        rows.append(
            (
                a["asset"],
                show(a["client_total"]),
                show(a["house_total"]),
                show(a["supply"]),
                attested_text,
                ref,
                coverage,
            )
        )
    headers = ["asset", "client total", "house total", "supply", "attested", "reference", "coverage"]
    lines.append(table(headers, rows, right=(1, 2, 3, 4)) if rows else "no instruments")
    lines.extend(shortfalls)
    return "\n".join(lines)


@reserves.command("attest")
@click.option("--asset", required=True, help="Instrument id, e.g. USD.")
@click.option(
    "--amount", required=True, help="Display units held off the ledger, e.g. 250000.00 (0 allowed)."
)
@click.option("--reference", required=True, help="The custodian's statement id.")
@signing_command(default="custodian")
def reserves_attest(
    asset: str, amount: str, reference: str, signer: str, session: Session, as_json: bool
) -> None:
    """A custodian attests what it holds off the ledger for ASSET (its latest statement)."""
    decimals = session.decimals(asset)
    units = 0 if _ZERO.fullmatch(amount.strip()) else parse_amount(amount, decimals, AMOUNT_MAX)
    stx = session.signer(signer).sign("custody", "attest_reserves", [asset, units, reference])
    status = session.send(stx)
    require_ok(status)
    if as_json:
        echo_json(status)
    else:
        click.echo(
            f"attested reserves of {asset} {format_amount(units, decimals)} (ref {reference}) as {signer} "
            f"({where(status)})"
        )


def register(main: click.Group) -> None:
    """Add ``verify-proof`` and ``reserves``, and ``prove`` to the ``account`` group of
    ``cli.commands.ledger``."""
    account.add_command(account_prove)
    main.add_command(verify_proof_cmd)
    main.add_command(reserves)
