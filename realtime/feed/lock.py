"""Leader locks: which feed process holds the one FMP connection.

FMP allows one connection per API key (FMP_UPSTREAM.md), so in scaled mode a
Redis lock with a TTL elects one leader among the feed workers; the leader renews
it every ttl/3 and drops the upstream connection as soon as a renewal fails. A
leader that stops deletes the lock and announces the release on a pub/sub
channel, so the standby takes over at once instead of after the TTL. Embedded
mode has one process, which always leads. ``Backends.leader_lock`` picks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import redis.asyncio as aredis

from realtime.stores import RedisClients

logger = logging.getLogger(__name__)


class LeaderLock(Protocol):
    async def acquire(self) -> None: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...


class LocalLock:
    """Embedded mode: one process, so the feed is always the leader."""

    async def acquire(self) -> None:
        return None

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLeaderLock:
    """``SET NX PX`` lock; its release is announced on ``<key>:released``."""

    _RENEW = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    )
    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "redis.call('publish', KEYS[1] .. ':released', ARGV[1]); "
        "return redis.call('del', KEYS[1]) else return 0 end"
    )

    def __init__(self, url: str, key: str, owner: str, ttl: float) -> None:
        self.redis = RedisClients(url).aio
        self.key = key
        self.released_channel = f"{key}:released"
        self.owner = owner
        self.ttl_ms = int(ttl * 1000)

    async def acquire(self) -> None:
        """Wait until this process holds the lock: retry every ttl/3, and at once
        when the holder announces its release."""
        announced = False
        pubsub = None
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = self.redis.pubsub()
                        await pubsub.subscribe(self.released_channel)
                    if await self.redis.set(
                        self.key, self.owner, nx=True, px=self.ttl_ms
                    ):
                        logger.info("event=feed_lock_acquired owner=%s", self.owner)
                        return
                    if not announced:
                        holder = await self.redis.get(self.key)
                        logger.info(
                            "event=feed_standby owner=%s leader=%s",
                            self.owner,
                            holder.decode() if holder else "-",
                        )
                        announced = True
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.ttl_ms / 3000
                    )
                    if message is not None:
                        data = message.get("data")
                        logger.info(
                            "event=feed_leader_released owner=%s leader=%s",
                            self.owner,
                            data.decode(errors="replace")
                            if isinstance(data, bytes)
                            else "-",
                        )
                except (aredis.RedisError, OSError) as exc:
                    logger.warning("event=feed_lock_error error=%r", exc)
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
                        pubsub = None
                    await asyncio.sleep(self.ttl_ms / 3000)
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def renew(self) -> bool:
        try:
            return bool(
                await self.redis.eval(self._RENEW, 1, self.key, self.owner, self.ttl_ms)
            )
        except (aredis.RedisError, OSError) as exc:
            logger.warning("event=feed_lock_renew_failed error=%r", exc)
            return False

    async def release(self) -> None:
        """Delete the lock if still ours and tell the standby (one round trip)."""
        try:
            released = await self.redis.eval(self._RELEASE, 1, self.key, self.owner)
        except (aredis.RedisError, OSError) as exc:
            logger.warning("event=feed_lock_release_failed error=%r", exc)
            return
        if released:
            logger.info("event=feed_lock_released owner=%s", self.owner)
