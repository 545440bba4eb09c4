"""Write examples/trades.csv: a deterministic day of exchange trades on the dev network.

    python examples/make_trades.py [--rows 3000] [--seed 20260101] [--out examples/trades.csv]

The file is for ``clearchain trade import`` (columns in docs/CLI.md). The generator follows the
dev genesis holdings (cli/devnet.py BALANCES) and plays every trade forward in the order the
chain will settle it (file order, in batches of consecutive rows), so that every ordinary row
can settle: its seller holds the quantity and its buyer the cash at that point. One row in
``FAIL_EVERY`` instead must fail, for a reason its trade id states
(``T00040-expect-same_account``), cycling through:

- ``insufficient_securities``: the seller holds less of the instrument than it delivers;
- ``insufficient_cash``: the buyer holds less cash than the consideration;
- ``same_account``: buyer and seller are the same account;
- ``instrument_is_cash``: the instrument traded is the cash asset USD;
- ``unknown_account``: the buyer's account does not exist.

The same seed writes the same bytes. Amounts are display decimals, exact to the instrument's
decimals (quantity) and the currency's (price per one unit); a USD row's price is a whole number.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.localnet import devnet  # noqa: E402
from contracts.money import consideration  # noqa: E402

SEED = 20260101
ROWS = 3_000
FAIL_EVERY = 40  # one row in 40 must fail
FAILURES = (
    "insufficient_securities",
    "insufficient_cash",
    "same_account",
    "instrument_is_cash",
    "unknown_account",
)
UNKNOWN_ACCOUNT = "C-C999"
CASH = "USD"
# instrument -> (reference price in cents per unit, smallest and largest quantity in minor units, weight)
MARKET: dict[str, tuple[int, int, int, int]] = {
    "ACME": (182_50, 1, 200, 35),
    "GLOBEX": (41_10, 1, 500, 30),
    "TBILL": (99_50, 1_0000, 50_0000, 15),
    "BTC": (97_000_00, 10_000, 25_000_000, 20),
}
DECIMALS = {i["id"]: int(i["decimals"]) for i in devnet.INSTRUMENTS}
ACCOUNTS = [a["id"] for a in devnet.ACCOUNTS]
HEADER = ["trade_id", "buyer", "seller", "instrument", "quantity", "price"]


def display(units: int, decimals: int) -> str:
    """Exact decimal text without separators, every decimal place written ("182.50")."""
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)


class Book:
    """Every dev account's holdings as the chain will have them, trade after trade."""

    def __init__(self) -> None:
        self.held = {(a, s): 0 for a in ACCOUNTS for s in DECIMALS}
        for account, asset, amount in devnet.BALANCES:
            self.held[(account, asset)] += amount
        self.price = {iid: ref for iid, (ref, _, _, _) in MARKET.items()}

    def settle(self, buyer: str, seller: str, iid: str, qty: int, price: int) -> None:
        cash = consideration(qty, price, DECIMALS[iid])
        assert self.held[(seller, iid)] >= qty and self.held[(buyer, CASH)] >= cash and buyer != seller
        self.held[(seller, iid)] -= qty
        self.held[(buyer, iid)] += qty
        self.held[(buyer, CASH)] -= cash
        self.held[(seller, CASH)] += cash

    def next_price(self, rng: random.Random, iid: str) -> int:
        """A random walk of at most 0.2% a step, kept within 10% of the reference."""
        ref = MARKET[iid][0]
        step = rng.randint(-(self.price[iid] // 500), self.price[iid] // 500)
        self.price[iid] = min(max(self.price[iid] + step, ref * 9 // 10), ref * 11 // 10)
        return self.price[iid]


def ordinary_trade(rng: random.Random, book: Book) -> tuple[str, str, str, int, int]:
    """A trade that settles given the book: (buyer, seller, instrument, quantity, price)."""
    instruments = list(MARKET)
    weights = [MARKET[i][3] for i in instruments]
    while True:
        iid = rng.choices(instruments, weights)[0]
        _, low, high, _ = MARKET[iid]
        sellers = [a for a in ACCOUNTS if book.held[(a, iid)] >= low]
        if not sellers:
            continue
        seller = rng.choice(sellers)
        qty = min(rng.randint(low, high), book.held[(seller, iid)])
        price = book.next_price(rng, iid)
        cash = consideration(qty, price, DECIMALS[iid])
        buyers = [a for a in ACCOUNTS if a != seller and book.held[(a, CASH)] >= cash]
        if buyers:
            return rng.choice(buyers), seller, iid, qty, price


def failing_trade(rng: random.Random, book: Book, reason: str) -> tuple[str, str, str, int, int]:
    """A trade that must fail with ``reason`` given the book (which it leaves unchanged)."""
    iid = rng.choice(["ACME", "GLOBEX"])
    price = book.price[iid]
    if reason == "insufficient_securities":
        seller = min(ACCOUNTS, key=lambda a: (book.held[(a, iid)], a))
        qty = book.held[(seller, iid)] + rng.randint(1, 50)
        buyer = max((a for a in ACCOUNTS if a != seller), key=lambda a: (book.held[(a, CASH)], a))
        return buyer, seller, iid, qty, price
    if reason == "insufficient_cash":
        buyer = min(ACCOUNTS, key=lambda a: (book.held[(a, CASH)], a))
        seller = max((a for a in ACCOUNTS if a != buyer), key=lambda a: (book.held[(a, iid)], a))
        qty = book.held[(seller, iid)]
        assert consideration(qty, price, DECIMALS[iid]) > book.held[(buyer, CASH)]
        return buyer, seller, iid, qty, price
    if reason == "same_account":
        account = rng.choice(ACCOUNTS)
        return account, account, iid, rng.randint(1, 10), price
    if reason == "instrument_is_cash":
        buyer, seller = rng.sample(ACCOUNTS, 2)
        return buyer, seller, CASH, rng.randint(1, 1_000) * 100, 1_00  # price "1"
    assert reason == "unknown_account"
    seller = max(ACCOUNTS, key=lambda a: (book.held[(a, iid)], a))
    return UNKNOWN_ACCOUNT, seller, iid, rng.randint(1, 10), price


def make_rows(rows: int = ROWS, seed: int = SEED) -> list[list[str]]:
    rng = random.Random(seed)
    book = Book()
    out = []
    for n in range(1, rows + 1):
        trade_id = f"T{n:05d}"
        if n % FAIL_EVERY == 0:
            reason = FAILURES[(n // FAIL_EVERY - 1) % len(FAILURES)]
            buyer, seller, iid, qty, price = failing_trade(rng, book, reason)
            trade_id += "-expect-" + reason
        else:
            buyer, seller, iid, qty, price = ordinary_trade(rng, book)
            book.settle(buyer, seller, iid, qty, price)
        price_decimals = DECIMALS[CASH] if iid != CASH else 0  # a cash row's price is whole
        price_units = price if iid != CASH else price // 10 ** DECIMALS[CASH]
        out.append(
            [trade_id, buyer, seller, iid, display(qty, DECIMALS[iid]), display(price_units, price_decimals)]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "trades.csv")
    args = parser.parse_args()
    rows = make_rows(args.rows, args.seed)
    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    failing = sum(1 for r in rows if "-expect-" in r[0])
    print(
        f"wrote {args.out}: {len(rows)} trades, {len(rows) - failing} settle and {failing} fail on the dev genesis"
    )


if __name__ == "__main__":
    main()
