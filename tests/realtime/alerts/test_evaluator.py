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
    # Below the lowest level: the watch interval reaches up to it, so a move
    # there is two comparisons, and the first crossing move costs the 3 crossed.
    watch = ev.watches["AAPL"]
    assert watch.hi == 101.0 and watch.lo == -float("inf")
    assert ev.on_price("AAPL", 100.5, 2, 2, EPOCH) == []
    assert len(ev.on_price("AAPL", 103.0, 3, 3, EPOCH)) == 3


class NaiveEvaluator:
    """The crossing semantics written out per alert and per tick (O(alerts)):
    the reference the fast evaluator (watch interval, bisects, stale book
    positions inside the interval) must agree with, firing for firing."""

    def __init__(self, specs, day_of):
        self.specs = list(specs)
        self.day_of = day_of
        self.armed = {s.id: True for s in self.specs}
        self.done = set()
        self.fired_day = {}
        self.last = {}  # (symbol, "price" | "pct") -> value
        self.close = {}

    def set_previous_close(self, symbol, close):
        if self.close.get(symbol) == close:
            return
        self.close[symbol] = close
        price = self.last.get((symbol, "price"))
        self.last[(symbol, "pct")] = (
            None if price is None else (price / close - 1.0) * 100.0
        )

    def on_price(self, symbol, price, tick_ts):
        moves = {"price": (self.last.get((symbol, "price")), price)}
        close = self.close.get(symbol)
        if close is not None:
            moves["pct"] = (
                self.last.get((symbol, "pct")),
                (price / close - 1.0) * 100.0,
            )
        fired = []
        for s in self.specs:
            if s.symbol != symbol or s.id in self.done:
                continue
            measure = "pct" if s.condition in (PCT_ABOVE, PCT_BELOW) else "price"
            if measure not in moves:
                continue
            prev, value = moves[measure]
            if prev is None or prev == value:
                continue
            up = s.condition in (CROSSES_ABOVE, PCT_ABOVE)
            t, h = s.threshold, s.hysteresis
            if up and value < prev and value < t - h <= prev:
                self.armed[s.id] = True
            if not up and value > prev and prev <= t + h < value:
                self.armed[s.id] = True
            crossed = prev < t <= value if up else value <= t < prev
            if crossed and self.armed[s.id]:
                if s.frequency == ONCE_PER_DAY:
                    day = self.day_of(tick_ts)
                    if self.fired_day.get(s.id) == day:
                        continue
                    self.fired_day[s.id] = day
                self.armed[s.id] = False
                if s.frequency == ONCE:
                    self.done.add(s.id)
                fired.append(s.id)
        for measure, (_, value) in moves.items():
            self.last[(symbol, measure)] = value
        return sorted(fired)


def test_fast_path_agrees_with_the_naive_semantics_on_random_tapes():
    """Cent-scale and volatile walks over dense alerts of every kind, with
    reloads and new previous closes in between: the same firings, tick by tick."""
    import random

    rng = random.Random(25)
    conditions = (CROSSES_ABOVE, CROSSES_BELOW, PCT_ABOVE, PCT_BELOW)
    frequencies = (ONCE, ONCE_PER_DAY, EVERY_CROSS)
    symbols = ("AAA", "BBB", "CCC")

    def day_of(ts):
        return date.fromordinal(700_000 + ts // 50)

    def make(pk):
        condition = rng.choice(conditions)
        pct = condition in (PCT_ABOVE, PCT_BELOW)
        threshold = round(rng.gauss(0, 2) if pct else 100 + rng.gauss(0, 2), 2)
        return spec(
            pk,
            symbol=rng.choice(symbols),
            condition=condition,
            threshold=threshold,
            frequency=rng.choice(frequencies),
            hysteresis=rng.choice((0.0, 0.0, 0.05, 0.5)),
        )

    checked = 0
    for step in (0.01, 0.05, 0.5):
        specs = [make(pk) for pk in range(1, 121)]
        fast = AlertEvaluator(day_of=day_of)
        fast.load(specs)
        naive = NaiveEvaluator(specs, day_of)
        prices = dict.fromkeys(symbols, 100.0)
        for tick in range(6_000):
            symbol = rng.choice(symbols)
            if tick % 1_500 == 700:  # a new day's previous close
                close = round(100 + rng.gauss(0, 1), 2)
                fast.set_previous_close(symbol, close)
                naive.set_previous_close(symbol, close)
            if tick % 2_000 == 1_000:  # a reload that keeps every alert
                fast.load(specs)
            prices[symbol] = price = round(prices[symbol] + rng.gauss(0, step), 2)
            got = sorted(f.alert.id for f in fast.on_price(symbol, price, tick, 1, "e"))
            assert got == naive.on_price(symbol, price, tick), (step, tick, symbol)
            checked += len(got)
    assert checked > 100  # the tapes did cross (the comparison is not vacuous)


def _tracked_reachable(*roots) -> int:
    """The objects the cyclic garbage collector tracks among those reachable from
    ``roots`` (classes, functions and modules excluded: they are the program's,
    not the data's)."""
    import gc
    import types

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen: set[int] = set()
    stack = list(roots)
    tracked = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if gc.is_tracked(obj):
            tracked += 1
            stack.extend(gc.get_referents(obj))
    return tracked


def test_stored_alerts_are_not_tracked_by_the_garbage_collector():
    """Every full collection walks every tracked object: the alerts held must
    add none, so that 100,000 of them do not cost the feed per tick
    (docs/benchmarks.md, "Alerts"). Ten times the alerts over the same symbols,
    of every kind and after firings and a reload, leave the tracked objects
    reachable from the evaluator unchanged (they are per symbol, not per alert)."""
    import gc

    symbols = ("AAA", "BBB", "CCC", "DDD")
    conditions = (CROSSES_ABOVE, CROSSES_BELOW, PCT_ABOVE, PCT_BELOW)
    frequencies = (ONCE, ONCE_PER_DAY, EVERY_CROSS)

    def loaded(count: int) -> tuple[AlertEvaluator, int]:
        specs = [
            spec(
                pk,
                symbol=symbols[pk % 4],
                condition=conditions[pk // 4 % 4],
                threshold=(pk % 7 - 3) / 2 if pk // 4 % 4 > 1 else 99 + pk % 7 / 3,
                frequency=frequencies[pk % 3],
                hysteresis=0.25 * (pk % 2),
                webhook_url=f"https://example.com/hook/{pk}" if pk % 5 else "",
            )
            for pk in range(1, count + 1)
        ]
        ev = AlertEvaluator()
        ev.load(specs)
        fired = 0
        for symbol in symbols:
            ev.set_previous_close(symbol, 100.0)
            for seq, price in enumerate((100.0, 102.5, 97.5, 101.0), start=1):
                fired += len(ev.on_price(symbol, price, seq, seq, EPOCH))
        ev.load(specs[: count // 2] + [spec(count + 1, symbol="AAA")])
        fired += len(ev.on_price("AAA", 101.5, 9, 9, EPOCH))
        # A tuple is untracked by a collection that finds its items untracked:
        # one holding rows made since the last collection, by the next one.
        gc.collect()
        gc.collect()
        return ev, fired

    small, fired_small = loaded(1_000)
    large, fired_large = loaded(10_000)
    assert fired_small > 100 and fired_large > 1_000  # states were changed
    assert len(large) == 5_001
    roots = ("prices", "pcts", "watches", "previous_close")
    tracked = _tracked_reachable(*(getattr(large, name) for name in roots))
    assert tracked == _tracked_reachable(*(getattr(small, name) for name in roots))
    assert tracked <= 10 * len(symbols)
