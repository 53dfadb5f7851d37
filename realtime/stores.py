"""What a failing shared store raises, defined once.

The tick cache and the feed status live in Redis in scaled mode (and in this
process otherwise). When Redis is down or unreachable, redis-py raises
``redis.RedisError`` (the asyncio client raises the same classes) and the socket
layer ``OSError``. Every caller that turns a store failure into a clear answer (a
503, a log line, a fallback) catches exactly this tuple, so a new error class is
added in one place.
"""

from __future__ import annotations

import redis

STORE_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
