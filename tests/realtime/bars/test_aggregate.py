"""The aggregator's bars equal bars computed here, independently, from a tape.

The tape has several symbols, a boundary exactly on a trade's timestamp, a trade
without a size, a quiet interval, a late trade within the window (a revision),
one too late for the 1 s bars, a late trade into a window that had no bar, two
breaks (one of a bar's closing trade), timer closes and a quote-only symbol.
"""

from __future__ import annotations

import pytest

from realtime.bars.aggregate import BarAggregator
from realtime.upstream.protocol import Tick

T0 = 1_700_000_000_000  # a multiple of 5 s
INTERVALS = {"1s": 1_000, "5s": 5_000}
WINDOW = 2


def T(sym, dt, price, size=None):
    return ("tick", Tick(sym, T0 + dt, "T", last_price=price, last_size=size))


def B(sym, dt, price, size):
    return ("tick", Tick(sym, T0 + dt, "B", last_price=price, last_size=size))


def Q(sym, dt, bid, ask):
    return ("tick", Tick(sym, T0 + dt, "Q", bid_price=bid, ask_price=ask))


def CLOSE(dt):
    return ("close", T0 + dt)


TAPE = [
    T("AAPL", 0, 100.0, 10),  # on the boundary: opens bar 0
    Q("EURUSD", 100, 1.0800, 1.0802),
    T("MSFT", 250, 300.0, 3),
    T("AAPL", 400, 101.0, 5),
    Q("EURUSD", 600, 1.0804, 1.0808),
    T("MSFT", 750, 301.0, 2),
    T("AAPL", 999, 99.5),  # no size: price only
    T("AAPL", 1000, 100.5, 20),  # boundary: closes AAPL's bar 0
    T("MSFT", 1250, 302.0, 4),
    B("MSFT", 1300, 301.0, 2),  # breaks MSFT's closing trade of bar 0
    T("AAPL", 1500, 102.0, 1),
    ("tick", Tick("AAPL", T0 + 1600, "T", last_price=None)),  # no price: ignored
    B("AAPL", 1600, 101.0, 5),  # breaks a middle trade of AAPL's bar 0
    Q("EURUSD", 1700, 1.0790, 1.0794),
    CLOSE(2000),  # the timer: bars ending by 2 s close
    T("AAPL", 3000, 103.0, 7),
    Q("EURUSD", 3100, 1.0810, 1.0812),
    T("AAPL", 3100, 103.5, 3),
    T("AAPL", 1200, 101.5, 9),  # late, within 2 intervals: revises bar 1
    T("AAPL", 2500, 102.5, 2),  # late into a window that had no bar: bar 2
    T("MSFT", 4000, 304.0, 1),  # MSFT quiet in seconds 2 and 3
    T("AAPL", 4000, 104.0, 1),
    T("AAPL", 200, 99.0, 4),  # too late for 1 s; 5 s bar 0 is still open
    T("MSFT", 4999, 305.0, 5),
    T("MSFT", 5000, 306.0, 6),  # 5 s boundary exactly on a trade
    T("AAPL", 5001, 105.0, 2),
    CLOSE(100_000),
]


# --- the independent reference: lists of trades, grouped -------------------------
def reference(prefix):
    """Bars of every stream after ``prefix`` of the tape, from the trades it holds."""
    trades = {}  # (sym, interval) -> list of [ts, arrival, price, size]
    newest = {}
    traded = set()
    mids = {}
    for arrival, (kind, event) in enumerate(prefix):
        if kind != "tick":
            continue
        tick = event
        for name, ms in INTERVALS.items():
            key = (tick.symbol, name)
            start = tick.timestamp // ms * ms
            if tick.kind == "T" and tick.last_price is not None:
                traded.add(tick.symbol)
                if start < newest.get(key, start) - WINDOW * ms:
                    continue  # too late for this interval
                newest[key] = max(newest.get(key, start), start)
                trades.setdefault(key, []).append(
                    (tick.timestamp, arrival, tick.last_price, tick.last_size)
                )
            elif tick.kind == "B":
                same = [
                    t
                    for t in trades.get(key, [])
                    if (t[2], t[3]) == (tick.last_price, tick.last_size)
                ]
                if same:
                    trades[key].remove(max(same))
            elif tick.kind == "Q" and tick.symbol not in traded:
                mids.setdefault(key, []).append(
                    (tick.timestamp, (tick.bid_price + tick.ask_price) / 2)
                )
    bars = {}
    for (sym, name), items in trades.items():
        ms = INTERVALS[name]
        for start in {t[0] // ms * ms for t in items}:
            inside = sorted(t for t in items if t[0] // ms * ms == start)
            sized = [t for t in inside if t[3] is not None]
            volume = sum(t[3] for t in sized)
            bars[(sym, name, start)] = {
                "open": inside[0][2],
                "high": max(t[2] for t in inside),
                "low": min(t[2] for t in inside),
                "close": inside[-1][2],
                "volume": volume,
                "vwap": round(sum(t[2] * t[3] for t in sized) / volume, 6)
                if volume
                else None,
                "trades": len(inside),
            }
    for (sym, name), items in mids.items():
        ms = INTERVALS[name]
        for start in {t[0] // ms * ms for t in items}:
            inside = [m for ts, m in items if ts // ms * ms == start]
            bars[(sym, name, start)] = {
                "open": inside[0],
                "high": max(inside),
                "low": min(inside),
                "close": inside[-1],
                "volume": None,
                "vwap": None,
                "trades": 0,
                "source": "mid",
                "quotes": len(inside),
            }
    return bars


def run_tape():
    aggregator = BarAggregator(INTERVALS, window=WINDOW)
    emitted = []  # (tape position, message)
    for position, (kind, event) in enumerate(TAPE):
        bars = (
            aggregator.on_tick(event) if kind == "tick" else aggregator.close_due(event)
        )
        emitted.extend((position, bar.to_message()) for bar in bars)
    return emitted


FIELDS = ("open", "high", "low", "close", "volume", "vwap", "trades")


def essence(message):
    out = {f: message[f] for f in FIELDS}
    if message.get("source") == "mid":
        out["source"] = "mid"
        out["quotes"] = message["quotes"]
    return out


def test_every_emitted_bar_equals_the_reference_at_that_point_of_the_tape():
    for position, message in run_tape():
        expected = reference(TAPE[: position + 1])
        key = (message["symbol"], message["interval"], message["start"] - T0 + T0)
        assert essence(message) == expected[key], (position, message)
        assert message["end"] - message["start"] == INTERVALS[message["interval"]]


def test_final_bars_equal_the_reference_of_the_whole_tape():
    final = {}
    for _, message in run_tape():
        final[(message["symbol"], message["interval"], message["start"])] = essence(
            message
        )
    assert final == reference(TAPE)


def test_revisions_are_marked_and_first_emissions_are_not():
    seen = set()
    revised = []
    for _, message in run_tape():
        key = (message["symbol"], message["interval"], message["start"])
        assert message.get("updated", False) == (key in seen), message
        if key in seen:
            revised.append((key[0], key[1], key[2] - T0))
        seen.add(key)
    assert sorted(revised) == sorted(
        [("MSFT", "1s", 0), ("AAPL", "1s", 0), ("AAPL", "1s", 1000)]
    )


def test_a_quiet_interval_emits_no_bar_and_quote_only_symbols_get_mid_bars():
    starts = {(m["symbol"], m["interval"]): set() for _, m in run_tape()}
    for _, m in run_tape():
        starts[(m["symbol"], m["interval"])].add(m["start"] - T0)
    assert starts[("MSFT", "1s")] == {0, 1000, 4000, 5000}
    assert starts[("AAPL", "1s")] == {0, 1000, 2000, 3000, 4000, 5000}
    eur = [m for _, m in run_tape() if m["symbol"] == "EURUSD"]
    assert {m["start"] - T0 for m in eur if m["interval"] == "1s"} == {0, 1000, 3000}
    assert all(m["source"] == "mid" and m["volume"] is None for m in eur)


def test_the_timer_closes_a_quiet_symbols_last_bar():
    aggregator = BarAggregator(INTERVALS)
    assert not aggregator.on_tick(T("AAPL", 10, 100.0, 1)[1])
    assert aggregator.close_due(T0 + 999) == []
    closed = aggregator.close_due(T0 + 1000)
    assert [(b.symbol, b.interval, b.start - T0) for b in closed] == [("AAPL", "1s", 0)]
    assert aggregator.close_due(T0 + 60_000)[0].interval == "5s"


# --- the feed's path: buffered ticks folded in by the timer -----------------------
def run_tape_buffered():
    """The tape as the feed runs it: ``add`` every tick, ``close_due`` folds in."""
    aggregator = BarAggregator(INTERVALS, window=WINDOW)
    emitted = []
    for position, (kind, event) in enumerate(TAPE):
        if kind == "tick":
            aggregator.add(event)
        else:
            emitted.extend(
                (position, b.to_message()) for b in aggregator.close_due(event)
            )
    return emitted


def test_buffered_bars_equal_the_reference_when_emitted_and_at_the_end():
    final = {}
    for position, message in run_tape_buffered():
        key = (message["symbol"], message["interval"], message["start"])
        assert essence(message) == reference(TAPE[: position + 1])[key], message
        final[key] = essence(message)
    assert final == reference(TAPE)


def random_tape(seed, seconds=20, symbols=("AAPL", "MSFT", "TSLA")):
    """In-order sized trades, the feed's common case, with a timer each second."""
    import random

    rng = random.Random(seed)
    events = []
    for second in range(seconds):
        for ms in sorted(rng.sample(range(1000), 40)):
            symbol = rng.choice(symbols)
            price = round(100 + rng.gauss(0, 1), 2)
            size = rng.choice([1, 5, 10, 100, 250])
            events.append(T(symbol, second * 1000 + ms, price, size))
        if rng.random() < 0.2:  # now and then a trade that takes the slow path
            events.append(T(rng.choice(symbols), second * 1000 + 999, 101.0))
        if rng.random() < 0.2:
            events.append(B(symbols[0], second * 1000 + 999, 100.0, 5))
        events.append(CLOSE(second * 1000 + 1250))
    events.append(CLOSE(10**7))
    return events


@pytest.mark.parametrize(
    "intervals, chunk_ms",
    [
        ({"1s": 1_000, "5s": 5_000, "1m": 60_000}, 1_000),
        ({"5s": 5_000, "1m": 60_000}, 5_000),
    ],
)
def test_the_batch_path_gives_the_bars_trade_by_trade_gives(intervals, chunk_ms):
    tape = random_tape(3)
    finals = []
    for buffered in (False, True):
        aggregator = BarAggregator(intervals)
        assert aggregator.chunk_ms == chunk_ms
        final = {}
        for kind, event in tape:
            if kind == "tick":
                bars = () if buffered else aggregator.on_tick(event)
                if buffered:
                    aggregator.add(event)
            else:
                bars = aggregator.close_due(event)
            for bar in bars:
                m = bar.to_message()
                final[(m["symbol"], m["interval"], m["start"])] = m
        finals.append(final)
        if buffered:
            assert aggregator.batched_trades > len(tape) // 2  # the fast path ran
    per_trade, batched = finals
    assert batched.keys() == per_trade.keys()
    for key, message in per_trade.items():
        other = batched[key]
        assert {f: other[f] for f in ("open", "high", "low", "close", "trades")} == {
            f: message[f] for f in ("open", "high", "low", "close", "trades")
        }, key
        assert abs(other["volume"] - message["volume"]) < 1e-6, key
        assert abs(other["vwap"] - message["vwap"]) < 1e-5, key


def test_a_break_after_batched_trades_is_undone_exactly():
    aggregator = BarAggregator({"1s": 1_000, "1m": 60_000})
    for ms, price, size in [(10, 100.0, 1), (20, 105.0, 2), (30, 101.0, 3)]:
        aggregator.add(T("AAPL", ms, price, size)[1])
    aggregator.add(T("AAPL", 1_010, 99.0, 4)[1])  # a later second: 1s bar 0 closes
    assert [b.start - T0 for b in aggregator.close_due(T0 + 1_000)] == [0]
    assert aggregator.batched_trades == 3  # the fourth is held for its own second
    # Break the high of the closed 1 s bar; the open minute bar changes too.
    revised = aggregator.on_tick(B("AAPL", 1_100, 105.0, 2)[1])
    assert [(b.interval, b.updated, b.high, b.volume) for b in revised] == [
        ("1s", True, 101.0, 4.0)
    ]
    minute = aggregator.close_due(T0 + 60_000)
    one_m = [b for b in minute if b.interval == "1m"][0]
    assert (one_m.open, one_m.high, one_m.low, one_m.close) == (
        100.0,
        101.0,
        99.0,
        99.0,
    )
    assert one_m.trades == 3 and one_m.volume == 8.0


def test_a_bar_revised_twice_in_one_flush_is_emitted_once():
    aggregator = BarAggregator({"1s": 1_000})
    aggregator.add(T("AAPL", 10, 100.0, 1)[1])
    assert len(aggregator.close_due(T0 + 1_000)) == 1
    for ms in (20, 30):  # two late trades into the closed bar
        aggregator.add(T("AAPL", ms, 101.0, 1)[1])
    revised = aggregator.close_due(T0 + 1_500)
    assert [(b.start - T0, b.trades, b.updated) for b in revised] == [(0, 3, True)]
