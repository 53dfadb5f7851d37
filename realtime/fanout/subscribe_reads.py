"""What a subscribe reads from the stores, coalesced across the process's subscribes.

Each subscribe needs the new symbols' snapshots (the tick cache), the epoch (the
history) and, when it recovers, the symbols' history pages. In scaled mode each
is a Redis round trip through the process's bounded pool, so a storm of
subscribes (a fleet reconnecting after a web restart) queued thousands of
commands for a handful of connections and failed them past the pool's wait
(issue 26). Through ``realtime.coalesce.Coalescer`` the subscribes waiting at the
same time share one ``HMGET`` of the snapshots, one epoch read and one pipeline
of history reads per round, each holding one pooled connection: a storm is as
many rounds as it takes, and every subscribe is answered.

Embedded mode's stores are in-process dicts; the coalescers cost them one loop
pass and nothing else. ``StoreUnavailable`` is what a subscribe gets when a
round fails (Redis down): the consumer turns it into a retryable ``error``.

A subscribe with ``bars`` (realtime/fanout/bars.py) reads the same two things
of the bar streams' own history (``backends().bar_history``): its epoch and,
when it recovers, the streams' pages. They go through a second pair of
coalescers, so a fleet of dashboards resubscribing their candles costs rounds,
not a command per stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from realtime.backends import backends
from realtime.coalesce import Coalescer
from realtime.feed.history import History, HistoryPage
from realtime.feed.state import PriceState
from realtime.stores import STORE_ERRORS

_EPOCH = "epoch"
# (symbol or bar stream key, after_seq, limit) of a recovering subscribe.
PageKey = tuple[str, int | None, int]

logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """A store a subscribe must read could not be read (a retryable failure)."""


class _HistoryReads:
    """The epoch and page reads of one history (the ticks' or the bars'), each
    through its own coalescer. ``history`` is looked up at each read: the
    process's backends may be rebuilt (tests change settings)."""

    def __init__(self, history: Callable[[], History], *, name: str) -> None:
        self._history = history
        self._epoch: Coalescer[str, str] = Coalescer(
            self._read_epoch, name=f"{name}-epoch"
        )
        self._pages: Coalescer[PageKey, HistoryPage] = Coalescer(
            self._read_pages, name=f"{name}-history"
        )

    async def _read_epoch(self, keys: list[str]) -> dict[str, str]:
        epoch = await self._history().aepoch()
        return {_EPOCH: epoch} if epoch is not None else {}

    async def _read_pages(self, keys: list[PageKey]) -> dict[PageKey, HistoryPage]:
        found = await self._history().aread_many(keys)
        return {key: page for key, page in found.items() if page is not None}

    async def epoch(self) -> str | None:
        try:
            return await self._epoch.get(_EPOCH)
        except STORE_ERRORS:
            return None

    async def pages(self, wanted: dict[str, int]) -> dict[str, HistoryPage | None]:
        size = self._history().size
        keys = {name: (name, seq, size) for name, seq in wanted.items()}
        try:
            found = await self._pages.get_many(keys.values())
        except STORE_ERRORS as exc:
            logger.warning(
                "event=subscribe_history_read_failed store=%s keys=%d error=%r",
                self._pages.name,
                len(keys),
                exc,
            )
            return dict.fromkeys(wanted)
        return {name: found.get(key) for name, key in keys.items()}


async def _read_snapshots(symbols: list[str]) -> dict[str, PriceState]:
    return await backends().cache.aget_many(symbols)


_snapshots: Coalescer[str, PriceState] = Coalescer(
    _read_snapshots, name="subscribe-snapshots"
)
_ticks = _HistoryReads(lambda: backends().history, name="subscribe")
_bars = _HistoryReads(lambda: backends().bar_history, name="subscribe-bars")


async def snapshots(symbols: list[str]) -> dict[str, PriceState]:
    """The cached state of each of ``symbols`` that has one.

    Raises ``StoreUnavailable`` if the cache cannot be read: a subscribe must not
    be acknowledged with snapshots silently missing.
    """
    try:
        return await _snapshots.get_many(symbols)
    except STORE_ERRORS as exc:
        raise StoreUnavailable(f"tick cache: {exc}") from exc


async def epoch() -> str | None:
    """The history's epoch, or None if it cannot be read (the ack then has none,
    as before: recovery positions are an extension)."""
    return await _ticks.epoch()


async def pages(wanted: dict[str, int]) -> dict[str, HistoryPage | None]:
    """History pages after each symbol's ``seq`` (None: not readable, so the
    symbol gets a snapshot instead, as a failed read always has)."""
    return await _ticks.pages(wanted)


async def bar_epoch() -> str | None:
    """The bar history's epoch (the ``bar_subscription`` reply's), or None if it
    cannot be read."""
    return await _bars.epoch()


async def bar_pages(wanted: dict[str, int]) -> dict[str, HistoryPage | None]:
    """Bar history pages after each stream key's ``seq`` (``{"AAPL@1m": 12}``);
    None where unreadable: that stream is then not recovered and goes live."""
    return await _bars.pages(wanted)
