"""Every maximum in one place, named with its unit last.

Relations between the limits are asserted at import, so an edit that breaks one fails at once.
"""

from __future__ import annotations

from typing import Final

# Encoding
ENCODED_BYTES_MAX: Final = 8 * 1024 * 1024  # one decoded message or stored value
ENCODED_ITEMS_MAX: Final = 100_000  # elements in one msgpack array
ENCODED_DEPTH_MAX: Final = 16  # nesting of arrays

# Transactions
TX_BYTES_MAX: Final = 256 * 1024  # one signed transaction, encoded
TX_SIGNATURES_MAX: Final = 8  # signatures carried by one transaction
ID_CHARS_MAX: Final = 64  # participant, account, instrument and trade ids
NAME_CHARS_MAX: Final = 64  # contract and method names
CHAIN_ID_CHARS_MAX: Final = 64
MESSAGE_CHARS_MAX: Final = 256  # receipt messages

# Key policies
POLICY_KEYS_MAX: Final = 8

# Blocks
BLOCK_TXS_MAX: Final = 10_000
BLOCK_BYTES_MAX: Final = 6 * 1024 * 1024
BLOCK_TASKS_MAX: Final = 1_000  # scheduled tasks run at the end of one block
BLOCK_EVENTS_MAX: Final = 200_000

# Contracts
BATCH_TRADES_MAX: Final = 1_000  # trade tickets in one settlement transaction
CALL_EVENTS_MAX: Final = 2_000  # events one call may emit
ARG_LIST_ITEMS_MAX: Final = 1_000  # default bound on list arguments

# Amounts: 2**62 minor units leaves headroom below the encoding's signed 64-bit range for sums.
AMOUNT_MAX: Final = 2**62
PRICE_MAX: Final = 2**48
QUANTITY_MAX: Final = AMOUNT_MAX  # an 18-decimal asset needs 10**18 per unit

# Caches
# Committed state values held in memory by the store (emptied when full). A quarter of the size
# made no difference to a node's memory growth over ten minutes under load (docs/BENCHMARKS.md,
# "Memory over 10 minutes"), so it stays where the throughput runs were measured.
STATE_CACHE_ENTRIES_MAX: Final = 1_000_000

# Genesis
GENESIS_BYTES_MAX: Final = 16 * 1024 * 1024

assert BLOCK_BYTES_MAX <= ENCODED_BYTES_MAX
assert TX_BYTES_MAX * 4 <= BLOCK_BYTES_MAX
assert BATCH_TRADES_MAX <= ARG_LIST_ITEMS_MAX <= ENCODED_ITEMS_MAX
assert QUANTITY_MAX <= AMOUNT_MAX  # consideration is computed in Python ints, then bounded by AMOUNT_MAX
assert AMOUNT_MAX * 2 < 2**64
