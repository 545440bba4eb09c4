"""The pure ledger core of clearchain: encoding, keys, transactions, blocks, state and its
Merkle commitment, the LevelDB store, genesis loading, the block executor and verification.

Nothing here reads a clock, draws randomness or does network I/O; the store module is the only
one that touches the disk.
"""
