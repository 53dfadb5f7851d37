"""Per-connection limits of docs/protocol.md: message size, message rate, flooding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.ratelimit import TokenBucket


@dataclass(slots=True)
class RateLimiter:
    """A client's message rate: a token bucket (``rate`` messages/s sustained,
    ``burst`` at once) plus flood detection.

    ``violations`` counts refused messages in the current one-second window; a
    client past ``flood_after`` of them in one window is flooding and is closed.
    """

    rate: float
    burst: int
    flood_after: int
    clock: Callable[[], float] = time.monotonic
    bucket: TokenBucket = field(init=False)
    window_start: float = field(init=False)
    violations: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.rate, self.burst, self.clock)
        self.window_start = self.bucket.updated

    def allow(self) -> bool:
        allowed = self.bucket.take()
        now = self.bucket.updated
        if now - self.window_start >= 1.0:
            self.window_start, self.violations = now, 0
        if allowed:
            return True
        self.violations += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.violations > self.flood_after
