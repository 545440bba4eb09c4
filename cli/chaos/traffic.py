"""The client side of a fault run: settle trades through the public API while nodes crash,
pause and lose their links, and remember exactly what the chain acknowledged.

Why it is shaped so: "nothing acknowledged is lost" is a claim about what a client was told.
A transaction counts as acknowledged only when a node answered that it is committed at a height
and index (``POST /txs?wait=commit`` or ``GET /txs/{hash}``); a request that failed or timed out
proves nothing, so the client resends the same signed bytes to another node until one says
committed, as a careful client would. One sender (the exchange ``xchg-alpha``), batches of
consecutive nonces, one batch in flight: a later nonce never reaches a mempool before an earlier
one could have.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.trade_dates import today

EXCHANGE = "xchg-alpha"
# Refusals that may not hold at another node or later; any other refusal, three times over and
# with the transaction committed nowhere, means it never will be (its nonce went to another).
RETRYABLE = frozenset(
    {"duplicate", "mempool_full", "sender_queue_full", "nonce_gap", "expired", "bad_request"}
)
STRIKES_MAX = 3
REQUEST_TIMEOUT_S = 6.0
WAIT_MS = 4_000


class Traffic:
    """Trades in a background thread until ``stop``; ``acked`` maps tx hash -> (height, index)."""

    def __init__(
        self, urls: Sequence[str], reachable: Callable[[], list[int]], seed: int, batch: int = 25,
        chain_id: str = devnet.CHAIN_ID,
    ) -> None:  # fmt: skip
        self.urls = list(urls)
        self.reachable = reachable  # indices of nodes the harness has not stopped or cut off
        self.rng = random.Random(seed)
        self.batch = batch
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.dropped: dict[bytes, str] = {}  # refused for good: hash -> code
        self._strikes: Counter[bytes] = Counter()
        self._codes: dict[bytes, str] = {}
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._lock = threading.Lock()
        self._extra: list[SignedTx] = []
        self._in_flight: list[SignedTx] = []
        self._thread = threading.Thread(target=self._run, name="chaos-traffic", daemon=True)
        self._trades = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_s: float) -> bool:
        """Send no new batch; give the one in flight ``drain_s`` to be acknowledged. True if it was."""
        self._stop.set()
        self._thread.join(drain_s)
        self._abandon.set()
        self._thread.join(REQUEST_TIMEOUT_S + 1)
        return not self.unacked

    def submit(self, sender: str, contract: str, method: str, args: list[Any]) -> bytes:
        """Queue one other transaction (a bond, say) for the next batch; returns its hash."""
        stx = self._sign(sender, contract, method, args)
        with self._lock:
            self._extra.append(stx)
        return stx.hash

    @property
    def unacked(self) -> int:
        return sum(1 for s in self._in_flight if s.hash not in self.acked and s.hash not in self.dropped)

    # --- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                extra, self._extra = self._extra, []
            self._in_flight = extra + [self._trade() for _ in range(self.batch)]
            self.sent += len(self._in_flight)
            self._deliver(self._in_flight)

    def _deliver(self, txs: list[SignedTx]) -> None:
        while not self._abandon.is_set():
            todo = [s for s in txs if s.hash not in self.acked and s.hash not in self.dropped]
            if not todo:
                return
            nodes = self.reachable()
            if not nodes:
                self.errors["no_node"] += 1
                time.sleep(0.2)
                continue
            url = self.urls[self.rng.choice(nodes)]
            progress = self._post(url, todo)
            doubtful = [
                s for s in todo if s.hash not in self.acked and (self._strikes[s.hash] or not progress)
            ]
            self._confirm(url, doubtful)
            for stx in doubtful:
                if stx.hash not in self.acked and self._strikes[stx.hash] > STRIKES_MAX:
                    self.dropped[stx.hash] = self._codes[stx.hash]
            if not progress:
                time.sleep(0.1)

    def _post(self, url: str, txs: list[SignedTx]) -> bool:
        doc = {"txs": [s.encode().hex() for s in txs]}
        status, body = _request(url + f"/txs?wait=commit&events=0&timeout_ms={WAIT_MS}", doc)
        if status is None:
            self.errors[body] += 1
            return False
        before = len(self.acked)
        for item in (body or {}).get("txs", []):
            self._ack(item)
        for refusal in (body or {}).get("refused", []):
            code, index = refusal.get("code"), refusal.get("index")
            self.errors[f"refused_{code}"] += 1
            if code not in RETRYABLE and isinstance(index, int) and 0 <= index < len(txs):
                self._strike(txs[index].hash, str(code))
        return len(self.acked) > before

    def _strike(self, tx_hash: bytes, code: str) -> None:
        self._strikes[tx_hash] += 1
        self._codes[tx_hash] = code

    def _confirm(self, url: str, txs: list[SignedTx]) -> None:
        """Ask about each unacknowledged transaction: a refused resend may be a committed one."""
        for stx in txs:
            status, body = _request(url + f"/txs/{stx.hash.hex()}", None)
            if status == 200 and body is not None:
                self._ack(body)

    def _ack(self, item: dict[str, Any]) -> None:
        if item.get("status") == "committed":
            self.acked[bytes.fromhex(item["hash"])] = (int(item["height"]), int(item["index"]))

    def _trade(self) -> SignedTx:
        n = self._trades
        self._trades += 1
        buyer, seller, price = ("A-C001", "B-C001", 180_00) if n % 2 == 0 else ("B-C001", "A-C001", 181_00)
        return self._sign(
            EXCHANGE, "settlement", "settle", [f"CHAOS-{n}", buyer, seller, "ACME", 1, price, today()]
        )

    def _sign(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.nonces.get(sender, 0) + 1
        self.nonces[sender] = nonce
        return Tx(self.chain_id, sender, nonce, contract, method, args, 0).sign(devnet.signing_keys(sender))


def _request(url: str, doc: Any) -> tuple[int | None, Any]:
    """(status, JSON body), or (None, error kind) when there is no answer."""
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError) as exc:
        return None, "timeout" if "timed out" in str(exc) else "unreachable"
