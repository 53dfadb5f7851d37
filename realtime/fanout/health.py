"""Whether this process's fan-out still delivers (for /health and the gauge).

A hub task that dies stops delivery to every client of the process while the
sockets stay open; the process must then be reported unhealthy and replaced.
The flag lives apart from the hub so /health reads it without loading the
WebSocket stack.
"""

from __future__ import annotations

from prometheus_client import Gauge

FANOUT_HEALTHY = Gauge(
    "fmpsite_fanout_healthy",
    "1 while every fan-out hub task of this process runs; 0 once one crashed",
)
FANOUT_HEALTHY.set(1)
_failure: str | None = None


def fanout_failure() -> str | None:
    """None while the fan-out is healthy; why not otherwise."""
    return _failure


def mark_failed(reason: str) -> None:
    """A hub task ended by itself: no more delivery in this process."""
    global _failure
    _failure = reason
    FANOUT_HEALTHY.set(0)
