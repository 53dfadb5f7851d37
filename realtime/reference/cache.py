"""Reference entries per symbol per trading day.

A symbol's previous close and open change once a trading day, so an entry is good
until the day rolls (09:30 New York time, ``universe.trading_day``). Embedded mode
keeps a dict in the process; scaled mode shares one Redis hash per day
(``<REALTIME_CACHE_PREFIX>:reference:<day>``, expiring after two days) so N web
processes ask FMP once, not N times. An entry is a ``Reference`` or the marker
that FMP does not know the symbol (cached too: an invented symbol is asked once a
day, not on every subscribe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any, Protocol

import orjson

from realtime.stores import RedisClients

logger = logging.getLogger(__name__)

REDIS_TTL = 2 * 24 * 3600  # seconds: yesterday's hash may still be read at the roll


@dataclass(frozen=True, slots=True)
class Reference:
    """What FMP's quote endpoint says about a symbol for one trading day."""

    symbol: str
    name: str | None
    exchange: str | None
    asset_class: str  # stock | etf | index | crypto | forex | commodity | unknown
    previous_close: float | None
    open: float | None
    day_high: float | None
    day_low: float | None
    simulated: bool
    trading_day: str = ""  # ISO date the entry belongs to

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Unknown:
    """Marker: FMP answered and does not list the symbol."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()
Entry = Reference | Unknown


def encode_entry(symbol: str, entry: Entry) -> bytes:
    if isinstance(entry, Unknown):
        return orjson.dumps({"symbol": symbol, "unknown": True})
    return orjson.dumps(entry.to_dict())


def decode_entry(raw: bytes | str) -> Entry | None:
    try:
        data = orjson.loads(raw)
        if data.get("unknown"):
            return UNKNOWN
        return Reference.from_dict(data)
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        logger.warning("event=reference_cache_bad_entry error=%r", exc)
        return None


class ReferenceCache(Protocol):
    async def get_many(self, day: date, symbols: Iterable[str]) -> dict[str, Entry]: ...
    async def put_many(self, day: date, entries: dict[str, Entry]) -> None: ...
    def clear(self) -> None: ...


class LocalReferenceCache:
    """A dict per day; only the current and the previous day are kept."""

    def __init__(self) -> None:
        self._days: dict[date, dict[str, Entry]] = {}

    async def get_many(self, day: date, symbols: Iterable[str]) -> dict[str, Entry]:
        entries = self._days.get(day, {})
        return {s: e for s in symbols if (e := entries.get(s)) is not None}

    async def put_many(self, day: date, entries: dict[str, Entry]) -> None:
        self._days.setdefault(day, {}).update(entries)
        for old in sorted(self._days)[:-2]:
            del self._days[old]

    def clear(self) -> None:
        self._days.clear()


class RedisReferenceCache:
    """One Redis hash per trading day, symbol -> JSON entry (sync client, thread).

    Reads run in a thread so a slow or restarting Redis never blocks the event
    loop; errors propagate (the service treats them as "not cached").
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}:reference"
        self._redis = RedisClients(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def key(self, day: date) -> str:
        return f"{self.prefix}:{day.isoformat()}"

    async def get_many(self, day: date, symbols: Iterable[str]) -> dict[str, Entry]:
        names = list(symbols)
        if not names:
            return {}
        raws = await asyncio.to_thread(self._redis.sync.hmget, self.key(day), names)
        found: dict[str, Entry] = {}
        for symbol, raw in zip(names, raws, strict=True):
            if raw is not None and (entry := decode_entry(raw)) is not None:
                found[symbol] = entry
        return found

    async def put_many(self, day: date, entries: dict[str, Entry]) -> None:
        if not entries:
            return
        mapping = {s: encode_entry(s, e) for s, e in entries.items()}

        def write() -> None:
            pipe = self._redis.sync.pipeline()
            pipe.hset(self.key(day), mapping=mapping)
            pipe.expire(self.key(day), REDIS_TTL)
            pipe.execute()

        await asyncio.to_thread(write)

    def clear(self) -> None:
        client = self._redis.sync
        for key in client.scan_iter(f"{self.prefix}:*"):
            client.delete(key)
