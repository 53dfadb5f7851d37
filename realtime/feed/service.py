"""FeedService: the one owner of the upstream subscription and of every tick.

Ticks arrive from ``FmpClient`` (built here from one ``FmpConfig``) in order. Each
is numbered by the ``Broker`` (``seq``, per symbol), merged into the symbol's
previous state (read back from the ``TickCache``, the one copy of the latest
state in this process), written to the cache, encoded once as the client
``price_update`` message and published through the broker, which records it in
the history before any hub sees it (realtime/feed/broker.py); then it is passed
to the registered callbacks. Upstream state changes and refusals go through the
broker too.

The upstream subscription is kept equal to (live leases ∪ pins ∪ symbols with an
active price alert), except that a
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
from typing import Any

from django.utils.module_loading import import_string

from realtime import metrics
from realtime.bars.keys import base_symbol
from realtime.events import UPSTREAM_STATES, Update, UpstreamState
from realtime.feed.broker import Broker
from realtime.feed.cache import TickCache
from realtime.feed.state import (
    PriceState,
    encode_price_update,
    encode_upstream_status,
    merge_tick,
    utc_now_iso,
)
from realtime.feed.status import FeedStatus, StatusStore
from realtime.upstream.client import FmpClient
from realtime.upstream.config import FmpConfig
from realtime.upstream.protocol import ParseError, Tick

logger = logging.getLogger(__name__)

TickCallback = Callable[[Tick, PriceState], Any]


@dataclass(slots=True)
class Lease:
    symbols: frozenset[str]
    clients: int
    expires_at: float


class FeedService:
    def __init__(
        self,
        *,
        upstream: FmpConfig,
        cache: TickCache,
        broker: Broker,
        status_store: StatusStore,
        source: str,
        api_configured: bool,
        owner: str,
        grace: float = 30.0,
        cache_max_symbols: int = 10_000,
        callbacks: Iterable[str | TickCallback] = (),
        clock: Callable[[], float] = time.monotonic,
        asset_class: Callable[[str], str | None] | None = None,
    ) -> None:
        """``asset_class`` (symbol -> ``stocks``/``crypto``/``forex``/None) lets
        reference data replace the client's guess by symbol shape. ``broker``
        numbers, records and publishes every update (realtime/feed/broker.py)."""
        self.client = FmpClient(
            upstream,
            on_tick=self.on_tick,
            on_state_change=self._on_state_change,
            on_event=self._on_upstream_event,
            on_refused=self._on_refused,
            **({"asset_class": asset_class} if asset_class is not None else {}),
        )
        self.cache = cache
        self.broker = broker
        self.status_store = status_store
        self.source = source
        self.api_configured = api_configured
        self.owner = owner
        self.grace = grace
        self.cache_max_symbols = cache_max_symbols
        self.clock = clock
        self.leases: dict[str, Lease] = {}
        self.pins: frozenset[str] = frozenset()
        # Symbols with an active price alert (realtime/alerts/engine.py).
        self.alert_symbols: frozenset[str] = frozenset()
        self._leaving: dict[str, float] = {}  # symbol -> time it may be dropped
        self._upstream: frozenset[str] = frozenset()
        self._callbacks: list[TickCallback] = []
        self._sync_callbacks: list[TickCallback] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._status_tasks: set[asyncio.Task[Any]] = set()
        self._over_limit_warned = False
        self.running = False
        self.ticks_received = 0
        self.last_tick_at: float | None = None
        for cb in callbacks:
            self.register_callback(cb)

    # --- callbacks -----------------------------------------------------------------
    def register_callback(
        self, callback: str | TickCallback, *, sync: bool = False
    ) -> None:
        """Add an in-process hook called with (tick, merged state) for every tick.

        A dotted path is imported. Sync callbacks run inline, async ones as tasks;
        a failing callback is logged and never stops the feed. ``sync=True``
        promises the callback never returns an awaitable: it is called without
        the awaitable check, which is a measurable share of a cheap callback's
        cost per tick (the bar aggregator's buffer and the alert engine:
        bench/bars_micro.py, bench/alerts_micro.py).
        """
        fn = import_string(callback) if isinstance(callback, str) else callback
        (self._sync_callbacks if sync else self._callbacks).append(fn)

    @property
    def callbacks_registered(self) -> int:
        return len(self._callbacks) + len(self._sync_callbacks)

    # --- tick path -----------------------------------------------------------------
    def on_tick(self, tick: Tick) -> None:
        if tick.symbol not in self._upstream:
            return  # a late tick for a symbol already dropped upstream
        symbol = tick.symbol
        broker = self.broker
        seq = broker.next_seq(symbol)
        state = merge_tick(self.cache.latest(symbol), tick, utc_now_iso(), seq)
        self.cache.put(state)
        text = encode_price_update(state)  # the one encode, seq included
        broker.publish(Update(symbol, seq, broker.epoch, text, tick.timestamp))
        self.ticks_received += 1
        self.last_tick_at = time.time()
        metrics.TICKS_RECEIVED.labels(tick.kind).inc()
        for callback in self._sync_callbacks:
            try:
                callback(tick, state)
            except Exception:
                logger.exception(
                    "event=callback_failed callback=%r symbol=%s", callback, symbol
                )
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
        # A hub's bar streams (``AAPL@1m``) need their symbol from upstream.
        needed = frozenset(base_symbol(s) for s in symbols)
        self.leases[owner] = Lease(needed, clients, self.clock() + ttl)
        self.reconcile()

    def release(self, owner: str) -> None:
        self.leases.pop(owner, None)
        self.reconcile()

    def set_pins(self, symbols: Iterable[str]) -> None:
        self.pins = frozenset(symbols)
        self.reconcile()

    def set_alert_symbols(self, symbols: Iterable[str]) -> None:
        self.alert_symbols = frozenset(symbols)
        self.reconcile()

    @property
    def desired(self) -> frozenset[str]:
        needed = set(self.pins) | self.alert_symbols
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
        self._trim_cache()

    def _trim_cache(self) -> None:
        """Hold the cache at ``cache_max_symbols``; never evict a live symbol."""
        limit = self.cache_max_symbols
        if limit <= 0 or self.cache.local_count() <= limit:
            self._over_limit_warned = False
            return
        self.cache.trim(limit, self._upstream)
        over = self.cache.local_count() > limit
        if over and not self._over_limit_warned:
            logger.warning(
                "event=cache_over_limit symbols=%d limit=%d "
                "reason=every_cached_symbol_is_subscribed_upstream",
                self.cache.local_count(),
                limit,
            )
        self._over_limit_warned = over

    @property
    def upstream_symbols(self) -> frozenset[str]:
        return self._upstream

    # --- lifecycle and status -------------------------------------------------------
    async def start(self) -> None:
        self.running = True
        await self.cache.start()
        await self.broker.start()
        await self.client.start()
        logger.info("event=feed_started source=%s owner=%s", self.source, self.owner)

    async def stop(self) -> None:
        self.running = False
        await self.client.stop()
        await self.broker.aclose()  # its last batch is still published
        await self.cache.aclose()
        for task in [*self._callback_tasks, *self._status_tasks]:
            task.cancel()
        await asyncio.gather(
            *self._callback_tasks, *self._status_tasks, return_exceptions=True
        )
        await self.publish_status()
        logger.info("event=feed_stopped owner=%s", self.owner)

    # --- upstream events --------------------------------------------------------------
    def _on_state_change(self, state: str) -> None:
        """Tell every client (``upstream_status``) and refresh the published status."""
        state = str(state)  # a plain str on the channel layer, not the enum
        logger.info("event=upstream_state state=%s owner=%s", state, self.owner)
        if state == UpstreamState.RECONNECTING:
            metrics.UPSTREAM_RECONNECTS.inc()
        if state == UpstreamState.STOPPED:
            return  # stop() publishes the final status itself
        self.announce_upstream(state)
        self._publish_status_soon()

    def _on_refused(self, symbols: frozenset[str], message: str) -> None:
        """FMP refused symbols (or the cluster cannot serve them): clients of those
        symbols get an ``upstream_refused`` error through the hub."""
        self.broker.publish_refused(sorted(symbols), message)
        self._publish_status_soon()

    @staticmethod
    def _on_upstream_event(event: object) -> None:
        if isinstance(event, ParseError):
            metrics.UPSTREAM_MALFORMED.inc()

    def _publish_status_soon(self) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self.publish_status())
        except RuntimeError:
            return
        self._status_tasks.add(task)
        task.add_done_callback(self._status_tasks.discard)

    def announce_upstream(self, state: str) -> None:
        """Tell every client the upstream state changed (``upstream_status``)."""
        self.broker.publish_upstream(state, encode_upstream_status(state))

    def problem(self) -> str | None:
        """One operator-readable sentence per thing keeping prices from flowing."""
        client = self.client
        parts = [client.problem] if client.problem else []
        if client.refused_streams:
            streams = ", ".join(sorted(client.refused_streams))
            reason = "; ".join(sorted(set(client.refused_streams.values())))
            parts.append(
                f"FMP refused the stream(s) {streams} ({reason}): no prices arrive "
                "until FMP enables them for this plan."
            )
        refused = {s: m for s, m in client.refused.items() if s in self._upstream}
        if refused and not client.refused_streams:
            names = ", ".join(sorted(refused)[:10])
            more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
            reason = "; ".join(sorted(set(refused.values()))[:3])
            parts.append(f"FMP refused {names}{more} ({reason}).")
        if client.unservable:
            names = ", ".join(sorted(client.unservable)[:10])
            parts.append(
                f"The configured FMP socket cannot serve {names}: "
                f"{next(iter(client.unservable.values()))}."
            )
        return " ".join(parts) or None

    def status(self) -> FeedStatus:
        state = self.client.state if self.running else UpstreamState.STOPPED
        return FeedStatus(
            state=str(state),
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
            upstream_problem=self.problem(),
            refused_symbols=dict(sorted(self.client.refused.items())),
            refused_streams=dict(sorted(self.client.refused_streams.items())),
            unservable_symbols=dict(sorted(self.client.unservable.items())),
        )

    async def publish_status(self) -> None:
        status = self.status()
        for name in UPSTREAM_STATES:
            metrics.UPSTREAM_STATE.labels(name).set(1 if status.state == name else 0)
        metrics.CACHE_SYMBOLS.set(self.cache.local_count())
        try:
            await self.status_store.publish(status)
        except Exception as exc:
            logger.warning("event=status_publish_failed error=%r", exc)
