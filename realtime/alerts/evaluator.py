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

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
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


class _State:
    """An alert's arming, kept across reloads while its spec is unchanged."""

    __slots__ = ("spec", "armed", "fired_day", "done")

    def __init__(self, spec: AlertSpec) -> None:
        self.spec = spec
        self.armed = True
        self.fired_day: date | None = None
        self.done = False


# What a level is to its alert (``Book.kinds``).
_ABOVE_AT, _BELOW_AT, _REARM_ABOVE, _REARM_BELOW = 0, 1, 2, 3


class Book:
    """The alerts of one symbol on one measure, and that measure's last value.

    One array of levels, sorted ascending: each alert's threshold, and the
    level where it re-arms after firing (below the threshold for an "above"
    alert, by its hysteresis), with the alert and what the level is to it.
    """

    __slots__ = ("keys", "kinds", "states", "last")

    def __init__(self, states: Iterable[_State], last: float | None = None) -> None:
        edges = []
        for s in states:
            spec = s.spec
            if spec.condition in _ABOVE:
                edges.append((spec.threshold, spec.id, _ABOVE_AT, s))
                edges.append(
                    (spec.threshold - spec.hysteresis, spec.id, _REARM_ABOVE, s)
                )
            else:
                edges.append((spec.threshold, spec.id, _BELOW_AT, s))
                edges.append(
                    (spec.threshold + spec.hysteresis, spec.id, _REARM_BELOW, s)
                )
        edges.sort(key=lambda edge: edge[:3])
        self.keys = [edge[0] for edge in edges]
        self.kinds = [edge[2] for edge in edges]
        self.states = [edge[3] for edge in edges]
        self.last = last

    def move(self, value: float) -> list[_State]:
        """Go to ``value``; return the armed alerts it crossed (not yet fired).

        Rising from ``prev``: an "above" alert fires on ``prev < T <= value``, a
        "below" alert re-arms on ``prev <= L < value``; falling, the mirror
        image. One pass over the levels between the two values."""
        prev = self.last
        self.last = value
        if prev is None or value == prev:
            return []
        keys, kinds, states = self.keys, self.kinds, self.states
        crossed: list[_State] = []
        if value > prev:
            for j in range(bisect_left(keys, prev), bisect_right(keys, value)):
                kind = kinds[j]
                if kind == _ABOVE_AT:
                    state = states[j]
                    if prev < keys[j] and state.armed and not state.done:
                        crossed.append(state)
                elif kind == _REARM_BELOW and keys[j] < value:
                    states[j].armed = True
        else:
            for j in range(bisect_left(keys, value), bisect_right(keys, prev)):
                kind = kinds[j]
                if kind == _BELOW_AT:
                    state = states[j]
                    if keys[j] < prev and state.armed and not state.done:
                        crossed.append(state)
                elif kind == _REARM_ABOVE and value < keys[j]:
                    states[j].armed = True
        return crossed

    def gap(self) -> tuple[float, float]:
        """The open interval around ``last`` with no level that matters now in
        it; empty (lo >= hi) when ``last`` is unknown or sits on such a level
        (moving off it can change an arming). A threshold matters while its
        alert is armed, a re-arm level while it is not, neither once done."""
        last = self.last
        if last is None:
            return inf, -inf
        keys, kinds, states = self.keys, self.kinds, self.states
        n = len(keys)
        i = bisect_left(keys, last)
        hi = inf
        j = i
        while j < n:
            state = states[j]
            if not state.done and state.armed is (kinds[j] < _REARM_ABOVE):
                if keys[j] == last:
                    return inf, -inf
                hi = keys[j]
                break
            j += 1
        lo = -inf
        j = i - 1
        while j >= 0:
            state = states[j]
            if not state.done and state.armed is (kinds[j] < _REARM_ABOVE):
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
        self._states: dict[int, _State] = {}

    # --- loading -------------------------------------------------------------------
    def load(self, specs: Iterable[AlertSpec]) -> None:
        """Replace the alerts; an alert whose spec is unchanged keeps its arming,
        and every book keeps its last value (a reload is not a crossing)."""
        states: dict[int, _State] = {}
        for spec in specs:
            old = self._states.get(spec.id)
            states[spec.id] = (
                old if old is not None and old.spec == spec else _State(spec)
            )
        self._states = states
        by_price: dict[str, list[_State]] = {}
        by_pct: dict[str, list[_State]] = {}
        for state in states.values():
            spec = state.spec
            target = by_pct if spec.condition in _PCT else by_price
            target.setdefault(spec.symbol, []).append(state)
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
        return len(self._states)

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

    def finish(self, alert_id: int) -> None:
        """Forget a ``once`` alert for good (it fired)."""
        state = self._states.get(alert_id)
        if state is not None:
            state.done = True

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
            Firing(spec, price, value, tick_ts, seq, epoch)
            for spec, value in self.crossings(symbol, price, tick_ts)
        ]

    def crossings(
        self, symbol: str, price: float, tick_ts: int
    ) -> list[tuple[AlertSpec, float]]:
        """The bisect path, for a price on or beyond the symbol's watch: move the
        books, fire what was crossed (``(alert, value)``), and move the watch."""
        fired: list[tuple[AlertSpec, float]] = []
        book = self.prices.get(symbol)
        if book is not None:
            crossed = book.move(price)
            if crossed:
                self._fire(crossed, price, tick_ts, fired)
        book = self.pcts.get(symbol)
        if book is not None:
            close = self.previous_close.get(symbol)
            if close is not None:
                pct = (price / close - 1.0) * 100.0
                crossed = book.move(pct)
                if crossed:
                    self._fire(crossed, pct, tick_ts, fired)
        self.watches[symbol].last = price
        self._rewatch(symbol)
        return fired

    def _fire(
        self,
        crossed: list[_State],
        value: float,
        tick_ts: int,
        fired: list[tuple[AlertSpec, float]],
    ) -> None:
        """Disarm what was crossed (and finish ``once``); add what fires."""
        day: date | None = None
        for state in crossed:
            spec = state.spec
            if spec.frequency == ONCE_PER_DAY:
                day = day or self.day_of(tick_ts)
                if state.fired_day == day:
                    continue
                state.fired_day = day
            elif spec.frequency == ONCE:
                state.done = True
            state.armed = False
            fired.append((spec, value))
