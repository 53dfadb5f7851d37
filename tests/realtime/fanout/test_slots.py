"""RedisSlots under a connect storm: the cap holds exactly, in few round trips."""

from __future__ import annotations

import asyncio

import pytest
import redis

from realtime.fanout.slots import RedisSlots

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def clean_prefix(redis_prefix):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield redis_prefix
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


@pytest.mark.redis
async def test_concurrent_acquires_share_pipelines_and_the_cap_holds(
    clean_prefix, settings
):
    settings.REALTIME_REDIS_POOL_SIZE = 2
    slots = RedisSlots(REDIS_URL, clean_prefix, "web-1", ttl=30.0)
    taken = await asyncio.gather(
        *(slots.acquire("user:1", f"ws-{i}", 10) for i in range(200)),
        *(slots.acquire("user:2", f"ws-{i}", 300) for i in range(200)),
    )
    assert sum(taken[:200]) == 10  # the cap, exactly, under concurrency
    assert all(taken[200:])
    assert slots._acquires.rounds <= 2  # one pipeline, not 400 scripts
    key = slots.key("user:1")
    assert redis.Redis.from_url(REDIS_URL).zcard(key) == 10
    released = [
        slots.release("user:1", f"ws-{i}") for i, ok in enumerate(taken[:200]) if ok
    ]
    await asyncio.gather(*released)
    assert redis.Redis.from_url(REDIS_URL).zcard(key) == 0
    assert await slots.acquire("user:1", "ws-again", 10)
    await slots.release_all()
