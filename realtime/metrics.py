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
WS_DROPPED_AFTER_CLOSE = Counter(
    "fmpsite_ws_messages_dropped_after_close_total",
    "Client messages received after the server decided to close the connection "
    "(4008 flooding, 4009 stalled): dropped unread and unlogged",
)
HTTP_REFUSED = Counter(
    "fmpsite_http_refused_total",
    "HTTP requests daphne answered itself before the application saw them: "
    "body_too_large (413) or header_timeout (408)",
    ["reason"],
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
LAYER_DROPPED = Counter(
    "fmpsite_layer_dropped_total",
    "Price updates the channel layer refused for a web process (channel full, "
    "Redis down); each affected symbol is re-sent to that process afterwards",
    ["reason"],
)
GAP_FILLS = Counter(
    "fmpsite_gap_fills_total",
    "Forward jumps in a symbol's seq a web process's hub saw (scaled mode): filled "
    "from the history, or left to the client (too_large, unavailable)",
    ["outcome"],
)
FEED_STALE = Gauge(
    "fmpsite_feed_stale",
    "1 while this web process sees the feed leader's status older than the lock TTL",
)


# Counters the feed counts in its own process. In scaled mode that is the feed
# worker: it publishes them in its status (realtime/feed/status.py) and each web
# process copies them into its own counters of the same names before /metrics
# renders (``adopt_feed_counters``), so a scrape of any web process shows them.
def _feed_counter_items() -> list[tuple[str, Counter, tuple[str, ...]]]:
    items: list[tuple[str, Counter, tuple[str, ...]]] = []
    for kind in ("T", "Q", "B"):
        items.append((f"ticks_received:{kind}", TICKS_RECEIVED, (kind,)))
    items.append(("upstream_malformed", UPSTREAM_MALFORMED, ()))
    items.append(("upstream_reconnects", UPSTREAM_RECONNECTS, ()))
    for reason in ("channel_full", "error"):
        items.append((f"layer_dropped:{reason}", LAYER_DROPPED, (reason,)))
    return items


def _value(counter: Counter, labels: tuple[str, ...]) -> float:
    child = counter.labels(*labels) if labels else counter
    return float(child._value.get())


def feed_counters() -> dict[str, float]:
    """This process's feed-side counter values, by a stable key (for its status)."""
    return {
        key: _value(counter, labels) for key, counter, labels in _feed_counter_items()
    }


def adopt_feed_counters(values: dict[str, float]) -> None:
    """A web process in scaled mode: show the feed worker's counters as ours.

    The web process never reads upstream, so its own copies of these counters
    would stay 0; the worker's values (monotonic while one leader runs) replace
    them. Keys this version does not know are ignored.
    """
    for key, counter, labels in _feed_counter_items():
        value = values.get(key)
        if value is None:
            continue
        child = counter.labels(*labels) if labels else counter
        child._value.set(float(value))
