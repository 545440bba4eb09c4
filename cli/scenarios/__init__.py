"""``clearchain demo --scenario NAME``: one contract's story told against a running network.

Each scenario is a module here with ``TITLE`` and ``run(s: ScenarioRun)``. It acts only through
the node's HTTP API, as a real participant would: signed transactions (``s.send``, ``s.fails``),
contract views (``s.view``) and balances (``s.balance``); it checks what it shows, and raises
``ScenarioFailed`` if the chain does not do what the story says (the end-to-end test runs every
scenario on a real multi-process network).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.errors import ClearchainError
from chain.keys import read_key_file
from chain.tx import SignedTx, Tx
from cli.client import ApiError, Client
from cli.localnet import devnet

# name -> module under cli.scenarios
SCENARIOS: dict[str, str] = {
    "netting": "cli.scenarios.netting",
    "swap": "cli.scenarios.swap",
    "oracle": "cli.scenarios.oracle",
    "breaker": "cli.scenarios.breaker",
    "margin": "cli.scenarios.margin",
    "bonds": "cli.scenarios.bonds",
    "governance": "cli.scenarios.governance",
    "corporate": "cli.scenarios.corporate",
    "fund": "cli.scenarios.fund",
}
WAIT_S = 60.0
AHEAD_ATTEMPTS_MAX = 8  # send_ahead doubles the notice each time: 8 attempts span 256 times the first


class ScenarioFailed(ClearchainError):
    """The chain did not do what the scenario expected."""


class ScenarioRun:
    """What a scenario works with: one node's API, the dev participants' keys, an echo."""

    def __init__(
        self, client: Client, keys_dir: Path, net_dir: Path | None = None, echo: Callable[[str], Any] = print
    ) -> None:
        self.client = client
        self.keys_dir = keys_dir
        self.net_dir = net_dir
        self.echo = echo
        status = client.get("/status")
        self.chain_id: str = status["chain_id"]
        self._instruments: dict[str, Any] | None = None

    # --- reads ------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return int(self.client.get("/status")["height"])

    def view(self, contract: str, view: str, **query: Any) -> Any:
        q = {k: v for k, v in query.items() if v is not None}
        return self.client.get(f"/contracts/{contract}/{view}", **q)["result"]

    def balance(self, account: str, asset: str) -> tuple[int, int]:
        """(available, locked) of ``asset`` in ``account``."""
        for b in self.client.get(f"/accounts/{account}")["balances"]:
            if b["asset"] == asset:
                return int(b["available"]), int(b["locked"])
        return 0, 0

    def last_price(self, instrument: str) -> int | None:
        """The latest median the chain recorded for ``instrument``, fresh or not (None if it was
        never priced).

        A scenario opens at this price, not at the current one: once the oracles' submissions are
        older than the staleness window the current price is None while the circuit breaker still
        measures from the recorded history, so opening at a constant would itself be a wild move
        that halts the instrument, and whether it does would depend on how many blocks passed."""
        found = self.view("oracle", "price", instrument=instrument, height=self.height)["price"]
        return None if found is None else int(found)

    def decimals(self, asset: str) -> int:
        if self._instruments is None:
            self._instruments = {i["id"]: i for i in self.client.get("/instruments")["instruments"]}
        return int(self._instruments[asset]["decimals"])

    def wait_height(self, height: int, timeout_s: float = WAIT_S) -> int:
        """Block until the head reaches ``height`` (heartbeat blocks make time pass)."""
        deadline = time.monotonic() + timeout_s
        while (now := self.height) < height:
            if time.monotonic() > deadline:
                raise ScenarioFailed("scenario_timeout", f"head at {now}, waited for {height}")
            time.sleep(0.2)
        return now

    # --- writes -----------------------------------------------------------------------------
    def sign(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.client.get(f"/participants/{sender}")["next_nonce"]
        keys = [read_key_file(self.keys_dir / (n + ".key")) for n in devnet.key_names(sender)]
        return Tx(self.chain_id, sender, nonce, contract, method, args, 0).sign(keys)

    def submit(self, sender: str, contract: str, method: str, args: list[Any]) -> dict[str, Any]:
        """Send and wait for commit; returns the tx status (receipt may be ok or failed)."""
        stx = self.sign(sender, contract, method, args)
        try:
            body = self.client.post("/txs", {"tx": stx.encode().hex()}, wait="commit", timeout_ms=30_000)
        except ApiError as exc:
            raise ScenarioFailed("scenario_tx_refused", f"{contract}.{method} by {sender}: {exc}") from exc
        if body.get("refused"):
            r = body["refused"][0]
            raise ScenarioFailed(
                "scenario_tx_refused", f"{contract}.{method} by {sender}: {r['code']}: {r['message']}"
            )
        (status,) = body["txs"]
        if status["status"] != "committed":
            raise ScenarioFailed(
                "scenario_tx_not_committed", f"{contract}.{method} by {sender} is {status['status']}"
            )
        return status  # type: ignore[no-any-return]

    def send(
        self, sender: str, contract: str, method: str, args: list[Any]
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """Send; the call must succeed. Returns its events as (contract, name, fields)."""
        status = self.submit(sender, contract, method, args)
        receipt = status["receipt"]
        if not receipt["ok"]:
            raise ScenarioFailed(
                "scenario_call_failed",
                f"{contract}.{method} by {sender}: {receipt['code']}: {receipt['message']}",
            )
        return [(c, n, dict(f)) for c, n, f in receipt["events"]]

    def send_ahead(
        self,
        sender: str,
        contract: str,
        method: str,
        args_for: Callable[[int], list[Any]],
        blocks: int,
        too_late: str,
    ) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
        """Send a call that names a height ``blocks`` ahead of the head (a timeout, a record
        height); it must succeed. Returns (its events, the height it named).

        Heartbeat blocks may pass between reading the head and the call's block; if enough did
        that the height is no longer ahead, the chain refuses the call with ``too_late`` and it
        is sent again with twice the notice, so the outcome rests on the chain's answer, not on
        how fast blocks come."""
        for _ in range(AHEAD_ATTEMPTS_MAX):
            target = self.height + blocks
            receipt = self.submit(sender, contract, method, args_for(target))["receipt"]
            if receipt["ok"]:
                return [(c, n, dict(f)) for c, n, f in receipt["events"]], target
            if receipt["code"] != too_late:
                raise ScenarioFailed(
                    "scenario_call_failed",
                    f"{contract}.{method} by {sender}: {receipt['code']}: {receipt['message']}",
                )
            self.echo(f"  (height {target} had passed when the call's block came: {blocks * 2} blocks ahead)")
            blocks *= 2
        raise ScenarioFailed(
            "scenario_call_failed", f"{contract}.{method} by {sender}: {too_late} {AHEAD_ATTEMPTS_MAX} times"
        )

    def fails(self, code: str, sender: str, contract: str, method: str, args: list[Any]) -> str:
        """Send; the call must fail with ``code``. Returns the receipt's message."""
        status = self.submit(sender, contract, method, args)
        receipt = status["receipt"]
        if receipt["ok"] or receipt["code"] != code:
            raise ScenarioFailed(
                "scenario_unexpected_outcome",
                f"{contract}.{method} by {sender}: expected {code}, got {receipt['code']}",
            )
        return str(receipt["message"])

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise ScenarioFailed("scenario_check_failed", message)


def run_scenario(name: str, run: ScenarioRun) -> None:
    """Run scenario ``name`` (ScenarioFailed if it does not end as told)."""
    if name not in SCENARIOS:
        raise ScenarioFailed(
            "unknown_scenario", f"no scenario {name!r}; one of {', '.join(sorted(SCENARIOS))}"
        )
    module = importlib.import_module(SCENARIOS[name])
    run.echo(f"== scenario {name}: {module.TITLE}")
    module.run(run)
