"""Vectors of the protocol's primitives: canonical encoding, key policies, tx and block hashes,
commit certificates, state-tree proofs (docs/PROTOCOL.md §1-10).

One builder per file, in ``prim_*`` modules; this one opens the dev chain once and hands it to
them: the key and admission vectors read its genesis state, then the block, certificate and
proof vectors read the blocks produced on it. No clock and no randomness anywhere: dev keys,
fixed times, deterministic Ed25519.
"""

from __future__ import annotations

from typing import Any

from cli.vectors.prim_blocks import blocks_doc
from cli.vectors.prim_certs import certificates_doc
from cli.vectors.prim_chain import open_dev_chain, produce_blocks
from cli.vectors.prim_encoding import encoding_doc, hashing_doc
from cli.vectors.prim_keys import keys_doc
from cli.vectors.prim_proofs import proofs_doc
from cli.vectors.prim_tx import transactions_doc


def files() -> dict[str, Any]:
    """File name -> JSON document."""
    chain = open_dev_chain()
    out = {
        "encoding.json": encoding_doc(),
        "hashing.json": hashing_doc(),
        "keys.json": keys_doc(chain.store),
        "transactions.json": transactions_doc(chain.store),
    }
    produce_blocks(chain)
    out["blocks.json"] = blocks_doc(chain)
    out["certificates.json"] = certificates_doc(chain)
    out["proofs.json"] = proofs_doc()
    return out
