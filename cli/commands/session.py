"""A command's session with one node: reading through its API, signing as a participant, sending
a transaction and waiting for it to commit.

A command talks to one node only through its HTTP API (``cli/client.py``). It signs as a
participant with key files from a keys folder: it asks the node for the participant's key policy
(``GET /participants/{id}``) and signs with exactly ``threshold`` of the policy's keys found
there; the nonce is the node's ``next_nonce``, counted up locally for several transactions.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.keys import KeyPair
from chain.tx import SignedTx, Tx
from cli.amounts import format_amount
from cli.client import ApiError, Client, default_node_url, segment
from cli.commands.keys import signing_keys
from cli.commands.plumbing import CliError, Events, reading_options, signing_options

WAIT_MS_DEFAULT = 30_000  # how long a command waits for its transaction to commit
INSTRUMENT_PAGES_MAX = 100  # of 1,000 instruments each
POLL_S = 0.05  # between GET /txs/{hash} while waiting for a transaction sent earlier


# --- the session ------------------------------------------------------------------------------
class Session:
    """One node's API, the keys folder, and what a command reads once (chain id, instruments)."""

    def __init__(self, node_url: str | None, keys_dir: Path | None = None) -> None:
        # The HTTP timeout outlasts the longest commit wait, so a slow commit reads as one.
        self.client = Client(node_url or default_node_url(), timeout=WAIT_MS_DEFAULT / 1000 + 15)
        self.keys_dir = keys_dir
        self._chain_id: str | None = None
        self._instruments: dict[str, dict[str, Any]] | None = None

    def get(self, path: str, **query: Any) -> Any:
        return self.client.get(path, **query)

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = str(self.get("/status")["chain_id"])
        return self._chain_id

    def instruments(self) -> dict[str, dict[str, Any]]:
        """Instrument id -> {"id", "kind", "decimals", "currency", "status"} (GET /instruments,
        every page)."""
        if self._instruments is None:
            found: dict[str, dict[str, Any]] = {}
            after = None
            for _ in range(INSTRUMENT_PAGES_MAX):
                page = self.get("/instruments", after=after)
                found.update((i["id"], i) for i in page["instruments"])
                after = page.get("next")
                if not after:
                    break
            self._instruments = found
        return self._instruments

    def instrument(self, iid: str) -> dict[str, Any]:
        """Raises CliError ``unknown_instrument``."""
        found = self.instruments().get(iid)
        if found is None:
            known = ", ".join(sorted(self.instruments()))
            raise CliError("unknown_instrument", f"no instrument {iid} (known: {known})")
        return found

    def decimals(self, asset: str) -> int:
        return int(self.instrument(asset)["decimals"])

    def display(self, units: int, asset: str, signed: bool = False) -> str:
        """Display string of ``units`` of ``asset``; the bare integer if the asset is unknown."""
        found = self.instruments().get(asset)
        return format_amount(units, int(found["decimals"]), signed) if found else str(units)

    def signer(self, participant: str) -> Signer:
        """A signer for ``participant`` from its key policy and next nonce at this node.

        Raises ApiError ``unknown_participant``, CliError ``not_enough_keys``."""
        assert self.keys_dir is not None, "a signing command takes --keys-dir"
        doc = self.get(f"/participants/{segment(participant)}")
        keys = signing_keys(participant, doc, self.keys_dir)
        return Signer(self.chain_id, participant, keys, int(doc["next_nonce"]))

    def send(self, stx: SignedTx, wait_ms: int = WAIT_MS_DEFAULT) -> dict[str, Any]:
        """POST one transaction and wait for it to commit; returns its status (as GET /txs/{hash}).

        Raises ApiError with the node's refusal code, CliError ``commit_timeout`` if it did not
        commit in time, or the node's code if it was dropped (``rejected``)."""
        reply = self.client.post("/txs", {"tx": stx.encode().hex()}, wait="commit", timeout_ms=wait_ms)
        if reply.get("refused"):
            first = reply["refused"][0]
            raise ApiError(str(first["code"]), str(first["message"]))
        status: dict[str, Any] = reply["txs"][0]
        return require_committed(status)

    def post_async(self, stx: SignedTx) -> str:
        """POST one transaction without waiting; returns its hash. Raises ApiError on refusal."""
        reply = self.client.post("/txs", {"tx": stx.encode().hex()})
        if reply.get("refused"):
            first = reply["refused"][0]
            raise ApiError(str(first["code"]), str(first["message"]))
        return str(reply["accepted"][0])

    def tx_status(self, tx_hash: str) -> dict[str, Any]:
        """GET /txs/{hash}; an unknown hash gives ``{"status": "unknown"}`` (the node's 404)."""
        try:
            return self.get(f"/txs/{segment(tx_hash)}")  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.status == 404 and isinstance(exc.body, dict) and exc.body.get("status") == "unknown":
                return exc.body
            raise

    def wait_committed(self, tx_hash: str, wait_ms: int = WAIT_MS_DEFAULT) -> dict[str, Any]:
        """Poll until the transaction ``tx_hash`` (sent earlier) commits; returns its status."""
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            status = self.tx_status(tx_hash)
            if status["status"] != "pending" or time.monotonic() > deadline:
                return require_committed(status)
            time.sleep(POLL_S)


class Signer:
    """Signs ``participant``'s transactions with its keys, counting nonces up from ``next_nonce``."""

    def __init__(self, chain_id: str, participant: str, keys: list[KeyPair], next_nonce: int) -> None:
        self.chain_id = chain_id
        self.participant = participant
        self.keys = keys
        self.next_nonce = next_nonce

    def sign(self, contract: str, method: str, args: list[Any]) -> SignedTx:
        # valid_until_height 0: no expiry; the sender's sequential nonce already prevents replay.
        body = Tx(self.chain_id, self.participant, self.next_nonce, contract, method, args, 0)
        self.next_nonce += 1
        return body.sign(self.keys)


def require_committed(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` if committed; raises CliError ``commit_timeout``, or the rejection's code."""
    state, tx_hash = status.get("status"), status.get("hash")
    if state == "committed":
        return status
    if state == "pending":
        raise CliError(
            "commit_timeout", f"tx {tx_hash} is still pending; look later with: clearchain tx show {tx_hash}"
        )
    if state == "rejected":
        raise CliError(str(status.get("code")), f"tx {tx_hash} was dropped: {status.get('message')}")
    raise CliError("unknown_tx", f"the node no longer knows tx {tx_hash}")


def receipt_of(status: dict[str, Any]) -> dict[str, Any]:
    """The receipt of a committed transaction's status."""
    receipt = status.get("receipt")
    if not isinstance(receipt, dict):
        raise CliError(
            "no_receipt", f"tx {status.get('hash')} at height {status.get('height')} has no receipt"
        )
    return receipt


def require_ok(status: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The events of a successful transaction; raises CliError with the receipt's code if the
    call failed by the contract's rules."""
    receipt = receipt_of(status)
    if not receipt.get("ok"):
        raise CliError(
            str(receipt.get("code")),
            f"{receipt.get('message')} (tx {status['hash']}, height {status['height']})",
        )
    return events_of(receipt)


def events_of(receipt: dict[str, Any]) -> Events:
    """The receipt's events as (contract, name, fields)."""
    return [(c, n, {k: v for k, v in fields}) for c, n, fields in receipt.get("events", [])]


def send_call(
    session: Session, signer: str, contract: str, method: str, args: list[Any]
) -> tuple[dict[str, Any], Events]:
    """Sign as ``signer``, send, wait for commit; (tx status, events). Raises the receipt's code."""
    status = session.send(session.signer(signer).sign(contract, method, args))
    return status, require_ok(status)


def read_view(session: Session, contract: str, view: str, **query: Any) -> Any:
    """The ``result`` of ``GET /contracts/<contract>/<view>?query``."""
    q = {k: v for k, v in query.items() if v is not None}
    return session.get(f"/contracts/{segment(contract)}/{segment(view)}", **q)["result"]


def owner_of(session: Session, account: str) -> str:
    """The participant that owns clearing account ``account`` (``GET /accounts/{id}``)."""
    return str(session.get(f"/accounts/{segment(account)}")["owner"])


def signing_command(
    default: str | None = None, required: bool = False, help_text: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``signing_options`` (``--as``, ``--node``, ``--keys-dir``, ``--json``), and the command is
    called with ``session``, a Session of that node and keys folder, instead of the two options."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(*args: Any, node_url: str | None, keys_dir: Path, **kwargs: Any) -> Any:
            return f(*args, session=Session(node_url, keys_dir), **kwargs)

        return signing_options(default, required, help_text)(command)

    return decorate


def reading_command(f: Callable[..., Any]) -> Callable[..., Any]:
    """``reading_options`` (``--node``, ``--json``), and the command is called with ``session``, a
    Session of that node, instead of ``node_url``."""

    @functools.wraps(f)
    def command(*args: Any, node_url: str | None, **kwargs: Any) -> Any:
        return f(*args, session=Session(node_url), **kwargs)

    return reading_options(command)
