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
"""

from __future__ import annotations

from realtime.backends import backends
from realtime.coalesce import Coalescer
from realtime.feed.history import HistoryPage
from realtime.feed.state import PriceState
from realtime.stores import STORE_ERRORS

_EPOCH = "epoch"
# (symbol, after_seq, limit) of a recovering subscribe.
PageKey = tuple[str, int | None, int]


class StoreUnavailable(Exception):
    """A store a subscribe must read could not be read (a retryable failure)."""


async def _read_snapshots(symbols: list[str]) -> dict[str, PriceState]:
    return await backends().cache.aget_many(symbols)


async def _read_epoch(keys: list[str]) -> dict[str, str]:
    epoch = await backends().history.aepoch()
    return {_EPOCH: epoch} if epoch is not None else {}


async def _read_pages(keys: list[PageKey]) -> dict[PageKey, HistoryPage]:
    found = await backends().history.aread_many(keys)
    return {key: page for key, page in found.items() if page is not None}


_snapshots: Coalescer[str, PriceState] = Coalescer(
    _read_snapshots, name="subscribe-snapshots"
)
_epoch: Coalescer[str, str] = Coalescer(_read_epoch, name="subscribe-epoch")
_pages: Coalescer[PageKey, HistoryPage] = Coalescer(
    _read_pages, name="subscribe-history"
)


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
    try:
        return await _epoch.get(_EPOCH)
    except STORE_ERRORS:
        return None


async def pages(wanted: dict[str, int]) -> dict[str, HistoryPage | None]:
    """History pages after each symbol's ``seq`` (None: not readable, so the
    symbol gets a snapshot instead, as a failed read always has)."""
    size = backends().history.size
    keys = {symbol: (symbol, seq, size) for symbol, seq in wanted.items()}
    try:
        found = await _pages.get_many(keys.values())
    except STORE_ERRORS:
        return dict.fromkeys(wanted)
    return {symbol: found.get(key) for symbol, key in keys.items()}
