"""The channel layer sharded over two Redis masters (issue 23).

``REALTIME_CHANNEL_REDIS_URL`` lists two real ``redis-server`` processes (the
shared one and a private one on a free port); channels-redis hashes each group
and channel to one of them (a CRC-12 split into equal ranges,
channels_redis/utils.py ``_consistent_hash``). Symbols are picked so their
groups land on both shards; every client of both web processes must get them all.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest
import redis
from channels_redis.utils import _consistent_hash

from realtime.groups import price_group
from tests.live import free_port, start_scaled, stop_scaled, wait_until
from tests.realtime.sentinels import REDIS_SERVER
from tests.realtime.wsclient import next_update, open_client, subscribe

pytestmark = pytest.mark.redis


@pytest.fixture
def second_redis():
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), 60, f"redis on {port}")
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.RedisError:
        return False


def symbols_on(shard: int, count: int) -> list[str]:
    """``count`` symbols whose price groups hash to ``shard`` of two."""
    found = []
    for n in range(1000):
        symbol = f"SH{n}"
        if _consistent_hash(price_group(symbol), 2) == shard:
            found.append(symbol)
        if len(found) == count:
            return found
    raise AssertionError("no symbols found for the shard")


@pytest.fixture
def sharded(migrated_postgres, redis_prefix, second_redis, request):
    urls = f"redis://127.0.0.1:6379/0,redis://127.0.0.1:{second_redis}/0"
    stack = start_scaled(
        migrated_postgres, redis_prefix, REALTIME_CHANNEL_REDIS_URL=urls
    )
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


async def test_every_symbol_reaches_every_subscriber_across_two_shards(
    sharded, second_redis, redis_prefix
):
    wanted = symbols_on(0, 2) + symbols_on(1, 2)
    clients = [await open_client(port) for port in sharded["ports"]]
    for ws in clients:
        await subscribe(ws, wanted)
    for ws in clients:
        for symbol in wanted:
            update = await next_update(ws, symbol, 60)
            assert update["symbol"] == symbol
    # Both shards carry groups of the layer: the split is real.
    for port in (6379, second_redis):
        keys = redis.Redis(port=port).keys(f"{redis_prefix}:group:*")
        assert keys, f"no group of the layer on the Redis at {port}"
    await asyncio.gather(*(ws.close() for ws in clients))
