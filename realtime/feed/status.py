"""The feed's published status, read by health, status and metrics.

The feed may live in another process (scaled mode), so the REST views never ask it
directly: the feed publishes a snapshot every few seconds and on every state change,
and a snapshot older than ``REALTIME_STATUS_STALE_AFTER`` means the feed is gone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from realtime import metrics
from realtime.stores import RedisClients


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the feed publishes about itself.

    ``subscribed_symbols`` is the feed's upstream set (the guide's name for it on
    ``/status``). ``upstream_problem`` says in an operator's words what keeps
    prices from flowing (login refused, connection slot taken, TLS, refused
    streams or symbols, symbols the legacy cluster cannot serve), or None.
    ``refused_symbols``/``refused_streams`` map what FMP refused to its message;
    ``unservable_symbols`` maps symbols of another asset class than the configured
    legacy cluster to an explanation.
    """

    state: str  # one of realtime.events.UPSTREAM_STATES
    source: str  # fmp | simulator
    is_running: bool
    api_configured: bool
    subscribed_symbols: list[str] = field(default_factory=list)
    reconnect_attempts: int = 0
    callbacks_registered: int = 0
    total_clients: int = 0
    last_error: str | None = None
    last_tick_at: float | None = None
    heartbeat_at: float | None = None
    ticks_received: int = 0
    owner: str = ""
    updated_at: float = 0.0
    upstream_problem: str | None = None
    refused_symbols: dict[str, str] = field(default_factory=dict)
    refused_streams: dict[str, str] = field(default_factory=dict)
    unservable_symbols: dict[str, str] = field(default_factory=dict)
    # Set by the feed host (realtime/feed/runner.py) through ``StatusStore.extra``:
    # when this leader took the lock, and the last hand-over between leaders
    # (``{"from", "to", "at", "gap_seconds"}``: gap from the old leader's last
    # status to the new leader holding the lock).
    leader_since: float | None = None
    last_failover: dict[str, Any] | None = None
    # The feed process's own counters (realtime.metrics.feed_counters), so that
    # the web processes' /metrics can export them in scaled mode.
    counters: dict[str, float] = field(default_factory=dict)
    # How old this status may be and still describe a live feed: set by the
    # store that read it (``StatusStore.stale_after``); not published.
    stale_after: float = field(default=10.0, compare=False)

    def is_fresh(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now - self.updated_at <= self.stale_after

    def to_json(self) -> bytes:
        data = dataclasses.asdict(self)
        del data["stale_after"]  # the reader's, not the feed's
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> FeedStatus:
        data = orjson.loads(raw)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def refusals(status: FeedStatus | None, symbols: Iterable[str]) -> dict[str, str]:
    """Which of ``symbols`` FMP refused or the configured socket cannot serve,
    with why: what a subscribe reply needs to send ``upstream_refused`` at once
    to a client that asks for a symbol already known to get nothing."""
    if status is None:
        return {}
    known = {**status.unservable_symbols, **status.refused_symbols}
    return {s: known[s] for s in symbols if s in known}


class StatusStore:
    """In-process in embedded mode; a Redis key with a TTL in scaled mode.

    ``stale_after``: seconds after which a read status means the feed is down.
    Scaled mode (realtime/backends.py) uses the leader lock's TTL when shorter: a
    leader that has not reported for that long has lost its lock too, and a
    standby may take over.
    """

    def __init__(
        self, url: str = "", prefix: str = "fmpsite", stale_after: float | None = None
    ) -> None:
        self.url = url
        self.stale_after = (
            settings.REALTIME_STATUS_STALE_AFTER if stale_after is None else stale_after
        )
        self.key = f"{prefix}:feed:status"
        self._local: FeedStatus | None = None
        self._redis = RedisClients(url)
        # Fields the feed host adds to every status it publishes (leadership).
        self.extra: dict[str, Any] = {}
        # A new leader holds its statuses back until the hubs' leases are in
        # (realtime/feed/runner.py), so none says 0 clients after a takeover.
        self.held = False

    async def publish(self, status: FeedStatus) -> None:
        status = dataclasses.replace(
            status, **self.extra, counters=metrics.feed_counters()
        )
        self._local = status
        if self.held:
            return
        if self.url:
            ttl = max(1, int(settings.REALTIME_STATUS_STALE_AFTER * 6))
            await self._redis.aio.set(self.key, status.to_json(), ex=ttl)

    def read(self) -> FeedStatus | None:
        if not self.url:
            return self._dated(self._local)
        raw = self._redis.sync.get(self.key)
        return self._dated(FeedStatus.from_json(raw) if raw else None)

    async def aread(self) -> FeedStatus | None:
        """``read`` without blocking the event loop (hubs, the feed host)."""
        if not self.url:
            return self._dated(self._local)
        raw = await self._redis.aio.get(self.key)
        return self._dated(FeedStatus.from_json(raw) if raw else None)

    def _dated(self, status: FeedStatus | None) -> FeedStatus | None:
        if status is None or status.stale_after == self.stale_after:
            return status
        return dataclasses.replace(status, stale_after=self.stale_after)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def clear(self) -> None:
        self._local = None
        if self.url:
            self._redis.sync.delete(self.key)
