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
from typing import NamedTuple, Protocol

import redis.asyncio as aredis

from realtime.stores import RedisClients

logger = logging.getLogger(__name__)

# Seconds between lock attempts while Redis fails (at most ttl/3).
ERROR_RETRY = 0.25


class Fence(NamedTuple):
    """A leadership's fencing token: the counter at ``key`` was ``token`` when
    this leader acquired the lock. The history write script refuses a batch
    whose token is no longer the counter's (realtime/feed/history.py), so a
    stale leader (its lock lost in a Redis failover, a newer one elected) cannot
    write after the new one started."""

    key: str
    token: int


class LeaderLock(Protocol):
    # The fence of the current leadership (None: no fencing, embedded mode).
    fence: Fence | None

    async def acquire(self) -> None: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...


class LocalLock:
    """Embedded mode: one process, so the feed is always the leader."""

    fence: Fence | None = None

    async def acquire(self) -> None:
        return None

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLeaderLock:
    """``SET NX PX`` lock; its release is announced on ``<key>:released``.

    Each acquisition also increments ``<key>:fence`` in the same script and
    keeps the result as its ``fence`` (``Fence``). Redis replicates
    asynchronously, so a Sentinel failover can promote a replica that never got
    the lock key: a standby then acquires while the old leader still believes it
    leads, until its next renewal (ttl/3) fails. Two guards bound that:

    - after acquiring, when the master has replicas, ``WAIT 1`` for one of them
      to hold the key and the counter (at most ttl/3; a timeout is logged as
      ``event=feed_lock_unreplicated`` and leadership goes on: availability
      over a lock that Redis cannot promise);
    - the fence: the new leader's increment makes every history write of the
      old one fail (``event=feed_fenced``), so it publishes nothing more and
      steps down at once, before the renewal would notice.
    """

    # The lock still naming this owner is acquired again: a leader that stepped
    # down because Redis was unreachable (a Sentinel failover) finds its own key
    # replicated to the promoted master and leads again at once, instead of
    # waiting out the TTL while nobody serves (bench/failover.py measures it).
    # Nobody else can hold the lock meanwhile, and the new fence token still
    # refuses whatever the previous leadership might write late.
    _ACQUIRE = (
        "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) "
        "or (redis.call('get', KEYS[1]) == ARGV[1] "
        "and redis.call('pexpire', KEYS[1], ARGV[2]) == 1) then "
        "return redis.call('incr', KEYS[2]) else return 0 end"
    )

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
        self.fence_key = f"{key}:fence"
        self.fence: Fence | None = None

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
                    token = await self.redis.eval(
                        self._ACQUIRE,
                        2,
                        self.key,
                        self.fence_key,
                        self.owner,
                        self.ttl_ms,
                    )
                    if token:
                        self.fence = Fence(self.fence_key, int(token))
                        await self._await_replica()
                        logger.info(
                            "event=feed_lock_acquired owner=%s fence=%d",
                            self.owner,
                            self.fence.token,
                        )
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
                    # Redis unreachable (failing over): ask again soon, the
                    # promoted master is found through Sentinel within a second.
                    await asyncio.sleep(min(self.ttl_ms / 3000, ERROR_RETRY))
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _await_replica(self) -> None:
        """With replicas attached, wait (ttl/3 at most) until one holds the
        lock and its fence, so a promotion of that replica keeps them."""
        info = await self.redis.info("replication")
        if not int(info.get("connected_slaves", 0)):
            return  # a lone Redis: nothing to wait for, nothing to lose to
        acked = await self.redis.wait(1, max(1, self.ttl_ms // 3))
        if acked < 1:
            logger.warning(
                "event=feed_lock_unreplicated owner=%s waited_ms=%d",
                self.owner,
                self.ttl_ms // 3,
            )

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
