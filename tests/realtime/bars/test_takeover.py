"""A feed takeover mid-tape: bars rebuilt from the tick history equal the bars
of an uninterrupted run, each window emitted once (revisions allowed).

The old leader runs the tape up to a cut (every cut is tried), recording each
tick the way the feed does (``merge_tick`` then ``encode_price_update``, the
history's text); the new leader rebuilds from those texts and the bars the old
one emitted (realtime/bars/takeover.py), then runs the rest of the tape.
"""

from __future__ import annotations

import pytest

from realtime.bars.aggregate import BarAggregator
from realtime.bars.takeover import Emitted, covers, rebuild, tick_of
from realtime.feed.history import RecentUpdates
from realtime.feed.state import encode_price_update, merge_tick
from tests.realtime.bars.test_aggregate import (
    INTERVALS,
    T0,
    TAPE,
    WINDOW,
    B,
    Q,
    T,
    essence,
)

# A trade without a price is not in a ``price_update`` (its text repeats the
# previous trade): tick_of cannot tell it from a trade, so this tape leaves it out.
TAPE_RECORDABLE = [
    (kind, event)
    for kind, event in TAPE
    if not (kind == "tick" and event.kind == "T" and event.last_price is None)
]
CUTS = [i for i, (kind, _) in enumerate(TAPE_RECORDABLE) if kind == "tick"]


def record(ticks):
    """Per symbol, the history texts of ``ticks``, as the feed writes them."""
    states, texts = {}, {}
    for seq, tick in enumerate(ticks, 1):
        state = merge_tick(states.get(tick.symbol), tick, "2026-01-01T00:00:00Z", seq)
        states[tick.symbol] = state
        texts.setdefault(tick.symbol, []).append(encode_price_update(state))
    return texts


def run(aggregator, tape):
    out = []
    for kind, event in tape:
        if kind == "tick":
            out.extend(bar.to_message() for bar in aggregator.on_tick(event))
        else:
            out.extend(bar.to_message() for bar in aggregator.close_due(event))
    return out


def emitted_of(messages):
    found = Emitted()
    for m in messages:
        key = f"{m['symbol']}@{m['interval']}"
        found.starts[key] = max(found.starts.get(key, m["start"]), m["start"])
        if m.get("source") != "mid":
            found.traded.add(m["symbol"])
    return found


def with_takeover(cut, size=1000):
    """Every bar message of the tape with the leader replaced before ``cut``."""
    before, after = TAPE_RECORDABLE[:cut], TAPE_RECORDABLE[cut:]
    old = run(BarAggregator(INTERVALS, window=WINDOW), before)
    ticks = [event for kind, event in before if kind == "tick"]
    tapes = {
        symbol: RecentUpdates(texts[-size:], None, min(len(texts), size), size, 600)
        for symbol, texts in record(ticks).items()
    }
    new = BarAggregator(INTERVALS, window=WINDOW)
    now_ms = max((t.timestamp for t in ticks), default=T0)
    rebuilt = [b.to_message() for b in rebuild(new, tapes, emitted_of(old), now_ms)]
    return old + rebuilt + run(new, after)


def finals(messages):
    out = {}
    for m in messages:
        out[(m["symbol"], m["interval"], m["start"])] = essence(m)
    return out


@pytest.mark.parametrize("cut", CUTS)
def test_bars_across_a_takeover_equal_the_uninterrupted_bars(cut):
    uninterrupted = run(BarAggregator(INTERVALS, window=WINDOW), TAPE_RECORDABLE)
    messages = with_takeover(cut)
    assert finals(messages) == finals(uninterrupted)
    first = [
        (m["symbol"], m["interval"], m["start"])
        for m in messages
        if not m.get("updated")
    ]
    assert len(first) == len(set(first)), "a window was emitted twice"
    seen = set()
    for m in messages:  # a revision only follows its window's first emission
        key = (m["symbol"], m["interval"], m["start"])
        assert m.get("updated", False) == (key in seen), (cut, m)
        seen.add(key)
    assert not any(m.get("partial") for m in messages)


def test_a_history_that_lost_the_windows_first_trades_flags_the_bar_partial():
    tape = [T("AAPL", 5000 + 300 * i, 100.0 + i, 1)[1] for i in range(6)]
    texts = record(tape)["AAPL"]
    # Capped at 3 entries (5.9 s, 6.2 s, 6.5 s): the 5 s window lost 3 trades.
    tapes = {"AAPL": RecentUpdates(texts[-3:], None, 3, 3, 600)}
    aggregator = BarAggregator(INTERVALS, window=WINDOW)
    closed = rebuild(aggregator, tapes, Emitted(), T0 + 6600)
    assert [(b.interval, b.start - T0, b.partial) for b in closed] == [
        ("1s", 5000, True)
    ]
    open_bars = {b.interval: b for b in aggregator.open_bar_list()}
    assert open_bars["5s"].partial and open_bars["5s"].trades == 3
    assert open_bars["5s"].to_message()["partial"] is True
    # The 6 s window starts after the oldest kept trade: it is whole.
    assert not open_bars["1s"].partial
    assert "partial" not in open_bars["1s"].to_message()


def test_a_bar_the_old_leader_emitted_is_not_emitted_again():
    tape = [T("AAPL", 0, 100.0, 1)[1], T("AAPL", 1200, 101.0, 2)[1]]
    tapes = {"AAPL": RecentUpdates(record(tape)["AAPL"], None, 2, 1000, 600)}
    emitted = Emitted({"AAPL@1s": T0 + 1000, "AAPL@5s": T0}, {"AAPL"})
    aggregator = BarAggregator(INTERVALS, window=WINDOW)
    assert rebuild(aggregator, tapes, emitted, T0 + 1300) == []
    assert aggregator.open_bar_list() == []  # both retired: already emitted
    late = aggregator.on_tick(T("AAPL", 1500, 102.0, 3)[1])
    assert [(b.interval, b.updated, b.trades) for b in late] == [
        ("1s", True, 2),
        ("5s", True, 3),
    ]


def test_tick_of_reads_trades_breaks_and_quotes_back_from_history_texts():
    ticks = [T("X", 0, 10.0, 5)[1], B("X", 1, 10.0, 5)[1], Q("Y", 2, 1.0, 1.2)[1]]
    texts = record(ticks)
    read = [tick_of(t) for t in texts["X"] + texts["Y"]]
    assert [(t.kind, t.last_price, t.last_size) for t in read[:2]] == [
        ("T", 10.0, 5),
        ("B", 10.0, 5),
    ]
    assert (read[2].kind, read[2].bid_price, read[2].ask_price) == ("Q", 1.0, 1.2)
    assert tick_of('{"type": "upstream_status"}') is None


def test_covers_needs_an_earlier_update_or_a_stream_below_its_cap():
    full = RecentUpdates(["x"], None, 5, 5, 600)
    short = RecentUpdates(["x"], None, 4, 5, 600)
    assert covers(full, T0 - 1, T0, T0)
    assert not covers(full, T0, T0, T0)
    assert covers(short, T0, T0, T0)
    assert not covers(short, T0, T0 - 601_000, T0)  # older than the history
