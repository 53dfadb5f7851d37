"""``GET /metrics``: this process's Prometheus metrics plus the feed's status.

Counters and histograms in realtime/metrics.py count what happens in this process.
The feed may run elsewhere (scaled mode), so what it reports about itself is read
from its published status at scrape time by ``FeedStatusCollector``, and the
process-local gauges it would set (cache size, upstream state) are refreshed from
the shared cache and status before rendering. See docs/metrics.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from realtime import metrics
from realtime.backends import backends
from realtime.events import UPSTREAM_STATES
from realtime.feed.status import FeedStatus
from realtime.selectors import pinned_symbols
from realtime.stores import STORE_ERRORS

logger = logging.getLogger(__name__)


def _read_status() -> FeedStatus | None:
    try:
        return backends().status.read()
    except STORE_ERRORS as exc:
        logger.warning("event=metrics_status_failed error=%r", exc)
        return None


class FeedStatusCollector(Collector):
    """Metrics derived from the feed's published status, computed per scrape."""

    def describe(self) -> Iterator[Metric]:
        # Described without samples so registering never reads the status store.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        feed = _read_status()
        families = self._families()
        up, age, subscribed, clients, attempts, callbacks, ticks, pins = families
        fresh = feed is not None and feed.is_fresh()
        up.add_metric([], 1 if fresh and feed.is_running else 0)
        if feed is not None:
            age.add_metric([], max(0.0, time.time() - feed.updated_at))
            subscribed.add_metric([], len(feed.subscribed_symbols))
            clients.add_metric([], feed.total_clients)
            attempts.add_metric([], feed.reconnect_attempts)
            callbacks.add_metric([], feed.callbacks_registered)
            ticks.add_metric([], feed.ticks_received)
        try:
            pins.add_metric([], len(pinned_symbols()))
        except DatabaseError as exc:
            logger.warning("event=metrics_pins_failed error=%r", exc)
        yield from families

    @staticmethod
    def _families() -> list[Metric]:
        return [
            GaugeMetricFamily(
                "fmpsite_feed_up",
                "1 while the feed reports fresh status and is running, else 0",
            ),
            GaugeMetricFamily(
                "fmpsite_feed_status_age_seconds",
                "Seconds since the feed last published its status",
            ),
            GaugeMetricFamily(
                "fmpsite_feed_subscribed_symbols",
                "Symbols the feed is subscribed to upstream",
            ),
            GaugeMetricFamily(
                "fmpsite_feed_clients",
                "WebSocket clients across all web processes, as the feed counts them",
            ),
            GaugeMetricFamily(
                "fmpsite_feed_reconnect_attempts",
                "Consecutive upstream reconnect attempts (0 once connected)",
            ),
            GaugeMetricFamily(
                "fmpsite_feed_callbacks_registered",
                "Tick callbacks registered in the feed",
            ),
            CounterMetricFamily(
                "fmpsite_feed_ticks_received",
                "Upstream ticks the feed has received since it started",
            ),
            GaugeMetricFamily(
                "fmpsite_pinned_symbols", "Server-side pinned subscriptions"
            ),
        ]


FEED_STATUS_COLLECTOR = FeedStatusCollector()
REGISTRY.register(FEED_STATUS_COLLECTOR)


def _refresh_process_gauges() -> None:
    """Set the gauges the feed sets in its own process from the shared stores."""
    feed = _read_status()
    state = feed.state if feed is not None and feed.is_fresh() else "stopped"
    if feed is not None and feed.is_fresh() and backends().scaled:
        # The worker's own counters (ticks, reconnects, malformed frames), also on
        # a web process with no WebSocket client whose hub would copy them.
        metrics.adopt_feed_counters(feed.counters)
    for name in UPSTREAM_STATES:
        metrics.UPSTREAM_STATE.labels(name).set(1 if name == state else 0)
    try:
        metrics.CACHE_SYMBOLS.set(len(backends().cache.symbols()))
    except STORE_ERRORS as exc:
        logger.warning("event=metrics_cache_failed error=%r", exc)


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    _refresh_process_gauges()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
