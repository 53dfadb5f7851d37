"""The alert evaluator: pure, in the feed process, O(alerts crossed) per tick.

Per symbol and per measure (the price, and the day's percent change against the
previous close) a ``Book`` keeps its alerts in sorted level arrays and the last
value seen. A move from ``prev`` to ``value`` looks at the levels between the
two with ``bisect``, so a tick costs two bisects per array plus one step per
alert actually crossed, whatever the number of alerts on the symbol, and a
symbol with no alert costs one dict miss.

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
  previous close (a new trading day) resets that book's position, so a change of
  reference is never taken for a crossing.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

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


class _Levels:
    """Levels sorted ascending, each with the alert it belongs to."""

    __slots__ = ("keys", "states")

    def __init__(self, pairs: Iterable[tuple[float, _State]]) -> None:
        ordered = sorted(pairs, key=lambda pair: (pair[0], pair[1].spec.id))
        self.keys = [level for level, _ in ordered]
        self.states = [state for _, state in ordered]

    def rising(self, prev: float, value: float) -> list[_State]:
        """Levels L with prev < L <= value."""
        keys = self.keys
        return self.states[bisect_right(keys, prev) : bisect_right(keys, value)]

    def falling(self, prev: float, value: float) -> list[_State]:
        """Levels L with value <= L < prev."""
        keys = self.keys
        return self.states[bisect_left(keys, value) : bisect_left(keys, prev)]

    def rising_past(self, prev: float, value: float) -> list[_State]:
        """Levels L with prev <= L < value (the value ends strictly above L)."""
        keys = self.keys
        return self.states[bisect_left(keys, prev) : bisect_left(keys, value)]

    def falling_past(self, prev: float, value: float) -> list[_State]:
        """Levels L with value < L <= prev (the value ends strictly below L)."""
        keys = self.keys
        return self.states[bisect_right(keys, value) : bisect_right(keys, prev)]


class Book:
    """The alerts of one symbol on one measure, and that measure's last value."""

    __slots__ = ("above", "below", "rearm_above", "rearm_below", "last")

    def __init__(self, states: Iterable[_State], last: float | None = None) -> None:
        states = list(states)
        ups = [s for s in states if s.spec.condition in _ABOVE]
        downs = [s for s in states if s.spec.condition not in _ABOVE]
        self.above = _Levels((s.spec.threshold, s) for s in ups)
        self.below = _Levels((s.spec.threshold, s) for s in downs)
        # Where a fired alert re-arms: below the threshold for "above" alerts.
        self.rearm_above = _Levels(
            (s.spec.threshold - s.spec.hysteresis, s) for s in ups
        )
        self.rearm_below = _Levels(
            (s.spec.threshold + s.spec.hysteresis, s) for s in downs
        )
        self.last = last

    def move(self, value: float) -> list[_State]:
        """Go to ``value``; return the armed alerts it crossed (not yet fired)."""
        prev = self.last
        self.last = value
        if prev is None or value == prev:
            return []
        if value > prev:
            for state in self.rearm_below.rising_past(prev, value):
                state.armed = True
            crossed = self.above.rising(prev, value)
        else:
            for state in self.rearm_above.falling_past(prev, value):
                state.armed = True
            crossed = self.below.falling(prev, value)
        return [s for s in crossed if s.armed and not s.done]


def _tick_day(tick_ts: int) -> date:
    return trading_day(datetime.fromtimestamp(tick_ts / 1000, UTC))


class AlertEvaluator:
    """Every active alert, by symbol; ``on_price`` per tick of a symbol."""

    def __init__(self, day_of: Callable[[int], date] = _tick_day) -> None:
        self.day_of = day_of
        self.prices: dict[str, Book] = {}
        self.pcts: dict[str, Book] = {}
        self.previous_close: dict[str, float] = {}
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
        self.prices = {
            s: Book(group, self._last(self.prices, s)) for s, group in by_price.items()
        }
        self.pcts = {
            s: Book(group, self._last(self.pcts, s)) for s, group in by_pct.items()
        }

    @staticmethod
    def _last(books: dict[str, Book], symbol: str) -> float | None:
        book = books.get(symbol)
        return book.last if book is not None else None

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
        """The reference for the day's percent change; a new one resets the
        position of the symbol's percent book."""
        if close is None or close <= 0:
            return
        if self.previous_close.get(symbol) == close:
            return
        self.previous_close[symbol] = close
        book = self.pcts.get(symbol)
        if book is not None:
            book.last = None

    def finish(self, alert_id: int) -> None:
        """Forget a ``once`` alert for good (it fired)."""
        state = self._states.get(alert_id)
        if state is not None:
            state.done = True

    # --- the tick path -------------------------------------------------------------
    def on_price(
        self, symbol: str, price: float, tick_ts: int, seq: int, epoch: str
    ) -> list[Firing]:
        """The crossings of one price of ``symbol`` (numbered ``epoch``/``seq``)."""
        crossed: list[tuple[_State, float]] = []
        book = self.prices.get(symbol)
        if book is not None:
            crossed.extend((s, price) for s in book.move(price))
        book = self.pcts.get(symbol)
        if book is not None:
            close = self.previous_close.get(symbol)
            if close is not None:
                pct = (price / close - 1.0) * 100.0
                crossed.extend((s, pct) for s in book.move(pct))
        if not crossed:
            return []
        firings: list[Firing] = []
        day: date | None = None
        for state, value in crossed:
            spec = state.spec
            if spec.frequency == ONCE_PER_DAY:
                day = day or self.day_of(tick_ts)
                if state.fired_day == day:
                    continue
                state.fired_day = day
            state.armed = False
            if spec.frequency == ONCE:
                state.done = True
            firings.append(Firing(spec, price, value, tick_ts, seq, epoch))
        return firings
