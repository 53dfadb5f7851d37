"""``TokenBucket``: the house's one rate limiter.

A client's messages (realtime/fanout/limits.py) and the reference service's FMP
REST requests (realtime/reference/service.py) are both capped by a bucket that
holds at most ``capacity`` tokens, starts full, refills at ``rate`` tokens per
second and spends one per allowed action: bursts up to ``capacity`` pass, the
sustained rate is ``rate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` actions per second sustained, ``capacity`` at once."""

    rate: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)
        self.updated = self.clock()

    def take(self) -> bool:
        """Spend one token if there is one (True), else refuse (False)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
