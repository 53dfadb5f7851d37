"""TickCache: the latest merged price state per symbol.

Embedded mode keeps it in the process (the feed and the views share one dict).
Scaled mode keeps a local copy in the feed process and writes changed symbols to a
Redis hash in pipelined batches, so the tick path never waits on Redis; web
processes read that hash.

The feed process keeps each symbol's latest state once, here: the feed reads the
previous state back with ``latest`` (writer side, no I/O) to merge the next tick.
``trim`` bounds the cache at ``REALTIME_CACHE_MAX_SYMBOLS``: symbols no longer
subscribed upstream are evicted, longest-silent first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from realtime.feed.state import PriceState, from_cache_entry, to_cache_entry
from realtime.stores import STORE_ERRORS, RedisClients

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds between Redis write batches in scaled mode


class TickCache(Protocol):
    def put(self, state: PriceState) -> None: ...
    def latest(self, symbol: str) -> PriceState | None: ...
    def trim(self, limit: int, keep: frozenset[str]) -> list[str]: ...
    def local_count(self) -> int: ...
    def get(self, symbol: str) -> PriceState | None: ...
    def symbols(self) -> list[str]: ...
    def entries(self, limit: int | None = None) -> dict[str, dict[str, Any]]: ...
    async def aget_many(self, symbols: Iterable[str]) -> dict[str, PriceState]: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    def clear(self) -> None: ...


class InProcessTickCache:
    """A dict; safe to read from sync views because the GIL makes get/set atomic."""

    def __init__(self) -> None:
        self._states: dict[str, PriceState] = {}

    def put(self, state: PriceState) -> None:
        self._states[state.symbol] = state

    def latest(self, symbol: str) -> PriceState | None:
        return self._states.get(symbol)

    def trim(self, limit: int, keep: frozenset[str]) -> list[str]:
        return _trim(self._states, limit, keep, self._states.pop)

    def local_count(self) -> int:
        return len(self._states)

    def get(self, symbol: str) -> PriceState | None:
        return self._states.get(symbol)

    def symbols(self) -> list[str]:
        return sorted(self._states)

    def entries(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        names = self.symbols()[:limit] if limit is not None else self.symbols()
        return {s: to_cache_entry(self._states[s]) for s in names}

    async def aget_many(self, symbols: Iterable[str]) -> dict[str, PriceState]:
        return {s: st for s in symbols if (st := self._states.get(s)) is not None}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def clear(self) -> None:
        self._states.clear()


class RedisTickCache:
    """Redis hash ``<prefix>:ticks`` mapping symbol -> JSON cache entry."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.key = f"{prefix}:ticks"
        self._local: dict[str, PriceState] = {}
        self._dirty: set[str] = set()
        self._evicted: set[str] = set()
        self._redis = RedisClients(url)
        self._flusher: asyncio.Task[None] | None = None

    # Writer side (feed process) ---------------------------------------------------
    def put(self, state: PriceState) -> None:
        self._local[state.symbol] = state
        self._dirty.add(state.symbol)

    def latest(self, symbol: str) -> PriceState | None:
        return self._local.get(symbol)

    def local_count(self) -> int:
        return len(self._local)

    def trim(self, limit: int, keep: frozenset[str]) -> list[str]:
        """Evict from the local copy now and from the Redis hash on the next
        flush. Symbols another feed process wrote (before a failover) and this one
        never saw are trimmed from Redis too: ``_hash_trim`` runs with the flush."""

        def evict(symbol: str) -> None:
            self._local.pop(symbol, None)
            self._dirty.discard(symbol)
            self._evicted.add(symbol)

        return _trim(self._local, limit, keep, evict)

    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="tick-cache")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except STORE_ERRORS as exc:
                # Keep the dirty set: the next batch retries once Redis is back.
                logger.warning("event=cache_flush_failed error=%r", exc)

    async def flush(self) -> None:
        if self._evicted:
            evicted, self._evicted = self._evicted, set()
            try:
                await self._redis.aio.hdel(self.key, *evicted)
            except BaseException:
                self._evicted |= evicted
                raise
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        mapping = {s: orjson.dumps(to_cache_entry(self._local[s])) for s in dirty}
        try:
            await self._redis.aio.hset(self.key, mapping=mapping)
        except BaseException:
            self._dirty |= dirty
            raise

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
            try:
                await self.flush()
            except STORE_ERRORS:
                logger.warning("event=cache_final_flush_failed")
        await self._redis.aclose()

    # Reader side (web processes) --------------------------------------------------
    def get(self, symbol: str) -> PriceState | None:
        raw = self._redis.sync.hget(self.key, symbol)
        return from_cache_entry(orjson.loads(raw)) if raw else None

    def symbols(self) -> list[str]:
        return sorted(k.decode() for k in self._redis.sync.hkeys(self.key))

    def entries(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        names = self.symbols()
        if limit is not None:
            names = names[:limit]
        if not names:
            return {}
        raws = self._redis.sync.hmget(self.key, names)
        return {s: orjson.loads(r) for s, r in zip(names, raws, strict=True) if r}

    async def aget_many(self, symbols: Iterable[str]) -> dict[str, PriceState]:
        names = list(symbols)
        if not names:
            return {}
        raws = await self._redis.aio.hmget(self.key, names)
        return {
            s: from_cache_entry(orjson.loads(r))
            for s, r in zip(names, raws, strict=True)
            if r
        }

    def clear(self) -> None:
        self._local.clear()
        self._dirty.clear()
        self._evicted.clear()
        self._redis.sync.delete(self.key)


def _trim(
    states: dict[str, PriceState],
    limit: int,
    keep: frozenset[str],
    evict: Callable[[str], object],
) -> list[str]:
    """Evict symbols outside ``keep`` (oldest tick first) until ``limit`` holds."""
    excess = len(states) - limit
    if limit <= 0 or excess <= 0:
        return []
    candidates = sorted(
        (state.timestamp, symbol)
        for symbol, state in states.items()
        if symbol not in keep
    )
    evicted = [symbol for _, symbol in candidates[:excess]]
    for symbol in evicted:
        evict(symbol)
    if evicted:
        logger.info(
            "event=cache_evicted count=%d limit=%d first=%s",
            len(evicted),
            limit,
            evicted[0],
        )
    return evicted
