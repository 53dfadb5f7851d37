"""Redis Sentinel under the product's stores and channel layer (issue 23).

Real processes on free loopback ports: one master, one replica and three
sentinels (``redis-server --sentinel``); a failover is a SIGKILL of the master
and a real promotion. The stores' clients and the channel layer are built from
one ``redis+sentinel://`` URL and must follow the new master without being
rebuilt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from realtime.redisurl import InvalidRedisUrl, channel_host, parse_sentinel
from realtime.stores import RedisClients
from tests.live import wait_until
from tests.realtime.sentinels import Group, start_group

pytestmark = [pytest.mark.redis, pytest.mark.live]


def test_sentinel_urls_parse_and_bad_ones_say_why():
    target = parse_sentinel(
        "redis+sentinel://:s3cret@h1:26380,h2,[::1]:26381/mymaster/3"
        "?sentinel_password=sp&socket_timeout=2"
    )
    assert target.sentinels == (("h1", 26380), ("h2", 26379), ("::1", 26381))
    assert target.master_name == "mymaster" and target.db == 3
    assert target.connection_kwargs() == {
        "db": 3,
        "socket_timeout": 2.0,
        "password": "s3cret",
    }
    assert target.sentinel_kwargs() == {"password": "sp", "socket_timeout": 2.0}
    assert parse_sentinel("rediss+sentinel://h1/m").ssl is True
    assert parse_sentinel("redis://127.0.0.1:6379/0") is None
    assert channel_host("redis://127.0.0.1:6379/0", socket_timeout=None) == {
        "address": "redis://127.0.0.1:6379/0",
        "socket_timeout": None,
    }
    for bad, why in [
        ("redis+sentinel:///m", "at least one sentinel"),
        ("redis+sentinel://h1:x/m", "port must be a number"),
        ("redis+sentinel://h1", "master name"),
        ("redis+sentinel://h1/m/zero", "must be a number"),
        ("redis+sentinel://h1/m?colour=red", "unknown option"),
    ]:
        with pytest.raises(InvalidRedisUrl, match=why):
            parse_sentinel(bad)


async def eventually(attempt, what: str, within: float = 60.0) -> None:
    """Retry the coroutine function ``attempt`` until it returns True."""
    deadline = asyncio.get_running_loop().time() + within
    while not await attempt():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
def sentinel_group(tmp_path) -> Iterator[Group]:
    group = start_group(tmp_path)
    try:
        yield group
    finally:
        group.stop()


async def test_stores_and_the_layer_follow_a_sentinel_failover(sentinel_group):
    group = sentinel_group
    clients = RedisClients(group.url, socket_timeout=2.0, socket_connect_timeout=2.0)
    layer = RedisChannelLayer(hosts=[channel_host(group.url)], prefix="sentinel-t")
    try:
        clients.sync.set("before", "1")
        await clients.aio.set("before-aio", "1")
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "x.y", "n": 1})
        assert (await layer.receive(channel))["n"] == 1
        # The replica has it before the master goes (replication is async).
        replica = redis.Redis(port=group.replica_port)
        wait_until(lambda: replica.get("before-aio") == b"1", 60, "replication")

        group.kill_master()
        await asyncio.to_thread(
            wait_until,
            lambda: group.master() == group.replica_port,
            60,
            "the replica promoted",
        )

        def sync_write() -> bool:
            try:
                return bool(clients.sync.set("after", "2"))
            except redis.RedisError:
                return False

        async def aio_write() -> bool:
            try:
                return bool(await clients.aio.set("after-aio", "2"))
            except redis.RedisError:
                return False

        await asyncio.to_thread(wait_until, sync_write, 60, "a sync write")
        await eventually(aio_write, "the asyncio client to reach the new master")
        # Same client objects, now talking to the promoted replica.
        assert replica.get("after") == b"2" and replica.get("after-aio") == b"2"
        assert clients.sync.get("before") == b"1"

        async def layer_round_trip() -> bool:
            try:
                fresh = await layer.new_channel()
                await layer.send(fresh, {"type": "x.y", "n": 2})
                return (await layer.receive(fresh))["n"] == 2
            except (redis.RedisError, OSError):
                return False

        await eventually(layer_round_trip, "the channel layer to reach the master")
    finally:
        await clients.aclose()
        try:
            await layer.flush()
        except redis.RedisError:
            pass  # no master left to flush: the failure above says why
