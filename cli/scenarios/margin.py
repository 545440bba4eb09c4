"""Scenario ``margin``: member-b goes long and member-a short through the exchange; the price
falls; member-b meets a first margin call, misses the second, and is defaulted at the deadline:
its position is closed at the oracle price and the loss is covered by its margin, its
guarantee-fund contribution, the insurance fund and the surviving members' contributions pro
rata, each step shown and checked. An admin pays what was collected to member-a.

Re-runnable: prices start from the latest recorded median (or 40.00 the first time), every oracle
publishes the same price so the median is exactly it, moves stay inside the circuit breaker's
default band, and the price is restored at the end; the expected waterfall is computed from the
funds as read just before the default, never from a pristine network. Margin rates on the
instrument are set thin (4% / 3%) so that a 6% move reaches every layer.
"""

from __future__ import annotations

from typing import Any

from cli.scenarios import ScenarioFailed, ScenarioRun

TITLE = "margin: a call met, a call missed, a default and its waterfall layer by layer"
CANDIDATES = ["INITECH", "UMBRELLA"]
FIRST_PRICE = 40_00
ORACLES = ["oracle-1", "oracle-2", "oracle-3"]
QUANTITY = 10_000
RATES = (400, 300)  # initial, maintenance (bps)
DEFAULTER, COUNTERPARTY, EXCHANGE, ADMIN = "member-b", "member-a", "xchg-alpha", "admin"
HOUSE = {"member-a": "A-HOUSE", "member-b": "B-HOUSE", "issuer-acme": "ACME-CORP", "fund-mgr": "FUND-HOUSE"}
CONTRIBUTIONS = {"member-b": 100_00, "member-a": 200_00, "issuer-acme": 100_00, "fund-mgr": 100_00}
INSURANCE = 100_00
WAIT_BLOCKS_MAX = 5  # after the due height, for the deadline task's block


def _usd(cents: int | None) -> str:
    if cents is None:
        return "none"
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _publish(s: ScenarioRun, iid: str, price: int) -> None:
    for oracle_id in ORACLES:
        s.send(oracle_id, "oracle", "submit", [iid, price])
    now = s.view("oracle", "price", instrument=iid)["price"]
    s.check(now == price, f"median of {iid} is {now}, published {price}")


def _status(s: ScenarioRun, member: str) -> dict[str, Any]:
    return s.view("margin", "status", member=member)  # type: ignore[no-any-return]


def _cash_collateral(status: dict[str, Any]) -> int:
    return sum(int(c["amount"]) for c in status["collateral"] if c["asset"] == status["currency"])


def _tidy(s: ScenarioRun, member: str) -> None:
    """Take back cash collateral a finished earlier run left (no positions, no call)."""
    st = _status(s, member)
    left = _cash_collateral(st)
    if left and not st["positions"] and st["call"] is None:
        s.send(member, "margin", "withdraw", [HOUSE[member], st["currency"], left])


def _collected(funds: dict[str, Any]) -> int:
    """The cash in the default account (it may not exist yet)."""
    return sum(int(h["amount"]) for h in funds["default_account"] if h["asset"] == funds["currency"])


def _instrument(s: ScenarioRun) -> str:
    status = {i["id"]: i["status"] for i in s.client.get("/instruments")["instruments"]}
    active = [iid for iid in CANDIDATES if status.get(iid) == "active"]
    s.check(bool(active), f"none of {CANDIDATES} is active")
    return active[0]


def _call_of(s: ScenarioRun, member: str, price: int, iid: str) -> dict[str, Any]:
    s.send("oracle-2", "margin", "check", [member])
    st = _status(s, member)
    s.check(st["call"] is not None, f"no margin call on {member} at {_usd(price)}: {st}")
    call: dict[str, Any] = st["call"]
    s.echo(
        f"{iid} at {_usd(price)}: collateral {_usd(st['collateral_value'])} < maintenance {_usd(st['maintenance'])} "
        f"-> margin call {call['id']}: top up {_usd(call['top_up'])} by height {call['due_height']}"
    )
    return call


def _setup(s: ScenarioRun, iid: str, base: int) -> None:
    _publish(s, iid, base)
    s.send(ADMIN, "margin", "set_rates", [iid, *RATES])
    for member, amount in CONTRIBUTIONS.items():
        s.send(member, "margin", "contribute", [HOUSE[member], amount])
    s.send(EXCHANGE, "margin", "fund_insurance", ["XA-HOUSE", INSURANCE])
    initial = -(-QUANTITY * base * RATES[0] // 10_000)
    for member in (DEFAULTER, COUNTERPARTY):
        _tidy(s, member)
        s.send(member, "margin", "post", [HOUSE[member], "USD", initial])
    s.fails("insufficient_margin", EXCHANGE, "margin", "open_position", [DEFAULTER, iid, QUANTITY + 1, base])
    s.send(EXCHANGE, "margin", "open_position", [DEFAULTER, iid, QUANTITY, base])
    s.send(EXCHANGE, "margin", "open_position", [COUNTERPARTY, iid, -QUANTITY, base])
    s.echo(
        f"{iid} at {_usd(base)}, margin {RATES[0] // 100}% / {RATES[1] // 100}%: {DEFAULTER} long {QUANTITY:,}, "
        f"{COUNTERPARTY} short {QUANTITY:,}, each posting initial margin {_usd(initial)} USD"
    )
    s.echo(
        f"guarantee fund: {', '.join(f'{m} {_usd(a)}' for m, a in CONTRIBUTIONS.items())}; insurance fund +{_usd(INSURANCE)}"
    )


def _expected(before: dict[str, Any], loss: int) -> list[int]:
    """The layers the rules promise, from the funds read just before the default."""
    left = loss
    layers = []
    for available in before["layers"]:
        used = min(available, left)
        layers.append(used)
        left -= used
    return layers


def _await_default(s: ScenarioRun, count_before: int, due: int) -> dict[str, Any]:
    s.wait_height(due)
    for _ in range(WAIT_BLOCKS_MAX):
        found = [
            d
            for d in s.view("margin", "defaults", after=count_before)["defaults"]
            if d["member"] == DEFAULTER
        ]
        if found:
            return found[0]  # type: ignore[no-any-return]
        s.wait_height(s.height + 1)
    raise ScenarioFailed(
        "scenario_check_failed", f"{DEFAULTER} was not defaulted by height {s.height} (due {due})"
    )


def run(s: ScenarioRun) -> None:
    iid = _instrument(s)
    base = s.last_price(iid) or FIRST_PRICE
    _setup(s, iid, base)

    # A first fall: the call is met by a top-up.
    price_a = base * 98 // 100
    _publish(s, iid, price_a)
    call = _call_of(s, DEFAULTER, price_a, iid)
    events = s.send(DEFAULTER, "margin", "post", [HOUSE[DEFAULTER], "USD", int(call["top_up"])])
    s.check(any(n == "margin_call_met" for _, n, _ in events), f"the top-up did not meet the call: {events}")
    s.echo(f"{DEFAULTER} posts {_usd(call['top_up'])}: margin call {call['id']} met")

    # A second fall: the call is not met.
    price_b = base * 94 // 100
    _publish(s, iid, price_b)
    call = _call_of(s, DEFAULTER, price_b, iid)
    s.fails("margin_call_open", DEFAULTER, "margin", "withdraw", [HOUSE[DEFAULTER], "USD", 1])
    st, funds = _status(s, DEFAULTER), s.view("margin", "funds")
    own = int(st["guarantee_fund"])
    pool = sum(int(c["amount"]) for c in funds["guarantee_fund"]["contributions"]) - own
    before = {"layers": [_cash_collateral(st), own, int(funds["insurance_fund"]), pool]}
    collected_before = _collected(funds)
    s.echo(f"{DEFAULTER} does not pay; waiting for height {call['due_height']}")

    report = _await_default(s, int(funds["defaults"]), int(call["due_height"]))
    loss = QUANTITY * (base - price_b)
    layers = [int(w["amount"]) for w in report["waterfall"]]
    s.check(report["loss"] == loss, f"loss {report['loss']}, expected {loss}")
    s.check(
        layers == _expected(before, loss),
        f"waterfall {layers}, expected {_expected(before, loss)} from {before}",
    )
    s.check(sum(layers) + int(report["uncovered"]) == loss, f"layers {layers} + uncovered != loss {loss}")
    charged = sum(int(c["amount"]) for c in report["guarantee_fund_charges"])
    s.check(charged == layers[3], f"survivors charged {charged}, layer {layers[3]}")
    collected = _collected(s.view("margin", "funds")) - collected_before
    s.check(
        collected == sum(layers), f"the default account received {collected}, layers sum to {sum(layers)}"
    )
    s.echo(
        f"{DEFAULTER} defaulted (default {report['id']}, height {report['height']}): {QUANTITY:,} {iid} closed at {_usd(price_b)}, loss {_usd(loss)}"
    )
    for w in report["waterfall"]:
        s.echo(f"  waterfall {w['layer']:<26} {_usd(w['amount']):>12}")
    for c in report["guarantee_fund_charges"]:
        s.echo(f"    {c['member']} charged {_usd(c['amount'])} pro rata")
    s.echo(f"  uncovered {_usd(report['uncovered'])}")
    s.check(_status(s, DEFAULTER)["positions"] == [], "the defaulter still has positions")

    # The clearing house pays the counterparty; everyone tidies up; the price is restored.
    if collected:
        house_before = s.balance(HOUSE[COUNTERPARTY], "USD")[0]
        s.send(ADMIN, "margin", "disburse", [HOUSE[COUNTERPARTY], "USD", collected])
        s.check(
            s.balance(HOUSE[COUNTERPARTY], "USD")[0] == house_before + collected,
            "the disbursement did not arrive",
        )
        s.echo(f"admin pays the {_usd(collected)} collected to {COUNTERPARTY} ({HOUSE[COUNTERPARTY]})")
    s.send(EXCHANGE, "margin", "close_position", [COUNTERPARTY, iid])
    for member in (COUNTERPARTY, DEFAULTER):
        _tidy(s, member)
    _publish(s, iid, base)
