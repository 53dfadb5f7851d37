"""Bar subscribes read the bar history through the subscribe coalescers
(realtime/fanout/subscribe_reads.py, realtime/fanout/bars.py), as tick subscribes
do: a fleet of dashboards resubscribing its candles at once costs a few Redis
round trips, not one epoch read and one history read per subscribe.

The bar history is the real Redis one the feed writes (scaled mode's backends);
the subscribes are ``subscribe_bars`` calls on a hub, one outbox each, as the
consumer makes them.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import redis

from realtime.backends import backends
from realtime.events import Update
from realtime.fanout.bars import subscribe_bars
from realtime.fanout.hubs import close_hub, get_hub
from realtime.feed.history import RedisHistory
from tests.live import REDIS_URL, async_wait_until
from tests.realtime.fanout.test_hub import collecting_outbox

pytestmark = pytest.mark.redis

SUBSCRIBES = 200
STREAMS = [f"CB{i:02d}@1s" for i in range(20)]
BARS_PER_STREAM = 3


def bar_text(key: str, seq: int, start: int) -> str:
    symbol, interval = key.split("@")
    return orjson.dumps(
        {
            "type": "bar",
            "symbol": symbol,
            "interval": interval,
            "start": start,
            "end": start + 1000,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1,
            "seq": seq,
        }
    ).decode()


@pytest.fixture
async def bar_history(settings, redis_prefix) -> AsyncIterator[RedisHistory]:
    """Scaled mode's bar history, holding ``BARS_PER_STREAM`` bars per stream as
    the feed leader wrote them."""
    settings.REDIS_URL = REDIS_URL
    settings.REALTIME_MODE = "scaled"
    settings.REALTIME_CACHE_PREFIX = redis_prefix
    settings.REALTIME_BAR_INTERVALS = "1s"
    writer = RedisHistory(REDIS_URL, f"{redis_prefix}:bars", 100, 600)
    await writer.start()
    start = int(time.time()) * 1000
    batch = []
    for key in STREAMS:
        for _ in range(BARS_PER_STREAM):
            seq = writer.next_seq(key)
            batch.append(Update(key, seq, writer.epoch, bar_text(key, seq, start), 0))
            start += 1000
    await writer.write(batch)
    await writer.aclose()
    reader = backends().bar_history
    assert isinstance(reader, RedisHistory)
    assert reader.epoch_key == writer.epoch_key
    yield reader
    await reader.aclose()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


def count_calls(monkeypatch, target: Any, names: list[str]) -> dict[str, int]:
    """Count the calls of ``target``'s store methods (each is a Redis round
    trip); they still run against Redis."""
    calls = dict.fromkeys(names, 0)

    def counted(name: str, method: Callable) -> Callable:
        @functools.wraps(method)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return await method(*args, **kwargs)

        return wrapper

    for name in names:
        monkeypatch.setattr(target, name, counted(name, getattr(target, name)))
    return calls


async def test_concurrent_bar_subscribes_share_few_round_trips_and_all_recover(
    bar_history: RedisHistory, monkeypatch
) -> None:
    epoch = await bar_history.aepoch()
    assert epoch
    calls = count_calls(monkeypatch, bar_history, ["aepoch", "aread", "aread_many"])
    hub = get_hub()
    try:
        clients = []
        for i in range(SUBSCRIBES):
            outbox, sent = collecting_outbox(f"ws-{i}")
            hub.attach(outbox)
            clients.append((outbox, sent, STREAMS[i % len(STREAMS)]))

        async def resubscribe(outbox, key: str) -> dict:
            symbol, interval = key.split("@")
            # Each client saw the stream's first bar before its socket dropped.
            reply, release = await subscribe_bars(
                hub, outbox, [symbol], [interval], {key: (epoch, 1)}
            )
            release()
            return reply

        replies = await asyncio.gather(
            *(resubscribe(outbox, key) for outbox, _, key in clients)
        )
        # The storm was served: every subscribe recovered its stream...
        for reply, (_, _, key) in zip(replies, clients, strict=True):
            assert reply["streams"] == [key]
            assert reply["epoch"] == epoch
            assert (reply["recovered"], reply["not_recovered"]) == ([key], [])
        # ...in a few rounds, not 2 x 200 commands: one pipeline of the 20
        # streams' pages and one epoch read (a round may split in two when some
        # subscribes join after the first was sent).
        assert calls["aread"] == 0
        assert 1 <= calls["aread_many"] <= 2, calls
        assert 1 <= calls["aepoch"] <= 2, calls

        # ...and each client got the bars it missed, once, in order.
        def replayed(sent: list[str]) -> list[tuple[int, bool]]:
            bars = [m for m in map(orjson.loads, sent) if m["type"] == "bar"]
            return [(m["seq"], m.get("recovered", False)) for m in bars]

        await async_wait_until(
            lambda: all(len(replayed(sent)) >= 2 for _, sent, _ in clients),
            60,
            "every client's replayed bars",
        )
        for _, sent, _ in clients:
            assert replayed(sent) == [(2, True), (3, True)]
    finally:
        await close_hub()
