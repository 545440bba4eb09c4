"""Test helpers for networks of nodes: a signer of dev participants' transactions."""

from __future__ import annotations

from typing import Any

from chain.tx import SignedTx, Tx
from cli import devnet


class TxMaker:
    """Signs dev participants' transactions with consecutive nonces."""

    def __init__(self, chain_id: str = devnet.CHAIN_ID) -> None:
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}

    def tx(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.nonces.get(sender, 0) + 1
        self.nonces[sender] = nonce
        return Tx(self.chain_id, sender, nonce, contract, method, args, 0).sign(devnet.signing_keys(sender))
