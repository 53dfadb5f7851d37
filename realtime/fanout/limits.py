"""Per-connection limits of PROTOCOL.md: message size, message rate, flooding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class RateLimiter:
    """Token bucket: ``rate`` messages/s sustained, ``burst`` at once.

    ``violations`` counts refused messages in the current one-second window; a
    client past ``flood_after`` of them in one window is flooding and is closed.
    """

    rate: float
    burst: int
    flood_after: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)
    window_start: float = field(init=False)
    violations: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.window_start = self.clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if now - self.window_start >= 1.0:
            self.window_start, self.violations = now, 0
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.violations += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.violations > self.flood_after
