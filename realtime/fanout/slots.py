"""Connection slots per principal: the per-user connection cap, deployment-wide.

``REALTIME_MAX_CONNECTIONS_PER_USER`` must hold however many web processes serve
the socket. In embedded mode there is one process and the count is in memory. In
scaled mode (``REDIS_URL``) each principal has one Redis sorted set,
``<REALTIME_CACHE_PREFIX>:conns:<principal>``, with a member per open connection,
``<hub owner>|<connection id>``, scored by when it expires. The hub's lease loop
pushes the expiry of its members forward every lease_ttl/3 s, so the slots of a
process that dies free within ``REALTIME_LEASE_TTL``; a process that stops removes
its members at once. Taking a slot is one Lua script: drop expired members, count,
add if under the cap; the connects of a burst send theirs in one pipeline
(realtime/coalesce.py), and the lease beat's refresh has its own connection.

The principal is ``scope["realtime_principal"]`` when the auth middleware set it
(``user:<id>`` for Django users and for connection-token subjects), else
``user:<pk>`` for an authenticated user; anonymous connections are not capped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

logger = logging.getLogger(__name__)


class ConnectionSlots(Protocol):
    async def acquire(self, principal: str, conn_id: str, cap: int) -> bool: ...
    async def release(self, principal: str, conn_id: str) -> None: ...
    async def refresh(self, held: Iterable[tuple[str, str]]) -> None: ...
    async def release_all(self) -> None: ...


class LocalSlots:
    """Embedded mode: this process is the deployment."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def acquire(self, principal: str, conn_id: str, cap: int) -> bool:
        if self.counts[principal] >= cap:
            return False
        self.counts[principal] += 1
        return True

    async def release(self, principal: str, conn_id: str) -> None:
        self.counts[principal] -= 1
        if self.counts[principal] <= 0:
            del self.counts[principal]

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        return None

    async def release_all(self) -> None:
        self.counts.clear()


# KEYS[1]: the principal's set. ARGV: now, expiry, member, cap, key ttl (ms).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisSlots:
    """Scaled mode: one sorted set per principal in Redis, shared by every process.

    If Redis cannot be reached the connection is admitted (and logged): the cap
    protects against abuse, and refusing everyone during a Redis restart would
    turn a short outage into a full one.
    """

    def __init__(self, url: str, prefix: str, owner: str, ttl: float) -> None:
        from realtime.coalesce import Coalescer
        from realtime.stores import async_redis

        self.redis = async_redis(url)
        # The lease beat's refresh has a connection of its own: it must never
        # wait behind a storm of connects for a pooled one (issue 26).
        self.beat = async_redis(url, pool_size=1)
        self.prefix = prefix
        self.owner = owner
        self.ttl = ttl
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._held: dict[tuple[str, str], None] = {}
        # Connects arriving together take their slots in one pipeline.
        self._acquires: Coalescer[tuple[str, str, int], bool] = Coalescer(
            self._acquire_many, name="connection-slots"
        )
        # And a burst of disconnects (a web process's clients leaving) gives
        # theirs back in one pipeline.
        self._releases: Coalescer[tuple[str, str], None] = Coalescer(
            self._release_many, name="connection-slot-release"
        )

    def key(self, principal: str) -> str:
        return f"{self.prefix}:conns:{principal}"

    def member(self, conn_id: str) -> str:
        return f"{self.owner}|{conn_id}"

    async def _acquire_many(
        self, wanted: list[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], bool]:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for principal, conn_id, cap in wanted:
            await self._acquire(
                keys=[self.key(principal)],
                args=[
                    now,
                    now + self.ttl,
                    self.member(conn_id),
                    cap,
                    int(self.ttl * 2000),
                ],
                client=pipe,
            )
        taken = await pipe.execute()
        return {key: bool(t) for key, t in zip(wanted, taken, strict=True)}

    async def acquire(self, principal: str, conn_id: str, cap: int) -> bool:
        try:
            taken = await self._acquires.get((principal, conn_id, cap))
        except Exception as exc:
            logger.warning(
                "event=connection_slots_unavailable principal=%s error=%r",
                principal,
                exc,
            )
            return True
        if taken:
            self._held[(principal, conn_id)] = None
        return bool(taken)

    async def _release_many(
        self, held: list[tuple[str, str]]
    ) -> dict[tuple[str, str], None]:
        pipe = self.redis.pipeline(transaction=False)
        for principal, conn_id in held:
            pipe.zrem(self.key(principal), self.member(conn_id))
        await pipe.execute()
        return {}

    async def release(self, principal: str, conn_id: str) -> None:
        self._held.pop((principal, conn_id), None)
        try:
            await self._releases.get_many([(principal, conn_id)])
        except Exception as exc:
            logger.warning("event=connection_slot_release_failed error=%r", exc)

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        expiry = time.time() + self.ttl
        pipe = self.beat.pipeline(transaction=False)
        count = 0
        for principal, conn_id in held:
            if (principal, conn_id) not in self._held:
                continue
            key = self.key(principal)
            pipe.zadd(key, {self.member(conn_id): expiry}, xx=True)
            pipe.pexpire(key, int(self.ttl * 2000))
            count += 1
        if not count:
            return
        try:
            await pipe.execute()
        except Exception as exc:
            logger.warning("event=connection_slots_refresh_failed error=%r", exc)

    async def release_all(self) -> None:
        held, self._held = list(self._held), {}
        if held:
            pipe = self.redis.pipeline(transaction=False)
            for principal, conn_id in held:
                pipe.zrem(self.key(principal), self.member(conn_id))
            try:
                await pipe.execute()
            except Exception as exc:
                logger.warning("event=connection_slots_release_failed error=%r", exc)
        try:
            await self.redis.aclose()
            await self.beat.aclose()
        except Exception as exc:
            logger.debug("event=connection_slots_close_failed error=%r", exc)
