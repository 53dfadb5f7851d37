"""What a failing shared store raises, defined once.

The tick cache and the feed status live in Redis in scaled mode (and in this
process otherwise). When Redis is down or unreachable, redis-py raises
``redis.RedisError`` (the asyncio client raises the same classes) and the socket
layer ``OSError``. Every caller that turns a store failure into a clear answer (a
503, a log line, a fallback) catches exactly this tuple, so a new error class is
added in one place.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel
from django.conf import settings

from realtime.redisurl import SentinelTarget, parse_sentinel

STORE_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)


def async_redis(
    url: str, pool_size: int | None = None, **connection: Any
) -> aredis.Redis:
    """An asyncio Redis client with a bounded pool (``REALTIME_REDIS_POOL_SIZE``),
    for a plain Redis URL or a Sentinel group (realtime/redisurl.py).

    redis-py's default pool opens one connection per concurrent command, without
    limit: 1,000 clients subscribing at once opened ~950 Redis connections from
    the web processes in the benchmark (Redis refuses clients past ``maxclients``,
    10,000 by default) and their buffers cost ~10 KB of RSS per WebSocket
    connection. With a bounded pool the excess waits for a free connection.
    ``pool_size`` overrides the setting for a client that must not share (the
    lease beat's, realtime/fanout/slots.py).
    """
    size = settings.REALTIME_REDIS_POOL_SIZE if pool_size is None else pool_size
    # Past REALTIME_REDIS_POOL_WAIT a command fails (``redis.ConnectionError``,
    # one of STORE_ERRORS).
    wait = settings.REALTIME_REDIS_POOL_WAIT
    target = parse_sentinel(url)
    if target is not None:
        return _sentinel(target, connection).master_for(
            target.master_name,
            connection_pool_class=BlockingSentinelPool,
            max_connections=size,
            timeout=wait,
            **target.connection_kwargs(),
            **connection,
        )
    pool = aredis.BlockingConnectionPool.from_url(
        url,
        max_connections=size,
        timeout=wait,
        **connection,
    )
    return aredis.Redis.from_pool(pool)


class BlockingSentinelPool(
    asentinel.SentinelConnectionPool, aredis.BlockingConnectionPool
):
    """The master's connections of a Sentinel group, bounded like any other
    pool here: past ``max_connections`` a command waits for a free one."""


def _sentinel(target: SentinelTarget, connection: dict[str, Any]) -> asentinel.Sentinel:
    sentinel_kwargs = target.sentinel_kwargs()
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in connection:
            sentinel_kwargs.setdefault(name, connection[name])
    return asentinel.Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)


def sync_redis(url: str, **connection: Any) -> redis.Redis:
    """A blocking Redis client for ``url`` (a plain URL or a Sentinel group)."""
    target = parse_sentinel(url)
    if target is None:
        return redis.Redis.from_url(url, **connection)
    sentinel_kwargs = target.sentinel_kwargs()
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in connection:
            sentinel_kwargs.setdefault(name, connection[name])
    sentinel = redis.sentinel.Sentinel(
        list(target.sentinels), sentinel_kwargs=sentinel_kwargs
    )
    return sentinel.master_for(
        target.master_name, **target.connection_kwargs(), **connection
    )


class RedisClients:
    """A store's two Redis clients, made on first use: ``sync`` for views running
    in threads, ``aio`` (bounded pool, ``async_redis``) for the event loop."""

    def __init__(self, url: str, **connection: Any) -> None:
        self.url = url
        self.connection = connection
        self._sync: redis.Redis | None = None
        self._aio: aredis.Redis | None = None

    @property
    def sync(self) -> redis.Redis:
        if self._sync is None:
            self._sync = sync_redis(self.url, **self.connection)
        return self._sync

    @property
    def aio(self) -> aredis.Redis:
        if self._aio is None:
            self._aio = async_redis(self.url, **self.connection)
        return self._aio

    async def aclose(self) -> None:
        """Close the asyncio client (it belongs to one event loop); a later use
        makes a new one."""
        if self._aio is not None:
            await self._aio.aclose()
            self._aio = None
