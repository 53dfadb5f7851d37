"""FeedService: the one owner of the upstream subscription and of every tick.

Ticks arrive from ``FmpClient`` in order. Each is merged into the symbol's state,
written to the ``TickCache``, encoded once as the client ``price_update`` message,
handed to a ``Publisher`` (the local hub in embedded mode, the channel layer group
in scaled mode) and passed to the registered callbacks.

The upstream subscription is kept equal to (live leases ∪ pins), except that a
symbol nobody needs any more stays subscribed for a grace period, so clients that
flap do not churn the FMP connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils.module_loading import import_string

from realtime import metrics
from realtime.events import HUBS_GROUP, UpstreamStatusEvent
from realtime.feed.cache import TickCache
from realtime.feed.state import (
    PriceState,
    encode_price_update,
    encode_upstream_status,
    merge_tick,
    utc_now_iso,
)
from realtime.feed.status import FeedStatus, StatusStore
from realtime.groups import price_group
from realtime.upstream.protocol import Tick

logger = logging.getLogger(__name__)

TickCallback = Callable[[Tick, PriceState], Any]


class UpstreamClient(Protocol):
    """What the feed needs of ``FmpClient``."""

    state: str
    reconnect_attempts: int
    last_error: str | None
    last_heartbeat_at: float | None

    def set_symbols(self, symbols: Iterable[str]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Publisher(Protocol):
    def publish(self, symbol: str, text: str, tick_ts: int) -> None: ...
    def publish_upstream(self, status: str, text: str) -> None: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


class LocalPublisher:
    """Embedded mode: hand the update straight to this process's fan-out hub."""

    def publish(self, symbol: str, text: str, tick_ts: int) -> None:
        from realtime.fanout.hub import current_hub

        hub = current_hub()
        if hub is not None:
            hub.deliver(symbol, text, tick_ts)

    def publish_upstream(self, status: str, text: str) -> None:
        from realtime.fanout.hub import current_hub

        hub = current_hub()
        if hub is not None:
            hub.deliver_upstream(status, text)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class LayerPublisher:
    """Scaled mode: one ``group_send`` per update to the symbol's group.

    ``publish`` is called from the read loop and must not wait on Redis, so updates
    queue here in order. If Redis falls more than ``backlog_limit`` updates behind,
    the backlog is conflated to the latest update per symbol (each carries the full
    state): hubs then get fewer, newer updates instead of an unbounded queue.
    """

    def __init__(self, channel_layer: Any, backlog_limit: int = 10_000) -> None:
        self.channel_layer = channel_layer
        self.backlog_limit = backlog_limit
        self._queue: list[tuple[str, str, int]] = []
        self._upstream: UpstreamStatusEvent | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def publish(self, symbol: str, text: str, tick_ts: int) -> None:
        self._queue.append((symbol, text, tick_ts))
        if len(self._queue) > self.backlog_limit:
            latest = {item[0]: item for item in self._queue}
            logger.warning(
                "event=publish_backlog_conflated updates=%d kept=%d",
                len(self._queue),
                len(latest),
            )
            self._queue = list(latest.values())
        self._wakeup.set()

    def publish_upstream(self, status: str, text: str) -> None:
        self._upstream = {"type": "hub.upstream", "status": status, "text": text}
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-publisher")

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._queue = self._queue, []
            upstream, self._upstream = self._upstream, None
            if upstream is not None:
                try:
                    await self.channel_layer.group_send(HUBS_GROUP, upstream)
                except Exception as exc:
                    logger.warning("event=publish_upstream_failed error=%r", exc)
            for symbol, text, tick_ts in batch:
                event = {
                    "type": "price.update",
                    "symbol": symbol,
                    "text": text,
                    "tick_ts": tick_ts,
                }
                try:
                    await self.channel_layer.group_send(price_group(symbol), event)
                except Exception as exc:  # Redis restarting: drop, next tick re-sends
                    logger.warning(
                        "event=publish_failed symbol=%s error=%r", symbol, exc
                    )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass(slots=True)
class Lease:
    symbols: frozenset[str]
    clients: int
    expires_at: float


class FeedService:
    def __init__(
        self,
        *,
        client_factory: Callable[[Callable[[Tick], None]], UpstreamClient],
        cache: TickCache,
        publisher: Publisher,
        status_store: StatusStore,
        source: str,
        api_configured: bool,
        owner: str,
        grace: float = 30.0,
        callbacks: Iterable[str | TickCallback] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client_factory(self.on_tick)
        self.cache = cache
        self.publisher = publisher
        self.status_store = status_store
        self.source = source
        self.api_configured = api_configured
        self.owner = owner
        self.grace = grace
        self.clock = clock
        self.leases: dict[str, Lease] = {}
        self.pins: frozenset[str] = frozenset()
        self._states: dict[str, PriceState] = {}
        self._leaving: dict[str, float] = {}  # symbol -> time it may be dropped
        self._upstream: frozenset[str] = frozenset()
        self._callbacks: list[TickCallback] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self.running = False
        self.ticks_received = 0
        self.last_tick_at: float | None = None
        for cb in callbacks:
            self.register_callback(cb)

    # --- callbacks -----------------------------------------------------------------
    def register_callback(self, callback: str | TickCallback) -> None:
        """Add an in-process hook called with (tick, merged state) for every tick.

        A dotted path is imported. Sync callbacks run inline, async ones as tasks;
        a failing callback is logged and never stops the feed.
        """
        fn = import_string(callback) if isinstance(callback, str) else callback
        self._callbacks.append(fn)

    @property
    def callbacks_registered(self) -> int:
        return len(self._callbacks)

    # --- tick path -----------------------------------------------------------------
    def on_tick(self, tick: Tick) -> None:
        if tick.symbol not in self._upstream:
            return  # a late tick for a symbol already dropped upstream
        state = merge_tick(self._states.get(tick.symbol), tick, utc_now_iso())
        self._states[tick.symbol] = state
        self.cache.put(state)
        self.publisher.publish(tick.symbol, encode_price_update(state), tick.timestamp)
        self.ticks_received += 1
        self.last_tick_at = time.time()
        metrics.TICKS_RECEIVED.labels(tick.kind).inc()
        for callback in self._callbacks:
            self._run_callback(callback, tick, state)

    def _run_callback(self, callback: TickCallback, tick: Tick, state: PriceState):
        try:
            result = callback(tick, state)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._await_callback(callback, result))
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
        except Exception:
            logger.exception(
                "event=callback_failed callback=%r symbol=%s", callback, tick.symbol
            )

    async def _await_callback(self, callback: TickCallback, result: Awaitable[Any]):
        try:
            await result
        except Exception:
            logger.exception("event=callback_failed callback=%r", callback)

    # --- subscription bookkeeping ---------------------------------------------------
    def apply_lease(
        self, owner: str, symbols: Iterable[str], clients: int, ttl: float
    ) -> None:
        self.leases[owner] = Lease(frozenset(symbols), clients, self.clock() + ttl)
        self.reconcile()

    def release(self, owner: str) -> None:
        self.leases.pop(owner, None)
        self.reconcile()

    def set_pins(self, symbols: Iterable[str]) -> None:
        self.pins = frozenset(symbols)
        self.reconcile()

    @property
    def desired(self) -> frozenset[str]:
        needed = set(self.pins)
        for lease in self.leases.values():
            needed |= lease.symbols
        return frozenset(needed)

    @property
    def total_clients(self) -> int:
        return sum(lease.clients for lease in self.leases.values())

    def reconcile(self) -> None:
        """Expire leases, start grace periods, and push the result upstream."""
        now = self.clock()
        for owner in [o for o, lease in self.leases.items() if lease.expires_at < now]:
            logger.info("event=lease_expired owner=%s", owner)
            del self.leases[owner]
        desired = self.desired
        for symbol in self._upstream - desired:
            self._leaving.setdefault(symbol, now + self.grace)
        for symbol in list(self._leaving):
            if symbol in desired or self._leaving[symbol] <= now:
                del self._leaving[symbol]
        upstream = desired | frozenset(self._leaving)
        if upstream != self._upstream:
            added, removed = upstream - self._upstream, self._upstream - upstream
            logger.info(
                "event=upstream_set_changed added=%s removed=%s total=%d",
                ",".join(sorted(added)) or "-",
                ",".join(sorted(removed)) or "-",
                len(upstream),
            )
            self._upstream = upstream
            self.client.set_symbols(upstream)

    @property
    def upstream_symbols(self) -> frozenset[str]:
        return self._upstream

    # --- lifecycle and status -------------------------------------------------------
    async def start(self) -> None:
        self.running = True
        await self.cache.start()
        await self.publisher.start()
        await self.client.start()
        logger.info("event=feed_started source=%s owner=%s", self.source, self.owner)

    async def stop(self) -> None:
        self.running = False
        await self.client.stop()
        await self.publisher.aclose()
        await self.cache.aclose()
        for task in list(self._callback_tasks):
            task.cancel()
        await asyncio.gather(*self._callback_tasks, return_exceptions=True)
        await self.publish_status()
        logger.info("event=feed_stopped owner=%s", self.owner)

    def announce_upstream(self, state: str) -> None:
        """Tell every client the upstream state changed (``upstream_status``)."""
        self.publisher.publish_upstream(state, encode_upstream_status(state))

    def status(self) -> FeedStatus:
        state = self.client.state if self.running else "stopped"
        return FeedStatus(
            state=state,
            source=self.source,
            is_running=self.running,
            api_configured=self.api_configured,
            subscribed_symbols=sorted(self._upstream),
            reconnect_attempts=self.client.reconnect_attempts,
            callbacks_registered=self.callbacks_registered,
            total_clients=self.total_clients,
            last_error=self.client.last_error,
            last_tick_at=self.last_tick_at,
            heartbeat_at=self.client.last_heartbeat_at,
            ticks_received=self.ticks_received,
            owner=self.owner,
            updated_at=time.time(),
        )

    async def publish_status(self) -> None:
        status = self.status()
        for name in ("connecting", "connected", "reconnecting", "disconnected"):
            metrics.UPSTREAM_STATE.labels(name).set(1 if status.state == name else 0)
        metrics.CACHE_SYMBOLS.set(len(self._states))
        try:
            await self.status_store.publish(status)
        except Exception as exc:
            logger.warning("event=status_publish_failed error=%r", exc)
