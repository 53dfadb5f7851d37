"""Per-connection limits of docs/protocol.md: message size, message rate, flooding."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from realtime.fanout.closecodes import CLOSE_FLOODING
from realtime.ratelimit import TokenBucket

if TYPE_CHECKING:
    from realtime.fanout.outbox import Outbox

logger = logging.getLogger(__name__)


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


async def close_flooding(outbox: Outbox, limiter: RateLimiter) -> None:
    """Close a flooding client with 4008, once, so that it reads why.

    One log line per connection: everything the client sends after this is
    dropped unread (``Outbox.prepare_server_close``; the consumer drops what
    daphne had already queued), and the close frame waits behind at most what
    was already sent, for ``REALTIME_CLOSE_GRACE`` s instead of autobahn's 1 s.
    """
    outbox.prepare_server_close(settings.REALTIME_CLOSE_GRACE, drop_unsent=False)
    logger.warning(
        "event=ws_flood_closed conn=%s code=%d refused=%d",
        outbox.conn_id,
        CLOSE_FLOODING,
        limiter.violations,
    )
    await outbox.close_with(CLOSE_FLOODING)
