"""Bars across a feed takeover: the new leader continues the open bars.

Open bars live in the leader's memory (realtime/bars/aggregate.py), so a leader
killed mid-minute would take the minute's trades so far with it and the standby
would start a fresh, short bar. But every tick the old leader published is in
the tick history (realtime/feed/history.py) before any client saw it, with its
timestamp, price and size in the update text. So before the new leader's feed
starts, ``BarFeed.start`` (realtime/bars/feed.py) replays the recent tick history
into its fresh aggregator (``rebuild``): the bars the old leader had open are
rebuilt from exactly the trades clients saw and are continued by the new ticks.

What the old leader already emitted is read from the bar history's tail (the
newest ``start`` per stream key): rebuilt bars at or before it are not emitted
again (they stay revisable), later ones are emitted as ordinary closes, once.
Their seqs continue the bar history's counters, like ticks' do.

A bar whose window start the tick history no longer covers (trimmed by count or
age, ``covers``) is emitted with ``"partial": true``: its open, volume and trade
count lack the trades the history dropped. Trades upstream sent while no leader
was connected reached no one and are in no bar (as for ticks).

Rebuild runs once per leadership, before the first live tick, off the per-tick
path; it reads Redis through ``RedisTakeover`` (the wiring, realtime/backends.py,
builds it in scaled mode only: an embedded process's history dies with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import orjson

from realtime.bars.aggregate import MID, Bar, BarAggregator
from realtime.bars.keys import split_key, stream_key
from realtime.upstream.protocol import Tick

if TYPE_CHECKING:
    from realtime.feed.history import RecentUpdates, RedisHistory

# Bar history entries per stream read to find what was emitted (the broker's
# takeover replay reads as many).
EMITTED_TAIL = 16


@dataclass(slots=True)
class Emitted:
    """What earlier leaders emitted: the newest bar start per stream key, and
    the symbols whose bars came from trades (their quotes make no bars)."""

    starts: dict[str, int] = field(default_factory=dict)
    traded: set[str] = field(default_factory=set)


class TakeoverSource(Protocol):
    seconds: float  # the tick history's age bound

    async def emitted(self) -> Emitted: ...
    async def recent(self, since_ms: int) -> Mapping[str, RecentUpdates]: ...


def tick_of(text: str) -> Tick | None:
    """The tick a recorded ``price_update`` text was made from, as far as the
    bars need it (None: not an update, or nothing for bars).

    A trade's update carries its price and size (``merge_tick``), a break's the
    broken trade (``break``); a quote's carries the merged book, so a one-sided
    quote reads as the book's mid (live, the aggregator would skip it)."""
    try:
        m = orjson.loads(text)
        symbol, ts, kind = m["symbol"], int(m["timestamp"]), m["data_type"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if kind == "T":
        return Tick(symbol, ts, "T", m.get("last_price"), m.get("last_size"))
    if kind == "B":
        broken = m.get("break") or {}
        return Tick(symbol, ts, "B", broken.get("price"), broken.get("size"))
    if kind == "Q":
        return Tick(
            symbol, ts, "Q", bid_price=m.get("bid_price"), ask_price=m.get("ask_price")
        )
    return None


def _timestamp(text: str) -> int | None:
    try:
        return int(orjson.loads(text)["timestamp"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def covers(
    recent: RecentUpdates, oldest_ts: int | None, start: int, now_ms: int
) -> bool:
    """True when the history holds every update of ``start``'s window: it still
    has one from before it (streams lose their oldest first), or it lost
    entries only by age (shorter than its cap) and the window is younger."""
    if oldest_ts is not None and oldest_ts < start:
        return True
    return recent.length < recent.size and start >= now_ms - recent.seconds * 1000


def rebuild(
    aggregator: BarAggregator,
    tapes: Mapping[str, RecentUpdates],
    emitted: Emitted,
    now_ms: int,
) -> list[Bar]:
    """Replay ``tapes`` (per symbol, oldest first) into a fresh ``aggregator``;
    the closed bars no earlier leader emitted, to emit now. The open bars stay
    open in ``aggregator`` (those already emitted are retired) and close on its
    timer as if this leader had built them."""
    for symbol in emitted.traded:
        aggregator.mark_traded(symbol)
    produced: list[Bar] = []
    oldest: dict[str, int | None] = {}
    for symbol, recent in tapes.items():
        ticks = [t for t in map(tick_of, recent.texts) if t is not None]
        if any(t.kind == "T" for t in ticks):
            aggregator.mark_traded(symbol)  # no mid bars from its earlier quotes
        add = aggregator.add
        for tick in ticks:
            add(tick)  # buffered, folded in by ``flush`` below (the fast path)
        stamps = [t.timestamp for t in ticks]
        earlier = _timestamp(recent.earlier) if recent.earlier is not None else None
        if earlier is not None:
            stamps.append(earlier)
        oldest[symbol] = min(stamps) if stamps else None
    produced.extend(aggregator.flush())

    def settle(bar: Bar) -> bool:
        """Mark ``bar`` partial if uncovered; True when no leader emitted it."""
        bar.partial = not covers(
            tapes[bar.symbol], oldest.get(bar.symbol), bar.start, now_ms
        )
        return bar.start > emitted.starts.get(stream_key(bar.symbol, bar.interval), -1)

    out = []
    for bar in dict.fromkeys(produced):  # each bar once, in its final state
        if settle(bar):
            bar.updated = False  # its first emission, revised or not
            out.append(bar)
    for bar in aggregator.open_bar_list():
        if bar.symbol in tapes and not settle(bar):
            aggregator.retire(bar)
    out.sort(key=lambda b: (b.symbol, b.interval, b.start))
    return out


def lookback_ms(intervals: Mapping[str, int], window: int, seconds: float) -> int:
    """How far back a rebuild reads the tick history: every bar that can still
    be revised (``window`` intervals) and the open one, within the history."""
    longest = max(intervals.values(), default=0) * (window + 1)
    return int(min(longest, seconds * 1000))


class RedisTakeover:
    """Scaled mode's ``TakeoverSource``: the tick and the bar histories in Redis."""

    def __init__(self, ticks: RedisHistory, bars: RedisHistory) -> None:
        self.ticks = ticks
        self.bars = bars

    @property
    def seconds(self) -> float:
        return self.ticks.seconds

    async def emitted(self) -> Emitted:
        """The bar history's tail (its counters loaded: the bar broker started)."""
        found = Emitted()
        for update in await self.bars.tail(EMITTED_TAIL):
            try:
                symbol, _ = split_key(update.symbol)
                bar = orjson.loads(update.text)
                start = int(bar["start"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            key = update.symbol
            found.starts[key] = max(found.starts.get(key, start), start)
            if bar.get("source") != MID:
                found.traded.add(symbol)
        return found

    async def recent(self, since_ms: int) -> Mapping[str, RecentUpdates]:
        return await self.ticks.recent(since_ms)
