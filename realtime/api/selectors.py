"""Read side of the REST API: health and freshness rules, status, the cache.

The feed may run in another process (scaled mode), so these read the status it
publishes (realtime/feed/status.py) and the shared tick cache
(realtime/feed/cache.py), never the feed. Store errors (realtime/stores.py) rise
to the caller, where ``api_exception_handler`` makes them a 503; only
``feed_health`` catches them, because a health probe must answer its documented
body whatever is down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rest_framework import status as http

from realtime.backends import backends
from realtime.fanout import health
from realtime.feed.state import to_cache_entry, utc_now_iso
from realtime.feed.status import FeedStatus
from realtime.stores import STORE_ERRORS

logger = logging.getLogger(__name__)

NEVER_REPORTED = "The feed has not reported its status yet"


@dataclass(frozen=True, slots=True)
class Health:
    """docs/protocol.md's health body and the HTTP status a probe gets with it."""

    body: dict[str, Any]
    status_code: int

    @property
    def healthy(self) -> bool:
        return self.status_code == http.HTTP_200_OK


# What /status repeats of /health: who leads the feed, what keeps FMP from serving.
UPSTREAM_DIAGNOSTICS = (
    "leader",
    "last_failover",
    "upstream_problem",
    "refused_symbols",
    "refused_streams",
    "unservable_symbols",
)


def _health_body(
    feed: FeedStatus | None, cached_symbols: list[str]
) -> tuple[dict[str, Any], bool]:
    """The body and whether the feed counts as running (fresh and running)."""
    if feed is None:
        return {
            "status": "stopped",
            "is_running": False,
            "api_configured": False,
            "subscribed_symbols": [],
            "cached_symbols": cached_symbols,
            "callbacks_registered": 0,
            "reconnect_attempts": 0,
            "source": None,
            "last_error": NEVER_REPORTED,
            "total_clients": 0,
            "last_tick_at": None,
            "heartbeat_at": None,
            "stale": True,
            "updated_at": None,
            "leader": None,
            "last_failover": None,
            "upstream_problem": None,
            "refused_symbols": {},
            "refused_streams": {},
            "unservable_symbols": {},
        }, False
    fresh = feed.is_fresh()
    running = feed.is_running and fresh
    return {
        # A feed that stopped reporting is not running, whatever it last said.
        "status": feed.state if fresh else "stopped",
        "is_running": running,
        "api_configured": feed.api_configured,
        "subscribed_symbols": list(feed.subscribed_symbols),
        "cached_symbols": cached_symbols,
        "callbacks_registered": feed.callbacks_registered,
        "reconnect_attempts": feed.reconnect_attempts,
        "source": feed.source,
        "last_error": feed.last_error,
        "total_clients": feed.total_clients,
        "last_tick_at": feed.last_tick_at,
        "heartbeat_at": feed.heartbeat_at,
        # Stale: older than the leader lock's TTL in scaled mode (a dead feed
        # worker), REALTIME_STATUS_STALE_AFTER in embedded mode.
        "stale": not fresh,
        "updated_at": feed.updated_at,
        "leader": feed.owner or None,
        "last_failover": feed.last_failover,
        # What keeps the upstream from serving, in an operator's words (a slot
        # held by another session, a refused login or stream, TLS trust...).
        "upstream_problem": feed.upstream_problem,
        "refused_symbols": dict(feed.refused_symbols),
        "refused_streams": dict(feed.refused_streams),
        "unservable_symbols": dict(feed.unservable_symbols),
    }, running


def fanout_failure() -> str | None:
    """Why this process's fan-out stopped delivering, or None while it works: a
    hub task that died marks the process unhealthy (realtime/fanout/health.py)."""
    reason = health.fanout_failure()
    return str(reason) if reason else None


def feed_health() -> Health:
    """200 while the feed runs and reports fresh status and this process's
    fan-out works; 503 otherwise, with the same body shape either way."""
    try:
        feed = backends().status.read()
        cached = backends().cache.symbols()
    except STORE_ERRORS as exc:
        logger.warning("event=health_store_failed error=%r", exc)
        body, _ = _health_body(None, [])
        body["last_error"] = f"Status store unavailable: {exc}"
        return Health(body, http.HTTP_503_SERVICE_UNAVAILABLE)
    body, running = _health_body(feed, cached)
    healthy = running
    failure = fanout_failure()
    if failure is not None:
        body["fanout_error"] = failure
        healthy = False
    return Health(
        body, http.HTTP_200_OK if healthy else http.HTTP_503_SERVICE_UNAVAILABLE
    )


def feed_status() -> dict[str, Any]:
    """docs/protocol.md's ``GET /status`` body (store errors rise: a 503)."""
    cached = backends().cache.symbols()
    body, running = _health_body(backends().status.read(), cached)
    return {
        "timestamp": utc_now_iso(),
        "connection_status": {
            "is_connected": running and body["status"] == "connected",
            "is_running": running,
            "subscribed_symbols": body["subscribed_symbols"],
            "total_clients": body["total_clients"],
            "status": body["status"],
            **{key: body[key] for key in UPSTREAM_DIAGNOSTICS},
        },
        "cached_data": {"count": len(cached), "symbols": cached},
    }


def cache_page(limit: int) -> dict[str, Any]:
    """``GET /cache``: the first ``limit`` cached symbols in alphabetical order."""
    cache = backends().cache
    total = len(cache.symbols())
    data = cache.entries(limit)
    return {"total": total, "returned": len(data), "limit": limit, "data": data}


def cache_entry(symbol: str) -> dict[str, Any] | None:
    """``GET /cache/<symbol>`` for a canonical symbol, or None if not cached."""
    state = backends().cache.get(symbol)
    if state is None:
        return None
    return {"symbol": symbol, "data": to_cache_entry(state)}
