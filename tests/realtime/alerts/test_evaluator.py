"""Crossing semantics of the pure evaluator, on scripted tapes that oscillate
around the threshold (realtime/alerts/evaluator.py, docs/protocol.md "Alerts")."""

from __future__ import annotations

from datetime import date

from realtime.alerts.evaluator import (
    CROSSES_ABOVE,
    CROSSES_BELOW,
    EVERY_CROSS,
    ONCE,
    ONCE_PER_DAY,
    PCT_ABOVE,
    PCT_BELOW,
    AlertEvaluator,
    AlertSpec,
)

EPOCH = "e1"


def spec(pk: int = 1, **fields) -> AlertSpec:
    values = {
        "id": pk,
        "owner_id": 7,
        "symbol": "AAPL",
        "condition": CROSSES_ABOVE,
        "threshold": 200.0,
        "frequency": EVERY_CROSS,
        "hysteresis": 0.0,
    }
    values.update(fields)
    return AlertSpec(**values)


def run(evaluator: AlertEvaluator, tape, symbol: str = "AAPL", day_ms: int = 0):
    """Feed ``tape`` (prices, one per tick); return (alert id, seq) per firing."""
    fired = []
    for seq, price in enumerate(tape, start=1):
        for f in evaluator.on_price(symbol, price, day_ms + seq, seq, EPOCH):
            fired.append((f.alert.id, f.seq))
    return fired


def test_staying_above_the_threshold_is_one_event_not_three():
    ev = AlertEvaluator()
    ev.load([spec()])
    assert run(ev, [199.0, 201.0, 202.0, 203.0]) == [(1, 2)]


def test_first_price_only_sets_the_position():
    ev = AlertEvaluator()
    ev.load([spec()])
    assert run(ev, [205.0, 206.0]) == []


def test_every_cross_fires_on_each_crossing_of_an_oscillating_tape():
    ev = AlertEvaluator()
    ev.load([spec(frequency=EVERY_CROSS)])
    tape = [199, 201, 199, 201, 199, 201]
    assert run(ev, tape) == [(1, 2), (1, 4), (1, 6)]


def test_touching_the_threshold_exactly_counts_as_crossing_above():
    ev = AlertEvaluator()
    ev.load([spec()])
    assert run(ev, [199.5, 200.0]) == [(1, 2)]


def test_hysteresis_needs_a_retreat_past_the_rearm_distance():
    ev = AlertEvaluator()
    ev.load([spec(frequency=EVERY_CROSS, hysteresis=1.0)])
    # Fires at 201; dips to 199.5 (not below 199): no re-arm, 201 again is silent;
    # falls to 198.9 (below 199): re-armed, the next crossing fires.
    tape = [199, 201, 199.5, 201, 198.9, 200.5]
    assert run(ev, tape) == [(1, 2), (1, 6)]


def test_once_fires_one_time_ever():
    ev = AlertEvaluator()
    ev.load([spec(frequency=ONCE)])
    assert run(ev, [199, 201, 199, 201, 199, 201]) == [(1, 2)]


def test_once_per_day_fires_once_per_trading_day():
    days = {}

    def day_of(ts: int) -> date:
        return days.get(ts, date(2026, 1, 5)) if ts < 1000 else date(2026, 1, 6)

    ev = AlertEvaluator(day_of=day_of)
    ev.load([spec(frequency=ONCE_PER_DAY)])
    fired = run(ev, [199, 201, 199, 201, 199, 201])  # day one: ts 1..6
    assert fired == [(1, 2)]
    # The next day (ts >= 1000): the first crossing fires again, once.
    fired = [
        (f.alert.id, f.seq)
        for seq, price in enumerate([199, 201, 199, 201], start=7)
        for f in ev.on_price("AAPL", price, 1000 + seq, seq, EPOCH)
    ]
    assert fired == [(1, 8)]


def test_crosses_below_mirrors_above():
    ev = AlertEvaluator()
    ev.load([spec(condition=CROSSES_BELOW, threshold=100.0, hysteresis=0.5)])
    tape = [101, 99, 100.2, 99, 100.6, 99.9]
    assert run(ev, tape) == [(1, 2), (1, 6)]


def test_a_jump_crosses_every_threshold_between_and_only_those():
    ev = AlertEvaluator()
    ev.load(
        [
            spec(1, threshold=201.0),
            spec(2, threshold=203.0),
            spec(3, threshold=210.0),
            spec(4, condition=CROSSES_BELOW, threshold=202.0),
        ]
    )
    assert sorted(run(ev, [200.0, 205.0])) == [(1, 2), (2, 2)]
    assert run(ev, [205.0, 201.0]) == [(4, 2)]  # the prices' book continues


def test_other_symbols_and_reloads_do_not_cross():
    ev = AlertEvaluator()
    ev.load([spec()])
    assert run(ev, [150, 250], symbol="MSFT") == []
    ev.on_price("AAPL", 199.0, 1, 1, EPOCH)
    ev.load([spec(), spec(2, threshold=199.5)])  # reload keeps the position
    assert sorted(run(ev, [201.0])) == [(1, 1), (2, 1)]


def test_reload_keeps_arming_of_an_unchanged_alert_and_resets_a_changed_one():
    ev = AlertEvaluator()
    ev.load([spec(frequency=ONCE)])
    assert run(ev, [199, 201]) == [(1, 2)]
    ev.load([spec(frequency=ONCE)])
    assert run(ev, [199, 201]) == []
    ev.load([spec(frequency=ONCE, threshold=200.5)])
    assert run(ev, [199, 201]) == [(1, 2)]


def test_pct_change_day_against_previous_close():
    ev = AlertEvaluator()
    ev.load(
        [
            spec(1, condition=PCT_ABOVE, threshold=2.0),
            spec(2, condition=PCT_BELOW, threshold=-1.0),
        ]
    )
    assert run(ev, [101, 103]) == []  # no previous close yet: waits
    ev.set_previous_close("AAPL", 100.0)
    fired = ev.on_price("AAPL", 101.0, 1, 10, EPOCH)
    assert fired == []  # first value of the percent book: position only
    fired = ev.on_price("AAPL", 102.5, 2, 11, EPOCH)
    assert [(f.alert.id, round(f.value, 6)) for f in fired] == [(1, 2.5)]
    fired = ev.on_price("AAPL", 98.9, 3, 12, EPOCH)
    assert [(f.alert.id, round(f.value, 6)) for f in fired] == [(2, -1.1)]
    assert fired[0].price == 98.9


def test_a_new_previous_close_is_not_a_crossing():
    ev = AlertEvaluator()
    ev.load([spec(condition=PCT_ABOVE, threshold=2.0)])
    ev.set_previous_close("AAPL", 100.0)
    run(ev, [101.0, 101.5])
    ev.set_previous_close("AAPL", 95.0)  # a new day: +6.8 % at once
    assert ev.on_price("AAPL", 101.5, 9, 9, EPOCH) == []
    assert ev.symbols == frozenset({"AAPL"})


def test_cost_is_the_alerts_crossed_not_the_alerts_held():
    ev = AlertEvaluator()
    ev.load([spec(i, threshold=100.0 + i) for i in range(1, 10_001)])
    ev.on_price("AAPL", 50.0, 1, 1, EPOCH)
    book = ev.prices["AAPL"]
    assert book.above.rising(50.0, 50.5) == []
    assert len(ev.on_price("AAPL", 103.0, 2, 2, EPOCH)) == 3
