"""The feed host: leadership, the ``fmp-feed`` control channel, housekeeping.

Scaled mode runs it as ``manage.py runworker fmp-feed`` (two of them: leader and
hot standby). A Redis lock with a TTL decides which one holds the FMP connection,
because FMP allows one connection per key (FMP_UPSTREAM.md): the leader renews
the lock every ttl/3 and drops the upstream connection as soon as a renewal fails,
so two upstream connections never overlap. A leader that stops (SIGTERM, SIGINT)
first closes the FMP socket with a close frame, then deletes the lock and
announces it on a Redis pub/sub channel, so the standby, which waits on that
channel between its polls, takes over at once instead of after the TTL. Embedded
mode runs the same code inside the web process with a lock that is always held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime.backends import Backends, backends
from realtime.events import FEED_CHANNEL, HUBS_GROUP, LeaseRequestEvent
from realtime.feed.broker import Broker
from realtime.feed.service import FeedService
from realtime.groups import price_group
from realtime.reference.service import set_rest_base
from realtime.selectors import pinned_symbols
from realtime.tasks import cancel_all, until_first_done
from realtime.upstream.config import FmpConfig

logger = logging.getLogger(__name__)

PIN_RELOAD_INTERVAL = 60.0
HOUSEKEEPING_INTERVAL = 1.0
# A new leader's first status waits for the hubs' leases this long at most, and
# this long after the first one for the others.
FIRST_STATUS_WAIT = 1.0
LEASE_SETTLE = 0.1


class FeedRunner:
    def __init__(
        self,
        *,
        channel_layer: Any = None,
        lock: Any = None,
        stores: Backends | None = None,
    ) -> None:
        """``stores``: the backends to run on (default: the process's, chosen
        by the settings, realtime/backends.py)."""
        self.channel_layer = channel_layer or get_channel_layer()
        self.owner = f"feed:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stores = stores if stores is not None else backends()
        self.lock = lock if lock is not None else self.stores.leader_lock(self.owner)
        self.feed: FeedService | None = None
        self.broker: Broker | None = None
        self.bars: Any = None  # realtime/bars/feed.py BarFeed, while leading
        self.alerts: Any = None  # realtime/alerts/engine.py AlertEngine, likewise
        self.simulator: Any = None
        self.leading = asyncio.Event()
        # Lease owner -> (hub channel, symbols of its last lease): where the
        # publisher sends, and which groups to clean when the lease expires.
        self.hubs: dict[str, tuple[str, frozenset[str]]] = {}
        self._lease_seen = asyncio.Event()

    async def run(self) -> None:
        """Lead when possible, step down when the lock is lost; until cancelled."""
        try:
            while True:
                await self.lock.acquire()
                try:
                    await self._lead()
                finally:
                    self.leading.clear()
                    await self._stop_feed()
                logger.warning("event=feed_lock_lost owner=%s", self.owner)
        finally:
            await self.lock.release()

    async def _lead(self) -> None:
        await self._record_leadership()
        self.hubs = {}
        scaled = self.stores.scaled
        if scaled:
            self.stores.status.held = True  # until ``_first_status``
        self.feed = await self._build_feed()
        if self.bars is not None:
            # Before the feed's first tick: the bars first continue the previous
            # leader's open bars from the tick history (realtime/bars/takeover.py).
            await self.bars.start()
        await self.feed.start()
        if self.alerts is not None:
            await self.alerts.start()
        await self._reload_pins()
        request: LeaseRequestEvent = {"type": "hub.lease_request"}
        with contextlib.suppress(Exception):
            await self.channel_layer.group_send(HUBS_GROUP, request)
        if not scaled:
            await self.feed.publish_status()
        self.leading.set()
        self._lease_seen.clear()
        tasks = [
            asyncio.create_task(self._control_loop(), name="feed-control"),
            asyncio.create_task(self._housekeeping_loop(), name="feed-housekeeping"),
            asyncio.create_task(self._renew_loop(), name="feed-lock"),
            # A newer leader's fence refused a history write: step down now.
            asyncio.create_task(self.broker.fenced.wait(), name="feed-fence"),
        ]
        try:
            if scaled:
                await self._first_status()
            await until_first_done(tasks)
        finally:
            await cancel_all(tasks)

    async def _first_status(self) -> None:
        """A new leader publishes its first status once the hubs' leases are in
        (they answer the lease request within milliseconds; at most
        ``FIRST_STATUS_WAIT`` s), so /status never reports 0 clients and no
        symbols for the moment after a takeover."""
        assert self.feed is not None
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_STATUS_WAIT):
                    await self._lease_seen.wait()
                    await asyncio.sleep(LEASE_SETTLE)  # the other hubs' answers
        finally:
            self.feed.status_store.held = False
        self.feed.reconcile()
        await self.feed.publish_status()

    async def _build_feed(self) -> FeedService:
        if settings.FMP_API_KEY:
            upstream, source = FmpConfig.from_settings(), "fmp"
        else:
            from realtime.upstream.simulator import FmpSimulator

            self.simulator = FmpSimulator(
                port=0,
                rate=settings.REALTIME_SIMULATOR_RATE,
                seed=settings.REALTIME_SIMULATOR_SEED,
                any_symbol=settings.REALTIME_SIMULATOR_ANY_SYMBOL,
            )
            await self.simulator.start()
            # Reference data reads the simulator's REST port (published in Redis
            # for the web processes in scaled mode): blocking I/O, off the loop.
            await asyncio.to_thread(set_rest_base, self.simulator.rest_url)
            upstream = FmpConfig.from_settings(
                url=self.simulator.url, api_key="simulator", protocol="legacy"
            )
            source = "simulator"
            logger.info("event=simulator_started url=%s", self.simulator.url)
        self.broker = self.stores.broker(self.channel_layer, fence=self.lock.fence)
        feed = FeedService(
            upstream=upstream,
            cache=self.stores.cache,
            broker=self.broker,
            status_store=self.stores.status,
            source=source,
            api_configured=bool(settings.FMP_API_KEY),
            owner=self.owner,
            grace=settings.REALTIME_UNSUBSCRIBE_GRACE,
            cache_max_symbols=settings.REALTIME_CACHE_MAX_SYMBOLS,
            callbacks=settings.REALTIME_TICK_CALLBACKS,
        )
        # Bars are built here, by the leader, from the ticks it publishes.
        self.bars = self.stores.bar_feed(self.channel_layer, self.lock.fence)
        if self.bars is not None:
            feed.register_callback(self.bars.on_tick, sync=True)
        # So are price alerts; their symbols stay subscribed upstream.
        self.alerts = self.stores.alert_engine(
            self.channel_layer, self.broker, feed.set_alert_symbols
        )
        feed.register_callback(self.alerts.on_tick, sync=True)
        return feed

    async def _stop_feed(self) -> None:
        if self.feed is not None:
            await self.feed.stop()
            self.feed = None
        if self.bars is not None:
            await self.bars.aclose()
            self.bars = None
        if self.alerts is not None:
            await self.alerts.aclose()
            self.alerts = None
        if self.simulator is not None:
            await asyncio.to_thread(set_rest_base, None)
            await self.simulator.stop()
            self.simulator = None

    async def _control_loop(self) -> None:
        assert self.feed is not None
        while True:
            try:
                message = await self.channel_layer.receive(FEED_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting; hubs re-send leases
                logger.warning("event=feed_receive_failed error=%r", exc)
                await asyncio.sleep(1.0)
                continue
            kind = message.get("type")
            try:
                if kind == "feed.lease":
                    self.feed.apply_lease(
                        message["owner"],
                        message["symbols"],
                        int(message["clients"]),
                        float(message["ttl"]),
                    )
                    moved = self._route(message)
                    self._lease_seen.set()
                    if moved is not None:
                        await self._discard_hub(message["owner"], *moved)
                elif kind == "feed.release":
                    self.feed.release(message["owner"])
                    self._unroute(message["owner"])
                elif kind == "feed.pins":
                    await self._reload_pins()
                elif kind == "feed.alerts":
                    if self.alerts is not None:
                        await self.alerts.reload()
                else:
                    logger.warning("event=feed_unknown_message type=%r", kind)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("event=feed_bad_message type=%r error=%r", kind, exc)

    def _route(self, lease: dict[str, Any]) -> tuple[str, frozenset[str]] | None:
        """Remember the lease's hub channel: where to clean up if it expires,
        and which groups the publisher puts back on a shard that returns.

        Returns the hub's previous route when its channel changed: a hub whose
        receive failed (Redis restarting, a failover, its shard down)
        registers again on a new channel, and the old one, never read again,
        must leave its groups, or the publisher keeps sending to it (and
        counting those sends dropped once its queue is full)."""
        channel = lease.get("channel")
        if not isinstance(channel, str):
            return None  # a hub of the previous release, or not registered yet
        symbols = frozenset(lease["symbols"])
        previous = self.hubs.get(lease["owner"])
        self.hubs[lease["owner"]] = (channel, symbols)
        if self.broker is not None:
            self.broker.route_hub(channel, symbols)
        if previous is None or previous[0] == channel:
            return None
        if self.broker is not None:
            self.broker.forget_hub(previous[0])
        return previous

    def _unroute(self, owner: str) -> tuple[str, frozenset[str]] | None:
        hub = self.hubs.pop(owner, None)
        if hub is not None and self.broker is not None:
            self.broker.forget_hub(hub[0])
        return hub

    async def _forget_expired_hubs(self) -> None:
        """A web process whose lease expired was killed (a stopped one releases
        its lease and leaves its groups itself): take its channel out of every
        group and stop sending to it, so nothing queues for a dead inbox."""
        assert self.feed is not None
        for owner in [o for o in self.hubs if o not in self.feed.leases]:
            hub = self._unroute(owner)
            if hub is not None:
                await self._discard_hub(owner, *hub)

    async def _discard_hub(
        self, owner: str, channel: str, symbols: frozenset[str]
    ) -> None:
        """Take ``channel`` out of ``realtime.hubs`` and its symbols' groups."""
        groups = [HUBS_GROUP, *(price_group(s) for s in sorted(symbols))]
        failed = 0
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, channel)
            except Exception as exc:  # Redis restarting: its expiry cleans up
                # One shard of a sharded layer may be down: the rest go on.
                if not failed:
                    logger.warning(
                        "event=group_discard_failed group=%s error=%r", group, exc
                    )
                failed += 1
        logger.info(
            "event=hub_forgotten owner=%s channel=%s groups=%d",
            owner,
            channel,
            len(groups),
        )

    async def _record_leadership(self) -> None:
        """Name this leader in the status, and the hand-over if it took over from
        another one (how long no leader reported)."""
        store = self.stores.status
        now = time.time()
        try:
            previous = await store.aread()
        except Exception as exc:
            logger.warning("event=feed_previous_status_failed error=%r", exc)
            previous = None
        failover = previous.last_failover if previous is not None else None
        if previous is not None and previous.owner and previous.owner != self.owner:
            failover = {
                "from": previous.owner,
                "to": self.owner,
                "at": now,
                "gap_seconds": round(max(0.0, now - previous.updated_at), 3),
            }
            logger.warning(
                "event=feed_failover from=%s to=%s gap_seconds=%.3f",
                previous.owner,
                self.owner,
                failover["gap_seconds"],
            )
        store.extra = {"leader_since": now, "last_failover": failover}

    async def _housekeeping_loop(self) -> None:
        assert self.feed is not None
        loop = asyncio.get_running_loop()
        next_status = next_pins = loop.time()
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            self.feed.reconcile()
            await self._forget_expired_hubs()
            now = loop.time()
            if now >= next_status:
                await self.feed.publish_status()
                next_status = now + settings.REALTIME_STATUS_INTERVAL
            if now >= next_pins:
                await self._reload_pins()
                if self.alerts is not None:
                    await self.alerts.reload()
                next_pins = now + PIN_RELOAD_INTERVAL

    async def _renew_loop(self) -> None:
        interval = settings.REALTIME_FEED_LOCK_TTL / 3
        while True:
            await asyncio.sleep(interval)
            if not await self.lock.renew():
                return  # lost: _lead returns and the feed stops at once

    async def _reload_pins(self) -> None:
        if self.feed is None:
            return
        try:
            pins = await database_sync_to_async(pinned_symbols)()
        except Exception as exc:  # database unavailable: keep the pins we have
            logger.warning("event=pins_reload_failed error=%r", exc)
            return
        self.feed.set_pins(list(settings.REALTIME_DEFAULT_SYMBOLS) + pins)


async def run_until_signalled(runner: FeedRunner | None = None) -> None:
    """Run the feed host until SIGTERM or SIGINT, then stop it cleanly: the FMP
    socket closes with a close frame and the lock is released and announced, so
    a standby takes over at once (systemd, supervisors, Docker and Kubernetes
    send SIGTERM)."""
    runner = runner or FeedRunner()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    run = asyncio.create_task(runner.run(), name="feed-runner")
    stopper = asyncio.create_task(stop.wait(), name="feed-signal")
    try:
        await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        if not run.done():
            logger.info(
                "event=feed_worker_stopping signal=%s owner=%s",
                received[0] if received else "-",
                runner.owner,
            )
            run.cancel()
        results = await asyncio.gather(run, return_exceptions=True)
    error = results[0]
    if isinstance(error, BaseException) and not isinstance(
        error, asyncio.CancelledError
    ):
        raise error
