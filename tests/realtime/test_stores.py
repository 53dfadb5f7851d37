"""The shared stores' Redis clients: a bounded pool, whatever the concurrency."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from realtime.stores import async_redis

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def connections_named(name: str) -> int:
    clients = redis.Redis.from_url(REDIS_URL).client_list()
    return sum(1 for c in clients if c.get("name") == name)


async def test_many_concurrent_commands_share_a_bounded_pool(settings):
    """1,000 clients subscribing at once made one Redis connection each (~950 in
    the benchmark); the pool caps them and the rest wait their turn."""
    settings.REALTIME_REDIS_POOL_SIZE = 3
    name = f"fmpsite-test-{uuid.uuid4().hex[:8]}"
    client = async_redis(REDIS_URL, client_name=name)
    try:
        answers = await asyncio.gather(*(client.ping() for _ in range(200)))
        assert all(answers)
        assert 1 <= connections_named(name) <= 3
    finally:
        await client.aclose()
    assert connections_named(name) == 0  # closing the client closes its pool
