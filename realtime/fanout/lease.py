"""LeaseKeeper: what this process tells the feed it needs, and what it hears back.

The hub aggregates its connections' symbols into one lease for the feed
(docs/architecture.md), sent on change and every ttl/3 s, and refreshes its
connections' per-user slots (realtime/fanout/slots.py) on the same beat. In
scaled mode the same beat reads the feed leader's status, so clients hear of a
dead feed instead of a silent stream. These are the hub's conversation with the
feed and the slot store on a timer, apart from the per-tick delivery, so they
live in their own task and module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from realtime import metrics
from realtime.backends import backends
from realtime.events import FEED_CHANNEL, LeaseEvent, UpstreamState
from realtime.feed.state import encode_upstream_status
from realtime.tasks import cancel_all, start_watched

if TYPE_CHECKING:
    from realtime.fanout.hub import FanoutHub

logger = logging.getLogger(__name__)

# Scaled mode: how often a hub reads the feed leader's status to notice a dead feed.
FEED_WATCH_INTERVAL = 1.0


class LeaseKeeper:
    """The lease task of one hub: reads the hub's registry, never changes it."""

    def __init__(self, hub: FanoutHub) -> None:
        self.hub = hub
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Scaled mode: the feed leader's status went stale (``_watch_feed``).
        self.feed_stale = False

    def start(self, on_done: Callable[[asyncio.Task[None]], Any]) -> None:
        """Start the lease task; ``on_done`` hears if it ends."""
        self._tasks = start_watched({"hub-lease": self._lease_loop()}, on_done)

    async def aclose(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []

    def wake(self) -> None:
        """The symbols or clients changed (or the feed asked): send the lease now."""
        self._wakeup.set()

    async def release(self) -> None:
        """Tell the feed this process needs nothing any more (it is stopping)."""
        hub = self.hub
        try:
            await hub.channel_layer.send(
                FEED_CHANNEL, {"type": "feed.release", "owner": hub.owner}
            )
        except Exception as exc:
            logger.debug("event=lease_release_failed error=%r", exc)

    async def _lease_loop(self) -> None:
        """Send the lease on change and every ttl/3 s; in scaled mode also watch
        the feed leader's status once a second (``_watch_feed``)."""
        hub = self.hub
        interval = max(0.5, hub.lease_ttl / 3)
        watch = self._feed_watched()
        tick = min(interval, FEED_WATCH_INTERVAL) if watch else interval
        loop = asyncio.get_running_loop()
        next_lease = next_refresh = loop.time()
        while True:
            # asyncio.timeout, not wait_for: cancelling wait_for's inner task
            # could leave aclose() waiting forever on 3.11 (seen in the fuzz test).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    await self._wakeup.wait()
            woken = self._wakeup.is_set()
            self._wakeup.clear()
            if watch:
                await self._watch_feed()
            if not woken and loop.time() < next_lease:
                continue
            next_lease = loop.time() + interval
            await self.send_lease()
            # On the beat only, not on every wake: in a connect storm each
            # connection wakes the loop, and refreshing every slot each time is
            # quadratic work queued ahead of the next lease (issue 26).
            if loop.time() < next_refresh:
                continue
            next_refresh = loop.time() + interval
            await hub.slots.refresh(
                (ob.user_key, ob.conn_id)
                for ob in hub.outboxes
                if ob.user_key is not None
            )

    def _feed_watched(self) -> bool:
        """Scaled mode only: in embedded mode the feed lives and dies with us."""
        return backends().scaled

    async def _watch_feed(self) -> None:
        """Tell clients when the feed leader stops reporting, and when it is back.

        A killed feed worker sends nothing: without this, clients would see a
        silent stream and no ``upstream_status`` for the whole outage. Stale means
        older than the leader lock's TTL (``FeedStatus.is_fresh``), the time a
        standby needs to take over.
        """
        try:
            status = await backends().status.aread()
        except Exception as exc:  # Redis restarting: the receive loop says so
            logger.debug("event=feed_watch_failed error=%r", exc)
            return
        fresh = status is not None and status.is_fresh()
        if not fresh and not self.feed_stale:
            self.feed_stale = True
            metrics.FEED_STALE.set(1)
            logger.warning(
                "event=feed_status_stale owner=%s leader=%s age=%s",
                self.hub.owner,
                status.owner if status else "-",
                f"{time.time() - status.updated_at:.1f}" if status else "-",
            )
            state = UpstreamState.RECONNECTING
            self.hub.deliver_upstream(state, encode_upstream_status(state))
        elif fresh and self.feed_stale:
            assert status is not None
            self.feed_stale = False
            metrics.FEED_STALE.set(0)
            logger.info(
                "event=feed_status_fresh owner=%s leader=%s state=%s",
                self.hub.owner,
                status.owner,
                status.state,
            )
            self.hub.deliver_upstream(
                status.state, encode_upstream_status(status.state)
            )
        if status is not None and fresh:
            metrics.adopt_feed_counters(status.counters)

    async def send_lease(self) -> None:
        hub = self.hub
        lease: LeaseEvent = {
            "type": "feed.lease",
            "owner": hub.owner,
            "symbols": sorted(hub.by_symbol),
            "clients": len(hub.outboxes),
            "ttl": hub.lease_ttl,
        }
        if hub.channel_name is not None:
            lease["channel"] = hub.channel_name
        try:
            await hub.channel_layer.send(FEED_CHANNEL, lease)
        except Exception as exc:  # feed absent (channel full) or Redis down
            logger.warning("event=lease_send_failed owner=%s error=%r", hub.owner, exc)
