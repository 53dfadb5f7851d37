"""The process's backends, chosen once from the settings.

fmpsite runs in one of two modes (docs/architecture.md): **embedded** (one
process; the cache, history, status and connection slots live in it and the feed
hands updates to this process's hub) or **scaled** (web processes and feed
workers; all of it in Redis and the channel layer). ``Backends.from_settings`` is
the one place that decides which, from ``REALTIME_MODE`` (derived from
``REDIS_URL`` in fmpsite/settings/base.py), and every store the product uses
comes from the process's one ``Backends``: nothing else asks the mode or makes a
store of its own. It is built on first use and forgotten when a setting it reads
changes (tests), as channels' ``ChannelLayerManager`` does for layers.

This module is wiring, above the stages of the data path: it builds feed objects
and fan-out objects. They are imported inside the functions that build them, so
any stage may ask ``backends()`` without an import circle, and importing the
feed never loads the fan-out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from realtime.events import Update

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from realtime.alerts.engine import AlertEngine
    from realtime.bars.feed import BarFeed
    from realtime.fanout.slots import ConnectionSlots
    from realtime.feed.broker import Broker
    from realtime.feed.cache import TickCache
    from realtime.feed.history import History
    from realtime.feed.lock import Fence, LeaderLock
    from realtime.feed.status import StatusStore
    from realtime.reference.service import ReferenceService

EMBEDDED = "embedded"
SCALED = "scaled"
MODES = (EMBEDDED, SCALED)

# The settings a ``Backends`` is built from: changing one forgets it.
_READS = frozenset(
    {
        "REALTIME_MODE",
        "REDIS_URL",
        "REALTIME_CACHE_PREFIX",
        "REALTIME_HISTORY_SIZE",
        "REALTIME_HISTORY_SECONDS",
        "REALTIME_BAR_INTERVALS",
        "REALTIME_BAR_RETENTION_BARS",
        "REALTIME_BAR_RETENTION_SECONDS",
        "REALTIME_BAR_CLOSE_DELAY",
        "REALTIME_FEED_LOCK_TTL",
        "REALTIME_STATUS_STALE_AFTER",
        "FMP_REST_TIMEOUT",
        "FMP_REST_BATCH",
        "FMP_REST_MAX_PER_MINUTE",
        "FMP_REST_BACKOFF",
        "FMP_REST_BACKOFF_CAP",
    }
)


class Backends:
    """What this process's mode uses, each made on first use and kept."""

    def __init__(
        self,
        *,
        mode: str,
        redis_url: str,
        prefix: str,
        history_size: int,
        history_seconds: float,
        lock_ttl: float,
    ) -> None:
        if mode not in MODES:
            raise ImproperlyConfigured(
                f"REALTIME_MODE must be one of {', '.join(MODES)}, got {mode!r}"
            )
        if mode == SCALED and not redis_url:
            raise ImproperlyConfigured("REALTIME_MODE=scaled needs REDIS_URL")
        self.mode = mode
        self.redis_url = redis_url
        self.prefix = prefix
        self.history_size = history_size
        self.history_seconds = history_seconds
        self.lock_ttl = lock_ttl

    @classmethod
    def from_settings(cls) -> Backends:
        """The one decision of the mode, from the settings."""
        return cls(
            mode=settings.REALTIME_MODE,
            redis_url=settings.REDIS_URL,
            prefix=settings.REALTIME_CACHE_PREFIX,
            history_size=settings.REALTIME_HISTORY_SIZE,
            history_seconds=settings.REALTIME_HISTORY_SECONDS,
            lock_ttl=settings.REALTIME_FEED_LOCK_TTL,
        )

    @property
    def scaled(self) -> bool:
        return self.mode == SCALED

    @cached_property
    def cache(self) -> TickCache:
        from realtime.feed.cache import InProcessTickCache, RedisTickCache

        if self.scaled:
            return RedisTickCache(self.redis_url, self.prefix)
        return InProcessTickCache()

    @cached_property
    def history(self) -> History:
        from realtime.feed.history import InMemoryHistory, RedisHistory

        if self.scaled:
            return RedisHistory(
                self.redis_url, self.prefix, self.history_size, self.history_seconds
            )
        return InMemoryHistory(self.history_size, self.history_seconds)

    @cached_property
    def status(self) -> StatusStore:
        from realtime.feed.status import StatusStore

        if not self.scaled:
            return StatusStore("", self.prefix)
        stale = min(settings.REALTIME_STATUS_STALE_AFTER, self.lock_ttl)
        return StatusStore(self.redis_url, self.prefix, stale_after=stale)

    @cached_property
    def reference(self) -> ReferenceService:
        """FMP's reference data, cached per trading day: in Redis in scaled mode
        (shared by the web processes), in the process otherwise."""
        from realtime.reference.cache import LocalReferenceCache, RedisReferenceCache
        from realtime.reference.service import ReferenceService

        cache = (
            RedisReferenceCache(self.redis_url, self.prefix)
            if self.scaled
            else LocalReferenceCache()
        )
        return ReferenceService(
            cache=cache,
            timeout=settings.FMP_REST_TIMEOUT,
            batch_size=settings.FMP_REST_BATCH,
            max_per_minute=settings.FMP_REST_MAX_PER_MINUTE,
            backoff=settings.FMP_REST_BACKOFF,
            backoff_cap=settings.FMP_REST_BACKOFF_CAP,
        )

    def broker(self, channel_layer: Any, fence: Fence | None = None) -> Broker:
        """A broker over the process's history, for one feed leadership: scaled,
        through the channel layer, its writes fenced by the leader lock's token;
        embedded, to this process's hub."""
        from realtime.feed.broker import InMemoryBroker, RedisBroker
        from realtime.feed.history import InMemoryHistory, RedisHistory

        history = self.history
        if isinstance(history, RedisHistory):
            from realtime.feed.publishers import LayerPublisher

            return RedisBroker(history, LayerPublisher(channel_layer), fence)
        assert isinstance(history, InMemoryHistory)
        return InMemoryBroker(history, CurrentHub())

    @cached_property
    def bar_intervals(self) -> dict[str, int]:
        """The bar intervals clients may ask for (``REALTIME_BAR_INTERVALS``),
        name -> milliseconds; a bad value stops the process at start."""
        from realtime.bars.keys import InvalidInterval, parse_intervals

        try:
            return parse_intervals(settings.REALTIME_BAR_INTERVALS)
        except InvalidInterval as exc:
            raise ImproperlyConfigured(f"REALTIME_BAR_INTERVALS: {exc}") from exc

    @cached_property
    def bar_history(self) -> History:
        """The bar streams' history (``AAPL@1m`` ...): the tick history's classes
        with the bars' own retention, under ``<prefix>:bars`` in Redis."""
        from realtime.feed.history import InMemoryHistory, RedisHistory

        size = settings.REALTIME_BAR_RETENTION_BARS
        seconds = settings.REALTIME_BAR_RETENTION_SECONDS
        if self.scaled:
            return RedisHistory(self.redis_url, f"{self.prefix}:bars", size, seconds)
        return InMemoryHistory(size, seconds)

    def bar_feed(
        self, channel_layer: Any, fence: Fence | None = None
    ) -> BarFeed | None:
        """The bars of one feed leadership: an aggregator publishing through a
        broker of its own over ``bar_history`` (None when no interval is set).
        Scaled: its writes fenced like the ticks', and it continues the previous
        leader's open bars from the tick history (realtime/bars/takeover.py)."""
        if not self.bar_intervals:
            return None
        from realtime.bars.feed import BarFeed
        from realtime.feed.broker import InMemoryBroker, RedisBroker
        from realtime.feed.history import InMemoryHistory, RedisHistory

        history = self.bar_history
        broker: Broker
        takeover = None
        if isinstance(history, RedisHistory):
            from realtime.bars.takeover import RedisTakeover
            from realtime.feed.publishers import LayerPublisher

            broker = RedisBroker(history, LayerPublisher(channel_layer), fence)
            ticks = self.history
            assert isinstance(ticks, RedisHistory)
            takeover = RedisTakeover(ticks, history)
        else:
            assert isinstance(history, InMemoryHistory)
            broker = InMemoryBroker(history, CurrentHub())
        return BarFeed(
            broker,
            self.bar_intervals,
            close_delay=settings.REALTIME_BAR_CLOSE_DELAY,
            takeover=takeover,
        )

    def alert_engine(
        self,
        channel_layer: Any,
        broker: Broker,
        on_symbols: Callable[[frozenset[str]], None],
    ) -> AlertEngine:
        """The price alerts of one feed leadership (realtime/alerts/engine.py):
        ``alert`` messages to this process's hub (embedded) or to every hub
        through the layer (scaled); previous closes from the reference data."""
        from realtime.alerts.engine import AlertEngine
        from realtime.alerts.routes import LayerAlertRoute
        from realtime.alerts.webhook import WebhookConfig

        reference = self.reference

        async def previous_closes(symbols: Any) -> dict[str, float]:
            found = await reference.get_references(symbols, wait=5.0)
            return {
                s: r.previous_close
                for s, r in found.items()
                if r.previous_close is not None
            }

        route = LayerAlertRoute(channel_layer) if self.scaled else CurrentHub()
        history_tail = None
        if self.scaled:
            # A takeover: what the killed leader recorded but may not have
            # evaluated (the same tail the broker re-publishes, broker.py).
            from realtime.feed.broker import REPLAY_TAIL

            async def history_tail() -> Any:
                return await broker.history.tail(REPLAY_TAIL)

        return AlertEngine(
            epoch=lambda: broker.epoch,
            route=route,
            webhook=WebhookConfig.from_settings(),
            previous_closes=previous_closes,
            on_symbols=on_symbols,
            history_tail=history_tail,
        )

    def leader_lock(self, owner: str) -> LeaderLock:
        """Who holds the FMP connection: a Redis lock in scaled mode (one feed
        leader among the workers), always this process in embedded mode."""
        from realtime.feed.lock import LocalLock, RedisLeaderLock

        if self.scaled:
            key = f"{self.prefix}:feed:leader"
            return RedisLeaderLock(self.redis_url, key, owner, self.lock_ttl)
        return LocalLock()

    def slots(self, owner: str, ttl: float) -> ConnectionSlots:
        """Per-user connection slots: shared in Redis across web processes in
        scaled mode, counted in the process in embedded mode."""
        from realtime.fanout.slots import LocalSlots, RedisSlots

        if self.scaled:
            return RedisSlots(self.redis_url, self.prefix, owner, ttl)
        return LocalSlots()


class CurrentHub:
    """Embedded mode's fan-out: the running event loop's hub, when it has one
    (the hub starts with the first client; before that an update has nobody to
    reach and is only recorded)."""

    def __init__(self, lookup: Callable[[], Any] | None = None) -> None:
        if lookup is None:
            from realtime.fanout.hubs import current_hub as lookup
        self._current_hub = lookup

    def deliver(self, update: Update) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver(update)

    def deliver_upstream(self, status: str, text: str) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver_upstream(status, text)

    def deliver_refused(self, symbols: Sequence[str], message: str) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver_refused(list(symbols), message)

    def deliver_alert(self, user: str, text: str) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver_alert(user, text)


_backends: Backends | None = None


def backends() -> Backends:
    """The process's backends (made from the settings on first use)."""
    global _backends
    if _backends is None:
        _backends = Backends.from_settings()
        logger.info(
            "event=backends_chosen mode=%s prefix=%s", _backends.mode, _backends.prefix
        )
    return _backends


def reset_backends(**kwargs: Any) -> None:
    """Forget the process's backends; the next ``backends()`` builds new ones."""
    global _backends
    if kwargs.get("setting") not in (None, *_READS):
        return
    _backends = None


setting_changed.connect(reset_backends)
