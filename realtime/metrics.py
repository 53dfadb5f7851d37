"""Prometheus metrics of this process (see docs/metrics.md).

Counters are incremented once per tick or per fan-out batch, never per client, so
metrics stay off the per-client send path.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TICKS_RECEIVED = Counter(
    "fmpsite_ticks_received_total", "Upstream ticks received by the feed", ["kind"]
)
UPSTREAM_MALFORMED = Counter(
    "fmpsite_upstream_malformed_total", "Upstream frames that failed to parse"
)
MESSAGES_DELIVERED = Counter(
    "fmpsite_messages_delivered_total", "price_update messages sent to clients"
)
MESSAGES_CONFLATED = Counter(
    "fmpsite_messages_conflated_total",
    "price_update messages replaced by a newer one before a slow client read them",
)
CLIENTS = Gauge("fmpsite_ws_clients", "WebSocket clients connected to this process")
UPSTREAM_STATE = Gauge(
    "fmpsite_upstream_state", "1 for the feed's current upstream state", ["state"]
)
UPSTREAM_RECONNECTS = Counter(
    "fmpsite_upstream_reconnects_total",
    "Times the upstream connection was lost and the FMP client began reconnecting",
)
TICK_TO_SEND = Histogram(
    "fmpsite_tick_to_send_seconds",
    "Upstream tick timestamp to hand-off to the client socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CACHE_SYMBOLS = Gauge("fmpsite_cache_symbols", "Symbols in the tick cache")
