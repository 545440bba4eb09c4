"""The recorder behind the rulebook vectors: a real in-memory ledger from the development genesis
that runs one block per case, signed with the dev keys, and writes down what an outside
implementation needs to check itself: the call, the pre- and post-state roots, the receipts and
the state writes of the block.

Nothing here reads a clock: block ``time_ms`` advances by ``BLOCK_STEP_MS`` from genesis time (or
jumps to a time a script names, for time-due tasks), so the files are the same on every machine.
Each script states the outcome it expects of every case; a case whose receipt says otherwise
stops the build (``RecordingError``) instead of writing a wrong vector.

``replay`` is the other direction: it runs a file's recorded transactions on a fresh ledger and
returns the first difference, which the conformance tests use.
"""

from __future__ import annotations

from typing import Any

from chain.block import Block
from chain.certificate import CommitCertificate, sign_certificate
from chain.errors import InvalidTransaction
from chain.executor import ExecutionResult
from chain.genesis import Genesis, parse_genesis
from chain.keys import KeyPair
from chain.ledger import Ledger
from chain.limits import BLOCK_TASKS_MAX
from chain.policy import nonce_key
from chain.receipt import KIND_TASK, OK, Receipt
from chain.scheduler import due_tasks
from chain.state import BlockState
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.vectors.notation import to_json
from contracts import default_registry

BLOCK_STEP_MS = 1000
KIND_NAMES = {KIND_TASK: "task"}


class RecordingError(Exception):
    """A script's case did not turn out as the script says (a rule changed, or the script is
    wrong): the vectors are not written."""


def dev_genesis() -> Genesis:
    return parse_genesis(devnet.dev_genesis_doc())


class Chain:
    """A fresh ledger at genesis with a solo producer: every validator key precommits."""

    def __init__(self) -> None:
        self.genesis = dev_genesis()
        self.store = Store.in_memory()
        self.ledger = Ledger(self.store, self.genesis, default_registry())
        count = len(self.genesis.validators.validators)
        self.keys: list[KeyPair] = sorted(
            (devnet.validator_key(i) for i in range(count)), key=lambda k: k.public
        )
        self.last_commit: CommitCertificate | None = None

    @property
    def height(self) -> int:
        return self.ledger.head.height

    @property
    def time_ms(self) -> int:
        return self.ledger.head.time_ms

    @property
    def state_root(self) -> bytes:
        return self.ledger.head.state_root

    def state(self) -> BlockState:
        return BlockState(self.store)

    def produce(self, time_ms: int, txs: list[SignedTx]) -> tuple[Block, ExecutionResult]:
        """Propose, certify and commit the next block at ``time_ms`` with ``txs``."""
        ledger = self.ledger
        height = ledger.head.height + 1
        proposer = self.keys[height % len(self.keys)].public
        block, result = ledger.propose(time_ms, txs, proposer, self.last_commit)
        cert = sign_certificate(ledger.chain_id, height, 0, block.hash(), self.keys)
        ledger.commit(block, cert, result)
        self.last_commit = cert
        return block, result

    def due(self, height: int, time_ms: int) -> list[dict[str, Any]]:
        """The tasks a block at (height, time_ms) runs at its end, in order."""
        return [
            {
                "id": task.task_id,
                "contract": task.contract,
                "task": task.name,
                "payload": to_json(task.payload),
            }
            for task in due_tasks(self.state(), height, time_ms, BLOCK_TASKS_MAX)
        ]

    def check(self, stx: SignedTx) -> str:
        """The code the executor gives ``stx`` for the next block: ``ok`` if it may enter."""
        try:
            self.ledger.executor.check_transaction(stx, self.state(), self.height + 1)
        except InvalidTransaction as exc:
            return exc.code
        return OK


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A receipt as the vectors show it: event fields as [name, value] pairs, in emitted order."""
    return {
        "kind": "task" if receipt.kind == KIND_TASK else "tx",
        "ref": receipt.ref.hex(),
        "code": receipt.code,
        "message": receipt.message,
        "events": [
            {"contract": c, "name": n, "fields": [[k, to_json(v)] for k, v in fields]}
            for c, n, fields in receipt.events
        ],
        "encoded": receipt.encode().hex(),
    }


def writes_json(diff: dict[bytes, bytes | None]) -> dict[str, str | None]:
    return {key.hex(): (None if value is None else value.hex()) for key, value in sorted(diff.items())}


class Recorder:
    """Runs a script's cases on one chain and keeps their records, roots chained."""

    def __init__(self) -> None:
        self.chain = Chain()
        self.cases: list[dict[str, Any]] = []

    def param(self, contract: str, name: str) -> int:
        """A contract parameter's current value (``<contract>/param/<name>``, contracts/params.py)."""
        record = self.chain.state().get(f"{contract}/param/{name}".encode())
        if record is None:
            raise RecordingError(f"{contract} has no parameter {name}")
        return int(record[0])

    def expect(self, condition: bool, message: str) -> None:
        """A script's assumption about the history it records (RecordingError if it fails)."""
        if not condition:
            raise RecordingError(message)

    # --- signing ----------------------------------------------------------------------------
    def sign(
        self,
        sender: str,
        contract: str,
        method: str,
        args: list[Any],
        *,
        keys: list[KeyPair] | None = None,
        nonce: int | None = None,
    ) -> SignedTx:
        """``sender``'s tx with its next nonce (read from state), signed by exactly its policy's
        threshold of dev keys unless ``keys`` says otherwise."""
        if nonce is None:
            nonce = (self.chain.state().get(nonce_key(sender)) or 0) + 1
        body = Tx(self.chain.genesis.chain_id, sender, nonce, contract, method, args, 0)
        return body.sign(keys if keys is not None else devnet.signing_keys(sender))

    # --- cases ------------------------------------------------------------------------------
    def call(
        self,
        name: str,
        sender: str,
        contract: str,
        method: str,
        args: list[Any],
        expect: str = OK,
        *,
        keys: list[KeyPair] | None = None,
        time_ms: int | None = None,
    ) -> dict[str, Any]:
        """One block holding one tx; its receipt's code must be ``expect``."""
        stx = self.sign(sender, contract, method, args, keys=keys)
        verdict = self.chain.check(stx)
        if verdict != OK:
            raise RecordingError(f"{name}: the tx is rejected ({verdict}), expected code {expect}")
        case = self._block(name, time_ms, [stx])
        case.update(kind="call", contract=contract, method=method, sender=sender, args=to_json(args))
        case["tx"] = stx.encode().hex()
        case["tx_hash"] = stx.hash.hex()
        got = case["receipts"][0]["code"]
        if got != expect:
            raise RecordingError(f"{name}: code {got} ({case['receipts'][0]['message']}), expected {expect}")
        case["code"] = got
        return self._keep(case)

    def reject(
        self,
        name: str,
        sender: str,
        contract: str,
        method: str,
        args: list[Any],
        expect: str,
        *,
        keys: list[KeyPair] | None = None,
    ) -> dict[str, Any]:
        """A tx the executor refuses to include (code ``expect``): no block, the root unchanged."""
        stx = self.sign(sender, contract, method, args, keys=keys)
        got = self.chain.check(stx)
        if got != expect:
            raise RecordingError(f"{name}: admission gives {got}, expected {expect}")
        root = self.chain.state_root.hex()
        return self._keep({
            "name": name,
            "kind": "rejected",
            "contract": contract,
            "method": method,
            "sender": sender,
            "args": to_json(args),
            "tx": stx.encode().hex(),
            "tx_hash": stx.hash.hex(),
            "height": self.chain.height + 1,
            "pre_state_root": root,
            "post_state_root": root,
            "code": got,
        })  # fmt: skip

    def tasks(
        self, name: str, expect: list[tuple[str, str, str]], *, time_ms: int | None = None
    ) -> dict[str, Any]:
        """An empty block whose due tasks are exactly ``expect`` ([(contract, task, code)])."""
        case = self._block(name, time_ms, [])
        case["kind"] = "tasks"
        got = [(t["contract"], t["task"], t["code"]) for t in case["tasks"]]
        if got != expect:
            raise RecordingError(f"{name}: tasks {got}, expected {expect}")
        return self._keep(case)

    def advance(self, *, to_height: int | None = None, to_time_ms: int | None = None) -> None:
        """Empty blocks that change nothing, until the head is at ``to_height`` - 1 (so the next
        case runs at ``to_height``) or the next block may be at ``to_time_ms``. Not recorded:
        a replay makes its own empty blocks up to each case's height."""
        chain = self.chain
        while to_height is not None and chain.height + 1 < to_height:
            self._empty(chain.time_ms + BLOCK_STEP_MS)
        if to_time_ms is not None and chain.time_ms + BLOCK_STEP_MS < to_time_ms:
            self._empty(to_time_ms - BLOCK_STEP_MS)

    def run_until(self, height: int, label: str) -> list[dict[str, Any]]:
        """Empty blocks until the head is at ``height``; each block in which tasks fall due is
        recorded as a ``tasks`` case (named ``label`` and the tasks), whatever their codes."""
        chain = self.chain
        recorded = []
        while chain.height < height:
            due = chain.due(chain.height + 1, chain.time_ms + BLOCK_STEP_MS)
            if not due:
                self._empty(chain.time_ms + BLOCK_STEP_MS)
                continue
            names = ", ".join(f"{t['contract']}.{t['task']}" for t in due)
            case = self._block(f"{label}: {names} at height {chain.height + 1}", None, [])
            case["kind"] = "tasks"
            recorded.append(self._keep(case))
        return recorded

    def _empty(self, time_ms: int) -> None:
        chain = self.chain
        if chain.due(chain.height + 1, time_ms):
            raise RecordingError(f"advance: tasks fall due at height {chain.height + 1}; record them")
        _, result = chain.produce(time_ms, [])
        if result.receipts or result.state_diff:
            raise RecordingError("advance: an empty block changed state")

    def _block(self, name: str, time_ms: int | None, txs: list[SignedTx]) -> dict[str, Any]:
        chain = self.chain
        pre = chain.state_root
        when = chain.time_ms + BLOCK_STEP_MS if time_ms is None else time_ms
        tasks = chain.due(chain.height + 1, when)
        block, result = chain.produce(when, txs)
        if len(result.txs) != len(txs):
            raise RecordingError(f"{name}: a tx was left out: {result.rejected}")
        receipts = [receipt_json(r) for r in result.receipts]
        for task, receipt in zip(tasks, receipts[len(txs) :], strict=True):
            task["code"] = receipt["code"]
        return {
            "name": name,
            "height": block.header.height,
            "time_ms": block.header.time_ms,
            "pre_state_root": pre.hex(),
            "post_state_root": block.header.state_root.hex(),
            "receipts_root": block.header.receipts_root.hex(),
            "receipts": receipts,
            "tasks": tasks,
            "writes": writes_json(result.state_diff),
        }

    def _keep(self, case: dict[str, Any]) -> dict[str, Any]:
        self.cases.append(case)
        return case


def genesis_doc() -> dict[str, Any]:
    """``contracts/genesis.json``: where every rulebook file starts."""
    chain = Chain()
    ledger = chain.ledger
    state = ledger.genesis_state().diff()
    return {
        "about": (
            "The state every rulebook file starts from: the development genesis "
            "(genesis.json, cli/localnet/devnet.py), its block hash, state root, the contract "
            "code pins and the full genesis state (key hex -> value hex)."
        ),
        "chain_id": ledger.chain_id,
        "genesis_time_ms": chain.genesis.genesis_time_ms,
        "genesis_hash": ledger.genesis_hash.hex(),
        "state_root": chain.state_root.hex(),
        "code_hashes": dict(chain.genesis.contracts),
        "state": writes_json(state),
    }


def replay(doc: dict[str, Any]) -> list[str]:
    """Run a file's recorded txs on a fresh ledger from genesis (empty blocks fill the heights
    between cases); the differences from the file, or [] if there are none."""
    chain = Chain()
    problems: list[str] = []
    for case in doc["cases"]:
        name = case["name"]
        if case["pre_state_root"] != chain.state_root.hex():
            problems.append(f"{name}: pre-state root differs")
            return problems
        while chain.height + 1 < case["height"]:
            chain.produce(chain.time_ms + 1, [])
        if case["kind"] == "rejected":
            got = chain.check(SignedTx.decode(bytes.fromhex(case["tx"])))
            if got != case["code"]:
                problems.append(f"{name}: admission gives {got}, the file says {case['code']}")
            continue
        txs = [SignedTx.decode(bytes.fromhex(case["tx"]))] if case["kind"] == "call" else []
        block, result = chain.produce(case["time_ms"], txs)
        if [receipt_json(r) for r in result.receipts] != case["receipts"]:
            problems.append(f"{name}: receipts differ")
        if writes_json(result.state_diff) != case["writes"]:
            problems.append(f"{name}: writes differ")
        if block.header.state_root.hex() != case["post_state_root"]:
            problems.append(f"{name}: post-state root differs")
            return problems
    return problems
