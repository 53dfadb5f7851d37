"""Per-subscription rate caps and data-type filters (docs/protocol.md, "Rate caps
and filters").

A dashboard card needs a few updates a second, a ticker tape only trades: a
subscribe may say ``"max_rate": 4`` (at most 4 updates per second of each of its
symbols, always the newest state) and ``"data_types": ["T"]``. The hub asks this
module only about the (connection, symbol) pairs that have a cap or a filter
(``Shaper.by_symbol``, empty unless a client asked), so a connection without
either costs nothing more per tick.

The cap is time-based conflation in the outbox's own conflation slot
(``Outbox.pending``, one entry per symbol, newest wins: the slot a stalled
reader's updates conflate in): an update that comes before the pair's next
allowed time waits there, a newer one replaces it, and one process-wide task
(``Shaper._pace_loop``, every ``PACE_TICK`` s) moves the due ones to the queue.
There is no timer per connection or per symbol. An update that replaced a
waiting one carries ``"conflated": true``: the client knows the ``seq`` jump
before it is the cap's, and can fill it from the history like any gap.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from realtime import metrics
from realtime.events import Update
from realtime.fanout.outbox import Outbox, OutboxWriter
from realtime.fanout.recovery import SubscribeHolds
from realtime.feed.state import add_fields
from realtime.tasks import cancel_all, start_watched

# Seconds between the pacing task's releases: a capped update waits at most this
# much past its due time (the "flush interval" of docs/protocol.md's cap).
PACE_TICK = 0.025
# The lowest cap a client may ask for (one update every 10 s): a lower one would
# hold a state for minutes and look like a dead feed.
MIN_MAX_RATE = 0.1
# The upstream message kinds of ``price_update.data_type``: trade, quote, break.
DATA_TYPES = frozenset({"T", "Q", "B"})
CONFLATED: dict[str, Any] = {"conflated": True}
# How the feed's one encode spells the kind (realtime/feed/state.py, orjson).
_DATA_TYPE_KEY = '"data_type":"'


class ShapingError(ValueError):
    """A ``max_rate`` or ``data_types`` the server refuses; ``code`` is the
    protocol ``error`` code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ShapingRequest:
    """What one subscribe asked for; None for a key it did not send.

    ``max_rate`` 0 asks for no cap; ``data_types`` None (once resolved) means
    every kind.
    """

    max_rate: float | None = None
    data_types: frozenset[str] | None = None

    @property
    def given(self) -> bool:
        return self.max_rate is not None or self.data_types is not None


def parse_shaping(content: dict[str, Any], *, ceiling: float) -> ShapingRequest:
    """The ``max_rate`` and ``data_types`` of a subscribe, validated.

    ``max_rate``: a number of updates per second, ``MIN_MAX_RATE`` to
    ``ceiling`` (``REALTIME_MAX_RATE_CEILING``; 0: no ceiling), or 0 for no cap
    (only when there is no ceiling). ``data_types``: a non-empty list (or one
    string) of ``T``, ``Q``, ``B``. Raises ``ShapingError`` naming the bad value.
    """
    rate: float | None = None
    if "max_rate" in content:
        rate = _parse_rate(content["max_rate"], ceiling)
    types: frozenset[str] | None = None
    if "data_types" in content:
        types = _parse_types(content["data_types"])
    return ShapingRequest(rate, types)


def _parse_rate(value: object, ceiling: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ShapingError(
            "invalid_max_rate",
            f"'max_rate' must be a number of updates per second, got {value!r:.40}",
        )
    if value == 0:
        if ceiling > 0:
            raise ShapingError(
                "invalid_max_rate",
                f"'max_rate' 0 (no cap) is not allowed: at most {ceiling:g} "
                "updates per second",
            )
        return 0
    if value < MIN_MAX_RATE:
        raise ShapingError(
            "invalid_max_rate",
            f"'max_rate' {value:g} is below the minimum of {MIN_MAX_RATE:g} "
            "updates per second",
        )
    if ceiling > 0 and value > ceiling:
        raise ShapingError(
            "invalid_max_rate",
            f"'max_rate' {value:g} is above the maximum of {ceiling:g} updates "
            "per second",
        )
    return value


def _parse_types(value: object) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ShapingError(
            "unknown_data_type",
            '\'data_types\' must be a non-empty list of "T", "Q", "B", got '
            f"{value!r:.40}",
        )
    unknown = [v for v in items if not isinstance(v, str) or v not in DATA_TYPES]
    if unknown:
        bad = ", ".join(repr(v)[:20] for v in unknown[:10])
        raise ShapingError(
            "unknown_data_type",
            f'Unknown data_types: {bad} (known: "T" trade, "Q" quote, "B" trade break)',
        )
    return frozenset(items)


def effective_rate(requested: float | None, *, default: float, ceiling: float) -> float:
    """The cap of a new subscription: what it asked for, else the server default,
    never above the ceiling (a ceiling caps even a default of 0, "uncapped")."""
    rate = default if requested is None else requested
    if ceiling > 0 and (rate == 0 or rate > ceiling):
        return ceiling
    return rate


def data_type_of(text: str) -> str:
    """The ``data_type`` of an encoded ``price_update`` without decoding it
    ("" when it has none): read once per tick, only for filtered symbols."""
    at = text.find(_DATA_TYPE_KEY)
    if at < 0:
        return ""
    return text[at + len(_DATA_TYPE_KEY) : at + len(_DATA_TYPE_KEY) + 1]


class Pace:
    """One connection's cap and filter on one symbol, and when it may next get
    an update (monotonic seconds)."""

    __slots__ = ("max_rate", "interval", "types", "next_at", "scheduled")

    def __init__(self, max_rate: float, types: frozenset[str] | None) -> None:
        self.max_rate = max_rate
        self.interval = 1.0 / max_rate if max_rate else 0.0
        self.types = types
        self.next_at = 0.0
        self.scheduled = False

    def describe(self) -> dict[str, Any]:
        """What ``get_subscriptions`` reports for the symbol."""
        out: dict[str, Any] = {}
        if self.max_rate:
            out["max_rate"] = self.max_rate
        if self.types is not None:
            out["data_types"] = sorted(self.types)
        return out


class Shaper:
    """The caps and filters of one hub's connections, and the one pacing task."""

    def __init__(self, writer: OutboxWriter, holds: SubscribeHolds) -> None:
        self.writer = writer
        self.holds = holds
        # symbol -> the connections with a cap or a filter on it. Never rebound:
        # the hub's tick path reads it directly and is empty almost always.
        self.by_symbol: dict[str, dict[Outbox, Pace]] = {}
        self._due: list[tuple[float, int, Outbox, str]] = []
        self._order = itertools.count()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -----------------------------------------------------------------
    def start(self, on_done: Callable[[asyncio.Task[None]], Any]) -> None:
        self._tasks = start_watched({"hub-pace": self._pace_loop()}, on_done)

    async def aclose(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []

    # --- bookkeeping ---------------------------------------------------------------
    def set(
        self,
        outbox: Outbox,
        symbols: Iterable[str],
        *,
        max_rate: float | None,
        data_types: frozenset[str] | None,
        replace_types: bool,
    ) -> None:
        """Give ``outbox``'s ``symbols`` this cap (None: keep the current one)
        and filter (``replace_types``: set ``data_types``, None meaning all).

        A pair left with neither cap nor filter is dropped from ``by_symbol``
        (the plain path). An update waiting for the old cap goes out now, so it
        can never follow a newer one delivered under the new setting.
        """
        for symbol in symbols:
            pairs = self.by_symbol.get(symbol)
            old = pairs.get(outbox) if pairs is not None else None
            rate = max_rate if max_rate is not None else (old.max_rate if old else 0)
            types = data_types if replace_types else (old.types if old else None)
            if old is not None:
                self._release(outbox, symbol, time.monotonic())
            if not rate and types is None:
                if old is not None:
                    self.forget(outbox, symbol)
                continue
            pace = Pace(rate, types)
            if old is not None:
                pace.next_at = old.next_at
            self.by_symbol.setdefault(symbol, {})[outbox] = pace

    def forget(self, outbox: Outbox, symbol: str) -> None:
        """``outbox`` no longer receives ``symbol`` (or no longer shapes it)."""
        pairs = self.by_symbol.get(symbol)
        if pairs is None:
            return
        pairs.pop(outbox, None)
        if not pairs:
            del self.by_symbol[symbol]

    def describe(self, outbox: Outbox, symbols: Iterable[str]) -> dict[str, Any]:
        """{symbol: {"max_rate", "data_types"}} for the shaped ones of ``symbols``."""
        out: dict[str, Any] = {}
        for symbol in symbols:
            pace = self.by_symbol.get(symbol, {}).get(outbox)
            if pace is not None:
                out[symbol] = pace.describe()
        return out

    # --- tick path -----------------------------------------------------------------
    def deliver(
        self,
        update: Update,
        members: set[Outbox],
        shaped: dict[Outbox, Pace],
        *,
        forced: bool = False,
    ) -> set[Outbox]:
        """Deliver ``update`` to its shaped members; return the others (the hub
        delivers those on its plain path).

        ``forced``: the hub changed the update on the way (a takeover gap fill,
        an epoch restart's snapshot): it goes out now, capped or filtered or not.
        Per tick, the kind is read and each encoding (plain, conflated; text,
        frame, deflated frame) made at most once, whatever the number of shaped
        members.
        """
        symbol = update.symbol
        text = update.text
        held = self.holds.held
        holds = held.get(symbol) if held else None
        now = time.monotonic()
        kind: str | None = None
        # What an outbox queues, by its encoding (``_wire``: text, frame or
        # deflated frame), plain and marked conflated; each made once per tick,
        # when first needed, by the outbox's own ``encode``.
        plain: list[str | bytes | None] = [text, None, None]
        marked: list[str | bytes | None] = [None, None, None]
        replaced = 0
        dirty = self.writer.dirty
        for outbox, pace in shaped.items():
            if outbox.closed:
                continue
            if (
                holds is not None
                and outbox in holds
                and not self.holds.admit(holds, outbox, update)
            ):
                continue  # held for its subscribe, or a duplicate of its replay
            if not forced and pace.types is not None:
                if kind is None:
                    kind = data_type_of(text)
                if kind not in pace.types:
                    continue
            wire = _wire(outbox)
            pending = outbox.pending
            if symbol in pending and not forced and pace.interval:
                # A newer state for the one waiting: it replaces it, marked.
                data = marked[wire]
                if data is None:
                    data = marked[wire] = outbox.encode(add_fields(text, CONFLATED))
                pending[symbol] = data
                outbox.conflated += 1
                replaced += 1
                continue
            data = plain[wire]
            if data is None:
                data = plain[wire] = outbox.encode(text)
            if forced or not pace.interval:
                if forced and outbox.stalled_since is None:
                    pending.pop(symbol, None)  # older than this one
                outbox.put(symbol, data)
                dirty.add(outbox)
            elif now >= pace.next_at and outbox.stalled_since is None:
                pace.next_at = now + pace.interval
                outbox.put(symbol, data)
                dirty.add(outbox)
            else:
                pending[symbol] = data
                if not pace.scheduled:
                    pace.scheduled = True
                    self._schedule(pace.next_at, outbox, symbol)
        if replaced:
            metrics.MESSAGES_CONFLATED.inc(replaced)
        return members.difference(shaped)

    def _schedule(self, due: float, outbox: Outbox, symbol: str) -> None:
        heapq.heappush(self._due, (due, next(self._order), outbox, symbol))
        self._wakeup.set()

    def _release(self, outbox: Outbox, symbol: str, now: float) -> None:
        """Queue ``outbox``'s waiting update of ``symbol``, if any, now.

        A stalled outbox keeps it: its resume sends what waits in the slot.
        """
        pace = self.by_symbol.get(symbol, {}).get(outbox)
        if pace is not None:
            pace.scheduled = False
        if outbox.closed or outbox.stalled_since is not None:
            return
        data = outbox.pending.pop(symbol, None)
        if data is None:
            return
        outbox.queue.append((symbol, data))
        if pace is not None:
            pace.next_at = now + pace.interval
        self.writer.wake(outbox)

    async def _pace_loop(self) -> None:
        """The process's one pacing task: every ``PACE_TICK`` s while updates
        wait, queue the ones that are due; idle (no wake-ups) otherwise."""
        due = self._due
        while True:
            await self._wakeup.wait()
            while due:
                await asyncio.sleep(PACE_TICK)
                now = time.monotonic()
                while due and due[0][0] <= now:
                    _, _, outbox, symbol = heapq.heappop(due)
                    self._release(outbox, symbol, now)
            self._wakeup.clear()


def _wire(outbox: Outbox) -> int:
    """The outbox's encoding, as an index: 0 text (ASGI), 1 frame (direct
    write), 2 deflated frame (permessage-deflate; one compressor per process,
    so every such outbox gets the same bytes). ``Outbox.encode`` makes each."""
    if outbox.deflate is not None:
        return 2
    return 1 if outbox.direct else 0


def shape_subscription(
    shaper: Shaper,
    outbox: Outbox,
    request: ShapingRequest,
    *,
    added: Iterable[str],
    already: Iterable[str],
    default: float,
    ceiling: float,
) -> None:
    """Apply one subscribe's request: its new symbols (``added``) get what it
    asked for, else the server default (``REALTIME_DEFAULT_MAX_RATE``) and every
    kind; symbols it names that were ``already`` subscribed change only in what
    it sent (a subscribe without either key leaves them as they were)."""
    shaper.set(
        outbox,
        added,
        max_rate=effective_rate(request.max_rate, default=default, ceiling=ceiling),
        data_types=request.data_types,
        replace_types=True,
    )
    if request.given:
        shaper.set(
            outbox,
            already,
            max_rate=request.max_rate,
            data_types=request.data_types,
            replace_types=request.data_types is not None,
        )
