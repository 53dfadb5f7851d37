"""The aggregator's bars equal bars computed here, independently, from a tape.

The tape has several symbols, a boundary exactly on a trade's timestamp, a trade
without a size, a quiet interval, a late trade within the window (a revision),
one too late for the 1 s bars, a late trade into a window that had no bar, two
breaks (one of a bar's closing trade), timer closes and a quote-only symbol.
"""

from __future__ import annotations

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
