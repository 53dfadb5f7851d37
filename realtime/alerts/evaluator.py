"""The alert evaluator: pure, in the feed process, O(alerts crossed) per tick.

Per symbol and per measure (the price, and the day's percent change against the
previous close) a ``Book`` keeps its alerts in sorted level arrays and the last
value seen. A move from ``prev`` to ``value`` looks at the levels between the
two with ``bisect``, so a move costs two bisects per array plus one step per
alert actually crossed, whatever the number of alerts on the symbol.

Most ticks cross nothing, and those must cost next to nothing (the feed's budget
is a few microseconds per tick): per symbol a ``Watch`` holds the open price
interval ``(lo, hi)`` around the last price that contains no level of any of its
books (thresholds and re-arm levels; a percent level mapped to a price through
the previous close, rounded inwards). A price strictly inside it crosses
nothing and changes no arming, so the tick path is one dict lookup and two float
comparisons (``AlertEngine.on_tick``, ``AlertEvaluator.on_price``) plus noting
the price on the watch; the books are not moved: any two prices inside the
interval compare the same way with every level, so a book's last value may stay
at any of them. Only a price on or beyond an edge takes the bisect path, which
then moves the interval. A reload positions the new books at the watch's last
price. A symbol with no alert costs one dict miss.

Semantics (docs/protocol.md, "Alerts"):

- an alert is a **crossing**, not a level: ``crosses_above T`` fires on a move
  with ``prev < T <= value``; ``crosses_below T`` on ``prev > T >= value``. A price
  that stays beyond the threshold fires nothing more; the first value a book sees
  only sets its position (nothing to cross from);
- after firing, an alert is disarmed; it **re-arms** when the value moves back
  strictly past ``T - hysteresis`` (above) or ``T + hysteresis`` (below);
- ``once`` fires one time ever (the engine then deactivates it); ``every_cross``
  fires on each crossing after re-arming; ``once_per_day`` likewise, at most once
  per trading day (realtime/marketday.py), computed only when something fires;
- ``pct_change_day_*`` compare ``(price / previous_close - 1) * 100`` with the
  threshold in percent; with no previous close known they wait, and a new
  previous close (a new trading day) re-positions that book at the last price's
  change under it, so a change of reference is never taken for a crossing.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from math import inf, isfinite

from realtime.marketday import trading_day

CROSSES_ABOVE = "crosses_above"
CROSSES_BELOW = "crosses_below"
PCT_ABOVE = "pct_change_day_above"
PCT_BELOW = "pct_change_day_below"
ONCE = "once"
ONCE_PER_DAY = "once_per_day"
EVERY_CROSS = "every_cross"
_ABOVE = frozenset({CROSSES_ABOVE, PCT_ABOVE})
_PCT = frozenset({PCT_ABOVE, PCT_BELOW})
# A percent level mapped to a price is moved inwards by this much (relative), far
# more than the rounding of ``(price / close - 1) * 100``: the interval may be a
# hair too narrow (a tick takes the bisect path for nothing), never too wide.
_MARGIN = 1e-9


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One active alert as plain values (realtime/alerts/selectors.py)."""

    id: int
    owner_id: int
    symbol: str
    condition: str
    threshold: float
    frequency: str = ONCE
    hysteresis: float = 0.0
    webhook_url: str = ""


@dataclass(frozen=True, slots=True)
class Firing:
    """One crossing of one alert, at the update numbered (epoch, seq)."""

    alert: AlertSpec
    price: float
    value: float  # the price, or the day's change in percent
    tick_ts: int
    seq: int
    epoch: str


# The per-alert storage is kept out of the cyclic garbage collector's sight. Every
# full collection walks every tracked object; 100,000 alerts held as objects
# (a spec and a state each) were 200,000 more of them, and walking them cost the
# feed more per tick than evaluating the alerts (docs/benchmarks.md, "Alerts").
# So an alert is stored as a ``Row``, an exact tuple of atoms (ints, floats,
# strs), which CPython untracks at the first collection it survives, and each
# book holds its levels in tuples (untracked likewise) and its alerts' states in a
# bytearray (never tracked) and an ``array`` (one tracked object whose contents
# the collector does not walk). What stays tracked is per symbol (its books and
# their arrays, its watch), not per alert; tests/realtime/alerts/test_evaluator.py
# checks that the tracked objects do not grow with the alerts held.
Row = tuple[int, int, str, str, float, str, float, str]

# An alert's state in ``Book.state``: armed (the next crossing fires), disarmed
# (fired, waiting to re-arm), done (a ``once`` alert that fired).
_DISARMED, _ARMED, _DONE = 0, 1, 2

# What a level is to its alert (``Book.kinds``).
_ABOVE_AT, _BELOW_AT, _REARM_ABOVE, _REARM_BELOW = 0, 1, 2, 3
# The state in which a level of each kind matters (``Book.gap``): a threshold
# while its alert is armed, a re-arm level while it is disarmed.
_MATTERS = (_ARMED, _ARMED, _DISARMED, _DISARMED)


def spec_row(spec: AlertSpec) -> Row:
    """The stored form of ``spec``: its fields, in order (``AlertSpec(*row)``)."""
    return (
        spec.id,
        spec.owner_id,
        spec.symbol,
        spec.condition,
        spec.threshold,
        spec.frequency,
        spec.hysteresis,
        spec.webhook_url,
    )


# Where a row's fields are (``spec_row``).
_ID, _SYMBOL, _CONDITION, _THRESHOLD, _FREQUENCY, _HYSTERESIS = 0, 2, 3, 4, 5, 6


class Book:
    """The alerts of one symbol on one measure, and that measure's last value.

    One array of levels, sorted ascending (``keys``): each alert's threshold,
    and the level where it re-arms after firing (below the threshold for an
    "above" alert, by its hysteresis), with what the level is to its alert
    (``kinds``) and which alert it is (``slots``, an index into ``rows``, the
    book's alerts, and into their ``state`` and ``fired_day``, a trading day's
    ordinal or 0).
    """

    __slots__ = ("rows", "keys", "kinds", "slots", "state", "fired_day", "last")

    def __init__(
        self,
        alerts: Iterable[tuple[Row, int, int]],
        last: float | None = None,
    ) -> None:
        """``alerts``: (row, state, fired day) per alert."""
        rows: list[Row] = []
        state = bytearray()
        fired_day = array("l")
        edges: list[tuple[float, int, int, int]] = []
        for slot, (row, alert_state, day) in enumerate(alerts):
            rows.append(row)
            state.append(alert_state)
            fired_day.append(day)
            threshold, hysteresis = row[_THRESHOLD], row[_HYSTERESIS]
            if row[_CONDITION] in _ABOVE:
                edges.append((threshold, row[_ID], _ABOVE_AT, slot))
                edges.append((threshold - hysteresis, row[_ID], _REARM_ABOVE, slot))
            else:
                edges.append((threshold, row[_ID], _BELOW_AT, slot))
                edges.append((threshold + hysteresis, row[_ID], _REARM_BELOW, slot))
        edges.sort()
        self.rows: tuple[Row, ...] = tuple(rows)
        self.keys: tuple[float, ...] = tuple(edge[0] for edge in edges)
        self.kinds: bytes = bytes(edge[2] for edge in edges)
        self.slots: tuple[int, ...] = tuple(edge[3] for edge in edges)
        self.state = state
        self.fired_day = fired_day
        self.last = last

    def alerts(self) -> Iterator[tuple[Row, int, int]]:
        """(row, state, fired day) per alert: what a reload carries over."""
        return zip(self.rows, self.state, self.fired_day, strict=True)

    def move(self, value: float) -> list[int]:
        """Go to ``value``; return the armed alerts it crossed (their slots).

        Rising from ``prev``: an "above" alert fires on ``prev < T <= value``, a
        "below" alert re-arms on ``prev <= L < value``; falling, the mirror
        image. One pass over the levels between the two values."""
        prev = self.last
        self.last = value
        if prev is None or value == prev:
            return []
        keys, kinds, slots, state = self.keys, self.kinds, self.slots, self.state
        crossed: list[int] = []
        if value > prev:
            for j in range(bisect_left(keys, prev), bisect_right(keys, value)):
                kind = kinds[j]
                if kind == _ABOVE_AT:
                    slot = slots[j]
                    if prev < keys[j] and state[slot] == _ARMED:
                        crossed.append(slot)
                elif kind == _REARM_BELOW and keys[j] < value:
                    slot = slots[j]
                    if state[slot] == _DISARMED:
                        state[slot] = _ARMED
        else:
            for j in range(bisect_left(keys, value), bisect_right(keys, prev)):
                kind = kinds[j]
                if kind == _BELOW_AT:
                    slot = slots[j]
                    if keys[j] < prev and state[slot] == _ARMED:
                        crossed.append(slot)
                elif kind == _REARM_ABOVE and value < keys[j]:
                    slot = slots[j]
                    if state[slot] == _DISARMED:
                        state[slot] = _ARMED
        return crossed

    def gap(self) -> tuple[float, float]:
        """The open interval around ``last`` with no level that matters now in
        it; empty (lo >= hi) when ``last`` is unknown or sits on such a level
        (moving off it can change an arming). A threshold matters while its
        alert is armed, a re-arm level while it is disarmed, neither once done."""
        last = self.last
        if last is None:
            return inf, -inf
        keys, kinds, slots, state = self.keys, self.kinds, self.slots, self.state
        n = len(keys)
        i = bisect_left(keys, last)
        hi = inf
        j = i
        while j < n:
            if state[slots[j]] == _MATTERS[kinds[j]]:
                if keys[j] == last:
                    return inf, -inf
                hi = keys[j]
                break
            j += 1
        lo = -inf
        j = i - 1
        while j >= 0:
            if state[slots[j]] == _MATTERS[kinds[j]]:
                lo = keys[j]
                break
            j -= 1
        return lo, hi


class Watch:
    """A symbol's price interval that crosses nothing (the tick path's test)."""

    __slots__ = ("lo", "hi", "last")

    def __init__(self, last: float | None = None) -> None:
        self.lo = inf
        self.hi = -inf  # empty until the books are positioned
        self.last = last  # the symbol's last price, even inside the interval


def _pct_to_price(pct: float, close: float, inwards: float) -> float:
    """The price at which the day's change is ``pct``, moved by ``inwards``
    (+1 up, -1 down) by a relative margin; infinities stay infinite."""
    if not isfinite(pct):
        return pct
    price = close * (1.0 + pct / 100.0)
    return price + inwards * _MARGIN * (abs(price) + close)


def _tick_day(tick_ts: int) -> date:
    return trading_day(datetime.fromtimestamp(tick_ts / 1000, UTC))


class AlertEvaluator:
    """Every active alert, by symbol; ``on_price`` per tick of a symbol."""

    def __init__(self, day_of: Callable[[int], date] = _tick_day) -> None:
        self.day_of = day_of
        self.prices: dict[str, Book] = {}
        self.pcts: dict[str, Book] = {}
        self.previous_close: dict[str, float] = {}
        # Per symbol with an alert: the interval its prices cross nothing in.
        self.watches: dict[str, Watch] = {}
        self._count = 0

    # --- loading -------------------------------------------------------------------
    def load(self, specs: Iterable[AlertSpec]) -> None:
        """Replace the alerts; an alert whose spec is unchanged keeps its arming,
        and every book keeps its last value (a reload is not a crossing)."""
        old = {
            row[_ID]: (row, state, day)
            for book in (*self.prices.values(), *self.pcts.values())
            for row, state, day in book.alerts()
        }
        alerts: dict[int, tuple[Row, int, int]] = {}
        for spec in specs:
            row = spec_row(spec)
            kept = old.get(spec.id)
            # The old row when unchanged: already untracked, and no copy is kept.
            alerts[spec.id] = (
                kept if kept is not None and kept[0] == row else (row, _ARMED, 0)
            )
        del old
        self._count = len(alerts)
        by_price: dict[str, list[tuple[Row, int, int]]] = {}
        by_pct: dict[str, list[tuple[Row, int, int]]] = {}
        for alert in alerts.values():
            row = alert[0]
            target = by_pct if row[_CONDITION] in _PCT else by_price
            target.setdefault(row[_SYMBOL], []).append(alert)
        lasts = {s: w.last for s, w in self.watches.items() if w.last is not None}
        self.prices = {s: Book(group, lasts.get(s)) for s, group in by_price.items()}
        self.pcts = {
            s: Book(group, self._pct_of(s, lasts.get(s))) for s, group in by_pct.items()
        }
        self.watches.clear()  # the same dict: the engine holds it
        for symbol in (*self.prices, *self.pcts):
            self.watches[symbol] = Watch(lasts.get(symbol))
            self._rewatch(symbol)

    def _pct_of(self, symbol: str, price: float | None) -> float | None:
        """The day's change at ``price``, if it and the previous close are known."""
        close = self.previous_close.get(symbol)
        if price is None or close is None:
            return None
        return (price / close - 1.0) * 100.0

    def _rewatch(self, symbol: str) -> None:
        """Set the symbol's watch from its books' gaps (in price space)."""
        watch = self.watches[symbol]
        lo, hi = -inf, inf
        book = self.prices.get(symbol)
        if book is not None:
            lo, hi = book.gap()
        book = self.pcts.get(symbol)
        close = self.previous_close.get(symbol)
        if book is not None and close is not None:
            low, high = book.gap()
            if low >= high:
                lo, hi = inf, -inf
            else:
                lo = max(lo, _pct_to_price(low, close, +1.0))
                hi = min(hi, _pct_to_price(high, close, -1.0))
        watch.lo, watch.hi = lo, hi

    @property
    def symbols(self) -> frozenset[str]:
        """Symbols with at least one active alert (they stay subscribed upstream)."""
        return frozenset(self.prices) | frozenset(self.pcts)

    @property
    def pct_symbols(self) -> frozenset[str]:
        return frozenset(self.pcts)

    def __len__(self) -> int:
        return self._count

    def set_previous_close(self, symbol: str, close: float | None) -> None:
        """The reference for the day's percent change; a new one re-positions the
        symbol's percent book at the last price's change under it (a change of
        reference is never a crossing)."""
        if close is None or close <= 0:
            return
        if self.previous_close.get(symbol) == close:
            return
        self.previous_close[symbol] = close
        book = self.pcts.get(symbol)
        if book is not None:
            watch = self.watches[symbol]
            book.last = self._pct_of(symbol, watch.last)
            self._rewatch(symbol)

    # --- the tick path -------------------------------------------------------------
    def on_price(
        self, symbol: str, price: float, tick_ts: int, seq: int, epoch: str
    ) -> list[Firing]:
        """The crossings of one price of ``symbol`` (numbered ``epoch``/``seq``).

        The engine inlines the watch test and calls ``crossings`` itself, so that
        a firing costs a queue put on the tick path; this is the same logic
        returning ``Firing`` values."""
        watch = self.watches.get(symbol)
        if watch is None:
            return []
        if watch.lo < price < watch.hi or price == watch.last:
            watch.last = price
            return []
        return [
            Firing(AlertSpec(*row), price, value, tick_ts, seq, epoch)
            for row, value in self.crossings(symbol, price, tick_ts)
        ]

    def crossings(
        self, symbol: str, price: float, tick_ts: int
    ) -> list[tuple[Row, float]]:
        """The bisect path, for a price on or beyond the symbol's watch: move the
        books, fire what was crossed (``(alert's row, value)``; ``AlertSpec(*row)``
        is the alert, built off the tick path), and move the watch."""
        fired: list[tuple[Row, float]] = []
        book = self.prices.get(symbol)
        if book is not None:
            crossed = book.move(price)
            if crossed:
                self._fire(book, crossed, price, tick_ts, fired)
        book = self.pcts.get(symbol)
        if book is not None:
            close = self.previous_close.get(symbol)
            if close is not None:
                pct = (price / close - 1.0) * 100.0
                crossed = book.move(pct)
                if crossed:
                    self._fire(book, crossed, pct, tick_ts, fired)
        self.watches[symbol].last = price
        self._rewatch(symbol)
        return fired

    def _fire(
        self,
        book: Book,
        crossed: list[int],
        value: float,
        tick_ts: int,
        fired: list[tuple[Row, float]],
    ) -> None:
        """Disarm what was crossed (and finish ``once``); add what fires."""
        day = 0
        rows, state, fired_day = book.rows, book.state, book.fired_day
        for slot in crossed:
            row = rows[slot]
            frequency = row[_FREQUENCY]
            if frequency == ONCE_PER_DAY:
                day = day or self.day_of(tick_ts).toordinal()
                if fired_day[slot] == day:
                    continue
                fired_day[slot] = day
            state[slot] = _DONE if frequency == ONCE else _DISARMED
            fired.append((row, value))
