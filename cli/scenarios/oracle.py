"""Oracle: three oracles publish UMBRELLA, the chain keeps the median; one oracle's outlier is
flagged out of band (its bond is slashed) yet the median absorbs it; that oracle then goes
quiet while the others keep publishing, and its price expires after the staleness window.

Re-runnable: prices start from the latest recorded median (or 25.00 the first time), and every check
is computed from what the chain shows before and after, not from a pristine network. Moves stay
well inside the circuit breaker's default band, so UMBRELLA keeps trading.
"""

from __future__ import annotations

from typing import Any

from cli.scenarios import ScenarioRun

TITLE = "oracles publish; the median, an out-of-band outlier flagged, a stale price expiring"
INSTRUMENT = "UMBRELLA"
FIRST_PRICE = 25_00  # USD cents per share, when UMBRELLA has no price yet
FEED_ROUNDS_MAX = 600  # a bound on the feed loop (each round commits a block or two)


def _param(s: ScenarioRun, contract: str, name: str) -> int:
    for c in s.client.get("/contracts")["contracts"]:
        if c["name"] == contract:
            return int(c["params"][name]["value"])
    raise AssertionError(f"no contract {contract}")


def _median(prices: list[int]) -> int:
    ordered = sorted(prices)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


def _usd(cents: int | None) -> str:
    return "none" if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _publish(s: ScenarioRun, oracle: str, price: int) -> list[tuple[str, str, dict[str, Any]]]:
    return s.send(oracle, "oracle", "submit", [INSTRUMENT, price])


def run(s: ScenarioRun) -> None:
    staleness = _param(s, "oracle", "staleness_blocks")
    band_bps = _param(s, "oracle", "band_bps")
    base = s.last_price(INSTRUMENT) or FIRST_PRICE
    quotes = {"oracle-1": base, "oracle-2": base + base // 500, "oracle-3": base - base // 1000}
    for oracle, price in quotes.items():
        _publish(s, oracle, price)
    doc = s.view("oracle", "price", instrument=INSTRUMENT)
    fresh = {x["oracle"]: x["price"] for x in doc["submissions"]}
    s.check(all(fresh.get(o) == p for o, p in quotes.items()), f"submissions shown: {fresh}")
    s.check(doc["price"] == _median(list(fresh.values())), f"median {doc['price']} of {fresh}")
    s.echo(
        f"three oracles publish {INSTRUMENT}: {', '.join(_usd(p) for p in quotes.values())} -> median {_usd(doc['price'])}"
    )

    outlier = base * 3
    events = _publish(s, "oracle-3", outlier)
    flagged = [f for _, n, f in events if n == "oracle_out_of_band"]
    s.check(len(flagged) == 1 and flagged[0]["oracle"] == "oracle-3", f"outlier events: {events}")
    slashed = sum(int(f.get("slashed", 0)) for _, n, f in events if n == "finding_recorded")
    outlier_height = s.height
    doc = s.view("oracle", "price", instrument=INSTRUMENT)
    expected = _median([quotes["oracle-1"], quotes["oracle-2"], outlier])
    s.check(doc["price"] == expected, f"median with the outlier {doc['price']}, expected {expected}")
    s.echo(
        f"oracle-3 publishes {_usd(outlier)}: out of band (more than {band_bps} bps from the median "
        f"{_usd(flagged[0]['median'])}); bond slashed {_usd(slashed)} USD; the median stays {_usd(doc['price'])}"
    )

    # oracle-3 goes quiet; oracle-1 and oracle-2 keep publishing, as a live feed does.
    expires_after = outlier_height + staleness
    s.echo(f"oracle-3 goes quiet; its price counts until height {expires_after} ({staleness} blocks)")
    rounds = 0
    while s.height <= expires_after:
        s.check(rounds < FEED_ROUNDS_MAX, "the feed did not outlast the staleness window")
        tick = rounds % 3 - 1  # -1, 0, +1 cent: a quiet market
        _publish(s, "oracle-1", quotes["oracle-1"] + tick)
        _publish(s, "oracle-2", quotes["oracle-2"] - tick)
        rounds += 1
    doc = s.view("oracle", "price", instrument=INSTRUMENT)
    fresh = {x["oracle"]: x["price"] for x in doc["submissions"]}
    s.check("oracle-3" not in fresh and len(fresh) == 2, f"fresh after the window: {fresh}")
    s.check(doc["price"] == _median(list(fresh.values())), f"median {doc['price']} of {fresh}")
    s.echo(
        f"at height {s.height} oracle-3's price has expired: median {_usd(doc['price'])} of oracle-1 and oracle-2"
    )
    past = s.view("oracle", "price", instrument=INSTRUMENT, height=outlier_height)
    s.check(past["price"] == expected, f"price at {outlier_height}: {past}")
    s.echo(f"the history still answers: at height {outlier_height} the price was {_usd(past['price'])}")
