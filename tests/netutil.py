"""Test helpers for networks of nodes: a signer of dev participants' transactions, and one
node running in this process on its own event loop (real sockets, a LevelDB store)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from node.runtime import Node


class TxMaker:
    """Signs dev participants' transactions with consecutive nonces."""

    def __init__(self, chain_id: str = devnet.CHAIN_ID) -> None:
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}

    def tx(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.nonces.get(sender, 0) + 1
        self.nonces[sender] = nonce
        return Tx(self.chain_id, sender, nonce, contract, method, args, 0).sign(devnet.signing_keys(sender))


class NodeThread:
    """One node on its own event loop in a daemon thread, until ``stop``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self.url = ""
        self.node: Node | None = None
        self.thread = threading.Thread(target=self._run, name="clearchain-node", daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.started.wait(30), "the node did not start"
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)

    def on_loop(self, fn: Any) -> Any:
        """Run ``fn`` on the node's loop, between its event handlers; returns its result."""

        async def go() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread by start()
            self.failure = exc
            self.started.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        node = Node(self.home)
        await node.start()
        self.node = node
        assert node.rpc is not None
        host, port = node.rpc.address
        self.url = f"http://{host}:{port}"
        self.started.set()
        try:
            await self.stop_event.wait()
        finally:
            await node.shutdown()
