"""realtime/layer_io.py against the installed channels-redis and the real Redis:
the canary for the internals it uses, and its interplay with the public API
(what one side sends, the other receives, in order)."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from realtime import layer_io

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def layer(redis_prefix):
    layer = RedisChannelLayer(
        hosts=[{"address": REDIS_URL, "socket_timeout": None}],
        prefix=redis_prefix,
        capacity=5,
        expiry=30,
    )
    layer.brpop_timeout = 1  # an empty receive returns within a second
    yield layer
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


def test_the_installed_channels_redis_has_everything_used():
    layer = RedisChannelLayer(hosts=[REDIS_URL])
    missing = [name for name in layer_io.REQUIRED if not hasattr(layer, name)]
    assert missing == []
    assert isinstance(layer_io.probe(layer), layer_io.RedisLayerIO)


def test_another_layer_gets_none_and_the_public_api(caplog, monkeypatch):
    assert layer_io.probe(InMemoryChannelLayer()) is None
    assert layer_io.probe(None) is None
    # A channels-redis that moved one of the names: None and a clear warning.
    layer = RedisChannelLayer(hosts=[REDIS_URL])
    monkeypatch.delattr(RedisChannelLayer, "_group_key")
    with caplog.at_level(logging.WARNING, logger="realtime.layer_io"):
        assert layer_io.probe(layer) is None
    assert "event=layer_io_unavailable" in caplog.text
    assert "missing=_group_key" in caplog.text


async def test_receive_many_takes_public_sends_in_order_in_one_call(layer):
    io = layer_io.probe(layer)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    for i in range(3):
        await layer.send(channel, {"type": "t", "n": i})
    await layer.group_send("g", {"type": "t", "n": 3})
    messages = await io.receive_many(channel)
    assert messages == [{"type": "t", "n": i} for i in range(4)]
    assert await io.receive_many(channel) == []  # empty: waits, then nothing


async def test_receive_many_waits_for_the_next_message(layer):
    io = layer_io.probe(layer)
    channel = await layer.new_channel()
    waiting = asyncio.create_task(io.receive_many(channel))
    await asyncio.sleep(0)  # the pop is under way before anything is sent
    await layer.send(channel, {"type": "t", "n": 1})
    assert await asyncio.wait_for(waiting, 60) == [{"type": "t", "n": 1}]


async def test_receive_many_respects_the_limit_and_keeps_the_rest(layer):
    io = layer_io.probe(layer)
    channel = await layer.new_channel()
    for i in range(5):
        await layer.send(channel, {"type": "t", "n": i})
    first = await io.receive_many(channel, limit=2)
    rest = await io.receive_many(channel, limit=10)
    assert [m["n"] for m in first] == [0, 1]
    assert [m["n"] for m in rest] == [2, 3, 4]


async def test_send_many_is_received_by_the_public_receive_and_refuses_when_full(
    layer,
):
    io = layer_io.probe(layer)
    one, two = await layer.new_channel(), await layer.new_channel("other")
    outcome = await io.send_many({one: {"type": "a"}, two: {"type": "b"}})
    assert outcome == {one: None, two: None}
    assert await layer.receive(one) == {"type": "a"}
    assert await layer.receive(two) == {"type": "b"}
    for _ in range(5):  # capacity 5
        assert (await io.send_many({one: {"type": "x"}}))[one] is None
    refused = await io.send_many({one: {"type": "late"}, two: {"type": "c"}})
    assert isinstance(refused[one], ChannelFull)
    assert refused[two] is None
    kept = await io.receive_many(one)
    assert [m["type"] for m in kept] == ["x"] * 5  # the refused one never got in


async def test_group_members_reads_public_group_adds(layer):
    io = layer_io.probe(layer)
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("price.AAA", a)
    await layer.group_add("price.AAA", b)
    await layer.group_add("price.BBB", b)
    members, failed = await io.group_members(["price.AAA", "price.BBB", "price.NONE"])
    assert failed == {}
    assert sorted(members["price.AAA"]) == sorted([a, b])
    assert members["price.BBB"] == [b]
    assert members["price.NONE"] == []


def _name_on(io: layer_io.RedisLayerIO, shard: int, stem: str) -> str:
    """A group name of ``stem`` that hashes to ``shard``."""
    return next(f"{stem}{n}" for n in range(1000) if io.shard_of(f"{stem}{n}") == shard)


async def test_a_dead_shard_fails_alone_and_a_down_one_is_not_tried(redis_prefix):
    # Shard 1 is a loopback port nothing listens on: a killed Redis.
    from tests.live import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    layer = RedisChannelLayer(
        hosts=[{"address": url, "socket_timeout": None} for url in (REDIS_URL, dead)],
        prefix=redis_prefix,
        capacity=5,
        expiry=30,
    )
    io = layer_io.probe(layer)
    live_group, dead_group = _name_on(io, 0, "price.L"), _name_on(io, 1, "price.D")
    # A process-local channel is hashed on its part up to "!" (one layer's
    # channels all share it), so name one on shard 0 the way a layer would.
    live_channel = next(
        f"specific.p{n}!x" for n in range(1000) if io.shard_of(f"specific.p{n}!x") == 0
    )
    try:
        assert await io.group_add_many(0, [(live_group, live_channel)]) == 1
        members, failed = await io.group_members([live_group, dead_group])
        assert members == {live_group: [live_channel]}
        assert list(failed) == [1] and isinstance(failed[1], redis.ConnectionError)
        members, failed = await io.group_members([live_group, dead_group], down={1})
        assert members == {live_group: [live_channel]}
        assert isinstance(failed[1], layer_io.ShardDown)
        with pytest.raises(redis.ConnectionError):
            await io.ping(1)
        await io.ping(0)
        outcome = await io.send_many({live_channel: {"type": "a"}}, down={1})
        assert outcome == {live_channel: None}
        outcome = await io.send_many({live_channel: {"type": "b"}}, down={0})
        assert isinstance(outcome[live_channel], layer_io.ShardDown)
        assert [m["type"] for m in await io.receive_many(live_channel)] == ["a"]
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{redis_prefix}*"):
            client.delete(key)


async def test_a_message_for_another_channel_of_the_process_is_dropped_and_logged(
    layer, caplog
):
    io = layer_io.probe(layer)
    mine = await layer.new_channel()
    stray = mine.rsplit("!", 1)[0] + "!someone-else"
    await layer.send(stray, {"type": "stray"})
    await layer.send(mine, {"type": "mine"})
    with caplog.at_level(logging.WARNING, logger="realtime.layer_io"):
        assert await io.receive_many(mine) == [{"type": "mine"}]
    assert io.foreign_dropped == 1
    assert "event=layer_foreign_message" in caplog.text
