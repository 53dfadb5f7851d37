"""BarAggregator: OHLCV bars from trades, pure and O(1) per trade per interval.

Rules (docs/decisions/0005-bars.md, docs/protocol.md "Bars"):

- A trade (``T``) counts in the bar of each interval whose UTC-aligned window
  ``[start, end)`` holds its timestamp (ms): ``start = ts - ts % interval``. A
  trade without a size (``ls`` missing or not positive) moves open, high, low,
  close and the trade count, never volume or VWAP.
- A bar is emitted when it closes: when the stream's first trade of a later
  window arrives, or when ``close_due(now)`` finds its end passed on the feed's
  clock (the feed's timer, realtime/bars/feed.py). An interval with no trade
  emits no bar.
- Revisions: a late trade (its window already closed, and no older than
  ``window`` intervals before the stream's newest bar) and a trade break
  (``B``, naming the broken trade's price and size) change a closed bar, which
  is emitted again with ``updated`` set. A break removes the newest matching
  trade of the newest bar holding one; in the open bar it changes the bar
  silently (its close carries it).
- A symbol that never traded (forex, crypto quote streams) gets bars from mid
  prices, ``source = "mid"``, without volume; its first trade drops its open mid
  bars and it is a traded symbol from then on.

Per bar the aggregator keeps a count per (price, size) and the first and last
``KEEP`` trades by time, which is what lets a break be undone exactly (high and
low from the counts, open and close from the kept trades) without keeping every
trade of a minute. Nothing here does I/O or reads a clock.

Cost (docs/benchmarks.md, "Bars"): the feed hands every tick to ``add`` (one
list append), and ``flush`` (called by ``close_due``, i.e. the feed's timer, once
a second) folds each symbol's batch in. The common batch (trades only, each with
a price and a positive size, timestamps in order, nothing late) is cut into 1 s
chunks whose open/high/low/close/volume/VWAP are computed once with C-level
builtins and folded into every interval's bar; the chunk's columns are kept
(compact arrays) and counted into the (price, size) levels only when a break or
an out-of-order trade needs them, or when a bar holds more than ``COMPACT`` of
them. Every other batch goes through ``on_tick`` trade by trade, so both paths
give the same bars.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections import _count_elements, deque  # type: ignore[attr-defined]
from dataclasses import dataclass
from operator import attrgetter, mul
from typing import Any

from realtime.upstream.protocol import Tick

# First and last trades kept per bar, for open and close after a break.
KEEP = 8
TRADES = "trades"
MID = "mid"

# Pending chunk trades a bar holds before it counts them into its levels: bounds
# a long bar's memory (24 bytes a trade) and costs one count per COMPACT trades.
COMPACT = 4096
# The batch path cuts a symbol's trades into chunks of ``chunk_ms`` (and the
# feed's timer folds them in at that period): the longest of these that divides
# every interval, so a chunk lies inside one bar of each. Every interval is whole
# seconds (realtime/bars/keys.py); 5 s chunks (intervals of 5 s and up) fold a
# fifth as often as 1 s ones.
CHUNK_CHOICES_MS = (5_000, 1_000)

_NOTHING: tuple[Bar, ...] = ()
_TS = attrgetter("timestamp")
_PRICE = attrgetter("last_price")
_SIZE = attrgetter("last_size")

Trade = tuple[int, int, float, "float | None"]  # (ts, arrival, price, size)
# A batch chunk: sized trades in time order, as (timestamps of its first KEEP
# trades, of its last KEEP, prices, sizes). Only the first and last KEEP trades of
# a bar need their time (open and close after a break), so only those keep it.
Chunk = tuple[tuple[int, ...], tuple[int, ...], array, array]


@dataclass(slots=True, eq=False)
class Bar:
    """One bar in the making or closed. ``to_message`` is its client form."""

    symbol: str
    interval: str
    start: int
    end: int
    source: str = TRADES
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    volume: float = 0.0
    pv: float = 0.0  # sum of price * size, for VWAP
    trades: int = 0
    quotes: int = 0
    closed: bool = False
    updated: bool = False
    # Rebuilt at a feed takeover from a tick history that no longer held the
    # window's first trades (realtime/bars/takeover.py): its counts may be short.
    partial: bool = False
    arrivals: int = 0
    # The exact state a break needs (``exact``): a count per (price, size) and
    # the first and last KEEP trades. None until a trade-by-trade fold, a break
    # or COMPACT pending trades need it, so a bar fed by chunks alone (the common
    # case) costs one object and its pending list.
    levels: dict[tuple[float, float | None], int] | None = None
    first: list[Trade] | None = None
    last: deque[Trade] | None = None
    newest_ts: int = -1  # the latest trade timestamp in the bar
    pending: list[Chunk] | None = None  # chunks not yet in levels
    pending_trades: int = 0

    @property
    def vwap(self) -> float | None:
        return round(self.pv / self.volume, 6) if self.volume > 0 else None

    def to_message(self) -> dict[str, Any]:
        """The ``bar`` message without its position (``seq``, ``epoch``)."""
        mid = self.source == MID
        message: dict[str, Any] = {
            "type": "bar",
            "symbol": self.symbol,
            "interval": self.interval,
            "start": self.start,
            "end": self.end,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": None if mid else round(self.volume, 8),
            "vwap": None if mid else self.vwap,
            "trades": self.trades,
        }
        if mid:
            message["source"] = MID
            message["quotes"] = self.quotes
        if self.updated:
            message["updated"] = True
        if self.partial:
            message["partial"] = True
        return message

    # --- trades ------------------------------------------------------------------
    def add_chunk(
        self,
        chunk: Chunk,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        pv: float,
    ) -> None:
        """Fold a batch chunk (trades at or after ``newest_ts``, in time order)
        whose summary the caller computed once for every interval."""
        n = len(chunk[2])
        if self.trades == 0:
            self.open, self.high, self.low = open_, high, low
            self.trades = n
        else:
            if high > self.high:  # type: ignore[operator]
                self.high = high
            if low < self.low:  # type: ignore[operator]
                self.low = low
            self.trades += n
        self.close = close
        self.volume += volume
        self.pv += pv
        self.newest_ts = chunk[1][-1]
        pending = self.pending
        if pending is None:
            self.pending = [chunk]
            self.pending_trades = n
        else:
            pending.append(chunk)
            self.pending_trades += n
            if self.pending_trades > COMPACT:
                self.materialize()

    def exact(
        self,
    ) -> tuple[dict[tuple[float, float | None], int], list[Trade], deque[Trade]]:
        """The levels and the kept first and last trades, every pending chunk
        counted in (created on first use)."""
        if self.levels is None:
            self.levels, self.first, self.last = {}, [], deque(maxlen=KEEP)
        if self.pending:
            self.materialize()
        return self.levels, self.first, self.last  # type: ignore[return-value]

    def materialize(self) -> None:
        """Count the pending chunks' trades into levels and the kept first and
        last trades, exactly as ``add_trade`` would have, one by one."""
        pending = self.pending
        if not pending:
            return
        if self.levels is None:
            self.levels, self.first, self.last = {}, [], deque(maxlen=KEEP)
        self.pending = None
        self.pending_trades = 0
        levels = self.levels
        first, last = self.first, self.last
        assert first is not None and last is not None
        for head, tail, prices, sizes in pending:
            _count_elements(levels, zip(prices, sizes, strict=True))
            n = self.arrivals
            count = len(prices)
            self.arrivals = n + count
            # Trades arrive in time order here: the first KEEP and last KEEP.
            for k in range(min(KEEP - len(first), len(head))):
                first.append((head[k], n + k, prices[k], sizes[k]))
            base = count - len(tail)
            for k, ts in enumerate(tail):
                last.append((ts, n + base + k, prices[base + k], sizes[base + k]))

    def add_trade(self, ts: int, price: float, size: float | None) -> None:
        levels, first, last = self.exact()
        if ts > self.newest_ts:
            self.newest_ts = ts
        n = self.arrivals
        self.arrivals = n + 1
        trade = (ts, n, price, size)
        if self.trades == 0:
            self.open = self.high = self.low = self.close = price
        else:
            if price > self.high:  # type: ignore[operator]
                self.high = price
            elif price < self.low:  # type: ignore[operator]
                self.low = price
        self.trades += 1
        if size is not None:
            self.volume += size
            self.pv += price * size
        key = (price, size)
        levels[key] = levels.get(key, 0) + 1
        if not last or ts >= last[-1][0]:
            last.append(trade)  # in order: the common case
            self.close = price
        else:
            ordered = sorted([*last, trade])[-KEEP:]
            last.clear()
            last.extend(ordered)
            self.close = last[-1][2]
        if len(first) < KEEP or ts < first[-1][0]:
            insort(first, trade)
            if len(first) > KEEP:
                first.pop()
            self.open = first[0][2]

    def remove_trade(self, price: float, size: float | None) -> bool:
        """Undo the newest trade at (price, size); False when the bar has none."""
        levels, first, last = self.exact()
        key = (price, size)
        count = levels.get(key, 0)
        if count == 0:
            return False
        kept = {t[1]: t for t in (*first, *last) if t[2] == price and t[3] == size}
        newest_last = next(
            (t for t in reversed(last) if t[2] == price and t[3] == size), None
        )
        if newest_last is not None:
            victim: Trade | None = newest_last
        elif count > len(kept):
            victim = None  # a trade between the kept ones: only the counts change
        else:
            victim = max(kept.values())
        if victim is not None:
            if victim in last:
                last.remove(victim)
            if victim in first:
                first.remove(victim)
        if count == 1:
            del levels[key]
        else:
            levels[key] = count - 1
        self.trades -= 1
        if size is not None:
            self.volume -= size
            self.pv -= price * size
        if self.trades == 0:
            self.open = self.high = self.low = self.close = None
            self.volume = self.pv = 0.0
            return True
        prices = [p for p, _ in levels]
        self.high, self.low = max(prices), min(prices)
        self.open = (first or list(last))[0][2]
        self.close = (list(last) or first)[-1][2]
        return True

    def add_mid(self, mid: float) -> None:
        if self.quotes == 0:
            self.open = self.high = self.low = mid
        elif mid > self.high:  # type: ignore[operator]
            self.high = mid
        elif mid < self.low:  # type: ignore[operator]
            self.low = mid
        self.close = mid
        self.quotes += 1


class _Stream:
    """One (symbol, interval): its open bar and the recently closed ones."""

    __slots__ = ("bar", "recent", "newest")

    def __init__(self) -> None:
        self.bar: Bar | None = None
        self.recent: dict[int, Bar] = {}  # start -> closed bar, within the window
        self.newest = -1  # start of the newest bar this stream had


class BarAggregator:
    """The open bars of every (symbol, interval) and the rules above.

    ``on_tick`` and ``close_due`` return the bars to emit (closed or revised),
    in order; the caller encodes each at once (a bar keeps changing after).
    The feed uses ``add`` (buffer a tick) and ``close_due``/``flush`` (fold the
    buffered ticks in, as ``on_tick`` would have, then close); tests and slow
    paths use ``on_tick``.
    """

    def __init__(self, intervals: dict[str, int], *, window: int = 2) -> None:
        self.intervals = tuple(intervals.items())
        self.chunk_ms = next(
            (
                c
                for c in CHUNK_CHOICES_MS
                if all(ms % c == 0 for ms in intervals.values())
            ),
            1_000,
        )
        self.window = window
        self._streams: tuple[dict[str, _Stream], ...] = tuple({} for _ in intervals)
        self._plan = tuple(zip(self.intervals, self._streams, strict=True))
        self._traded: set[str] = set()
        self.late_dropped = 0
        self.breaks_unmatched = 0
        self._now = 0  # the feed's clock at the last ``close_due``
        # Ticks since the last flush, per symbol (``add``), and the symbols among
        # them that had anything but a trade (their batch goes trade by trade).
        self._tapes: dict[str, list[Tick]] = {}
        self._mixed: set[str] = set()
        self.batched_trades = 0  # trades that took the batch path (for tests)

    # --- the feed's path: buffer now, fold in on the timer -------------------------
    def add(self, tick: Tick, state: object = None) -> None:
        """Buffer one tick for the next ``flush``: the only per-tick work.
        (``state``: the feed's merged state, passed to every sync tick callback;
        bars read the tick alone.) The tick itself is buffered: a
        ``(timestamp, price, size)`` tuple would be untracked by the garbage
        collector sooner, but building it cost more per tick than the
        collections it saves (docs/benchmarks.md, "Bars")."""
        if tick.kind != "T":
            if tick.kind == "Q" and tick.symbol in self._traded:
                return  # a traded symbol's bars come from trades only
            self._mixed.add(tick.symbol)
        try:
            self._tapes[tick.symbol].append(tick)
        except KeyError:  # the symbol's first tick since it was quiet
            self._tapes[tick.symbol] = [tick]

    def flush(self, hold_from: int | None = None) -> list[Bar]:
        """Fold every buffered tick in; the bars that closed or were revised.

        ``hold_from`` (ms): a batch's in-order trades from then on stay buffered
        for the next flush (their bar is not closing yet), so a second's trades
        are folded in as one chunk rather than two."""
        tapes = self._tapes
        mixed, self._mixed = self._mixed, set()
        out: list[Bar] = []
        for symbol, tape in list(tapes.items()):
            if not tape:
                del tapes[symbol]  # quiet since the last flush
                continue
            # A symbol's list is replaced, not the dict: no KeyError in ``add``
            # for the symbols that trade every second.
            tapes[symbol] = []
            if symbol in mixed:
                self._one_by_one(tape, out)
            else:
                self._batch(symbol, tape, out, hold_from)
        # A bar revised twice in one flush is emitted once, in its final state
        # (the caller encodes after the flush). Bars hash by identity.
        return list(dict.fromkeys(out)) if len(out) > 1 else out

    def _one_by_one(self, tape: list[Tick], out: list[Bar]) -> None:
        """Buffered ticks through the trade-by-trade rules, in arrival order."""
        on_tick = self.on_tick
        for tick in tape:
            bars = on_tick(tick)
            if bars:
                out.extend(bars)

    def _batch(
        self, symbol: str, tape: list[Tick], out: list[Bar], hold_from: int | None
    ) -> None:
        """A traded symbol's trades since the last flush, chunk by chunk."""
        sizes = list(map(_SIZE, tape))
        try:
            ok = min(sizes) > 0  # a None raises: no fast path
        except TypeError:
            ok = False
        tss = list(map(_TS, tape))
        if not ok or sorted(tss) != tss:
            self._one_by_one(tape, out)
            return
        prices = list(map(_PRICE, tape))
        n = len(tss)
        if hold_from is not None and tss[-1] >= hold_from:
            n = bisect_left(tss, hold_from)
            self._tapes[symbol] = tape[n:]
        chunk_ms = self.chunk_ms
        i = 0
        while i < n:
            first_ts = tss[i]
            j = bisect_left(tss, first_ts - first_ts % chunk_ms + chunk_ms, i, n)
            if not self._chunk(symbol, tss, prices, sizes, i, j, out):
                self._one_by_one(tape[i:j], out)
            i = j

    def _chunk(
        self,
        symbol: str,
        tss: list[int],
        prices: list[float | None],
        sizes: list[float],
        i: int,
        j: int,
        out: list[Bar],
    ) -> bool:
        """Fold trades ``[i, j)`` (one chunk) into every interval's bar; False,
        changing nothing, when one of them would be late (``on_tick`` rules) or
        has no price."""
        first_ts = tss[i]
        now = self._now
        window = self.window
        plan = self._plan
        for (_, ms), streams in plan:
            stream = streams.get(symbol)
            start = first_ts - first_ts % ms
            bar = stream.bar if stream is not None else None
            if bar is not None and bar.start == start:
                if first_ts < bar.newest_ts:
                    return False
            elif stream is not None and start <= stream.newest:
                return False
            elif start + (window + 1) * ms < now:
                return False
        whole = i == 0 and j == len(tss)
        ps = prices if whole else prices[i:j]
        try:
            high, low = max(ps), min(ps)  # a None among prices raises
        except TypeError:
            return False
        if high is None:
            return False  # no trade of the chunk has a price: on_tick ignores them
        ss = sizes if whole else sizes[i:j]
        # ``fromlist`` converts faster than ``array("d", ps)``.
        packed_prices, packed_sizes = array("d"), array("d")
        packed_prices.fromlist(ps)
        packed_sizes.fromlist(ss)
        chunk = (
            tuple(tss[i : min(j, i + KEEP)]),
            tuple(tss[max(i, j - KEEP) : j]),
            packed_prices,
            packed_sizes,
        )
        open_, close = ps[0], ps[-1]
        volume, pv = sum(ss), sum(map(mul, ps, ss))
        if symbol not in self._traded:
            self._start_trading(symbol)
        for (name, ms), streams in plan:
            stream = streams.get(symbol)
            if stream is None:
                stream = streams[symbol] = _Stream()
            start = first_ts - first_ts % ms
            bar = stream.bar
            if bar is None or bar.start != start:
                if bar is not None:
                    out.append(self._close(stream, bar, ms))
                bar = stream.bar = Bar(symbol, name, start, start + ms)
                stream.newest = start
            bar.add_chunk(chunk, open_, high, low, close, volume, pv)  # type: ignore[arg-type]
        self.batched_trades += j - i
        return True

    def open_bars(self) -> int:
        return sum(1 for st in self._streams for s in st.values() if s.bar)

    def open_bar_list(self) -> list[Bar]:
        """Every open bar (a takeover decides which of them were emitted)."""
        return [s.bar for st in self._streams for s in st.values() if s.bar]

    def retire(self, bar: Bar) -> None:
        """Close an open bar without emitting it: a previous feed leader emitted
        it already (realtime/bars/takeover.py). It stays revisable."""
        for (name, ms), streams in self._plan:
            if name == bar.interval:
                stream = streams.get(bar.symbol)
                if stream is not None and stream.bar is bar:
                    stream.bar = None
                    self._close(stream, bar, ms)
                return

    # --- ticks -------------------------------------------------------------------
    def on_tick(self, tick: Tick) -> tuple[Bar, ...] | list[Bar]:
        kind = tick.kind
        if kind == "T":
            return self._on_trade(
                tick.symbol, tick.timestamp, tick.last_price, tick.last_size
            )
        if kind == "Q":
            if tick.symbol in self._traded:
                return _NOTHING
            bid, ask = tick.bid_price, tick.ask_price
            if bid is None or ask is None or bid <= 0 or ask <= 0:
                return _NOTHING
            return self._mid(tick.symbol, tick.timestamp, (bid + ask) / 2)
        if kind == "B" and tick.last_price is not None:
            size = tick.last_size
            if size is not None and size <= 0:
                size = None
            return self._break(tick.symbol, tick.last_price, size)
        return _NOTHING

    def _on_trade(
        self, symbol: str, ts: int, price: float | None, size: float | None
    ) -> tuple[Bar, ...] | list[Bar]:
        """A trade (``T``) by the trade-by-trade rules."""
        if price is None:
            return _NOTHING
        if symbol not in self._traded:
            self._start_trading(symbol)
        if size is not None and size <= 0:
            size = None
        return self._trade(symbol, ts, price, size)

    def mark_traded(self, symbol: str) -> None:
        """Treat ``symbol`` as traded (its quotes make no bars) before a trade
        of it is seen: a takeover knows it from the bars already emitted."""
        if symbol not in self._traded:
            self._start_trading(symbol)

    def _start_trading(self, symbol: str) -> None:
        self._traded.add(symbol)
        for streams in self._streams:
            stream = streams.get(symbol)
            if stream is not None and stream.bar is not None:
                if stream.bar.source == MID:
                    stream.bar = None  # the symbol trades now: its bars do too

    def _stream(self, index: int, symbol: str) -> _Stream:
        streams = self._streams[index]
        stream = streams.get(symbol)
        if stream is None:
            stream = streams[symbol] = _Stream()
        return stream

    def _trade(
        self, symbol: str, ts: int, price: float, size: float | None
    ) -> tuple[Bar, ...] | list[Bar]:
        out: list[Bar] | None = None
        for (name, ms), streams in self._plan:
            start = ts - ts % ms
            stream = streams.get(symbol)
            if stream is None:
                stream = streams[symbol] = _Stream()
            bar = stream.bar
            if bar is not None and bar.start == start:
                bar.add_trade(ts, price, size)  # the common case
                continue
            if start > stream.newest:
                if start + (self.window + 1) * ms < self._now:
                    self.late_dropped += 1  # its stream was forgotten already
                    continue
                if bar is not None:
                    out = out if out is not None else []
                    out.append(self._close(stream, bar, ms))
                bar = stream.bar = Bar(symbol, name, start, start + ms)
                stream.newest = start
                bar.add_trade(ts, price, size)
                continue
            # Late: its window closed already.
            if start < stream.newest - self.window * ms:
                self.late_dropped += 1
                continue
            revised = stream.recent.get(start)
            if revised is None:
                # A window that had no trade when it closed: its first bar now.
                revised = Bar(symbol, name, start, start + ms, closed=True)
                stream.recent[start] = revised
            else:
                revised.updated = True
            revised.add_trade(ts, price, size)
            out = out if out is not None else []
            out.append(revised)
        return out if out is not None else _NOTHING

    def _mid(self, symbol: str, ts: int, mid: float) -> tuple[Bar, ...] | list[Bar]:
        out: list[Bar] | None = None
        for index, (name, ms) in enumerate(self.intervals):
            start = ts - ts % ms
            stream = self._stream(index, symbol)
            bar = stream.bar
            if bar is not None and bar.start == start:
                bar.add_mid(mid)
                continue
            if start <= stream.newest:
                continue  # a late quote: mid bars are never revised
            if bar is not None:
                out = out if out is not None else []
                out.append(self._close(stream, bar, ms))
            bar = stream.bar = Bar(symbol, name, start, start + ms, source=MID)
            stream.newest = start
            bar.add_mid(mid)
        return out if out is not None else _NOTHING

    def _break(
        self, symbol: str, price: float, size: float | None
    ) -> tuple[Bar, ...] | list[Bar]:
        out: list[Bar] | None = None
        for index, _ in enumerate(self.intervals):
            stream = self._streams[index].get(symbol)
            if stream is None:
                self.breaks_unmatched += 1
                continue
            if stream.bar is not None and stream.bar.remove_trade(price, size):
                if stream.bar.trades == 0:
                    stream.bar = None  # every trade of it was broken: no bar
                continue
            for start in sorted(stream.recent, reverse=True):
                bar = stream.recent[start]
                if bar.remove_trade(price, size):
                    bar.updated = True
                    out = out if out is not None else []
                    out.append(bar)
                    break
            else:
                self.breaks_unmatched += 1
        return out if out is not None else _NOTHING

    # --- closing -----------------------------------------------------------------
    def _close(self, stream: _Stream, bar: Bar, ms: int) -> Bar:
        bar.closed = True
        stream.recent[bar.start] = bar
        oldest = stream.newest - self.window * ms
        for start in [s for s in stream.recent if s < oldest]:
            del stream.recent[start]
        return bar

    def close_due(self, now_ms: int, index: int | None = None) -> list[Bar]:
        """Close the open bars whose end is at or before ``now_ms`` (of one
        interval, or all), and forget streams that went quiet past the window.
        Buffered ticks are folded in first (``flush``)."""
        chunk_ms = self.chunk_ms
        out = self.flush(now_ms - now_ms % chunk_ms) if self._tapes else []
        self._now = max(self._now, now_ms)
        indexes = range(len(self.intervals)) if index is None else (index,)
        for i in indexes:
            ms = self.intervals[i][1]
            streams = self._streams[i]
            forget = []
            for symbol, stream in streams.items():
                bar = stream.bar
                if bar is not None and bar.end <= now_ms:
                    stream.bar = None
                    out.append(self._close(stream, bar, ms))
                elif bar is None and stream.newest + (self.window + 1) * ms < now_ms:
                    forget.append(symbol)
            for symbol in forget:
                del streams[symbol]
        return out
