"""What a new leader reads from Redis at takeover: the tick history's recent
updates (with what tells whether they cover a window) and the bars the old
leader emitted (realtime/feed/history.py ``recent``, realtime/bars/takeover.py)."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from realtime.bars.takeover import RedisTakeover, tick_of
from realtime.events import Update
from realtime.feed.history import RedisHistory
from tests.live import REDIS_URL, async_wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def histories(redis_prefix):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    made: list[RedisHistory] = []

    def make(prefix: str, size: int = 100) -> RedisHistory:
        history = RedisHistory(REDIS_URL, prefix, size, 600)
        made.append(history)
        return history

    yield make
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


def trade(symbol: str, seq: int, ts: int, price: float, size: float) -> str:
    return orjson.dumps(
        {
            "type": "price_update",
            "symbol": symbol,
            "timestamp": ts,
            "data_type": "T",
            "last_price": price,
            "last_size": size,
            "seq": seq,
        }
    ).decode()


async def test_recent_returns_each_symbols_updates_since_and_the_one_before(
    histories, redis_prefix
):
    ticks = histories(redis_prefix, size=3)
    await ticks.start()
    now = int(time.time() * 1000)
    batch = []
    for i in range(4):
        seq = ticks.next_seq("AAPL")
        batch.append(
            Update("AAPL", seq, ticks.epoch, trade("AAPL", seq, now + i, 1, i), 0)
        )
    await ticks.write(batch)
    seq = ticks.next_seq("MSFT")
    await ticks.write(
        [Update("MSFT", seq, ticks.epoch, trade("MSFT", 1, now, 2, 5), 0)]
    )
    reader = histories(redis_prefix, size=3)  # the same settings as the writer
    found = await reader.recent(now - 60_000)
    assert sorted(found) == ["AAPL", "MSFT"]
    aapl = found["AAPL"]
    # Capped at 3: the first trade is gone, and the stream says it is full.
    assert [tick_of(t).last_size for t in aapl.texts] == [1, 2, 3]
    assert (aapl.length, aapl.size, aapl.earlier) == (3, 3, None)
    assert await reader.recent(int(time.time() * 1000) + 60_000) == {}
    # Entries are stamped with the write's millisecond: once the clock moved
    # on, a later write's reader gets the newest earlier entry as ``earlier``.
    written = int(time.time() * 1000)
    await async_wait_until(
        lambda: int(time.time() * 1000) > written, 60, "the clock to move on"
    )
    since = int(time.time() * 1000)
    seq = ticks.next_seq("AAPL")
    await ticks.write(
        [Update("AAPL", seq, ticks.epoch, trade("AAPL", seq, since, 1, 9), 0)]
    )
    later = (await reader.recent(since))["AAPL"]
    assert [tick_of(t).last_size for t in later.texts] == [9]
    assert tick_of(later.earlier).last_size == 3
    for history in (ticks, reader):
        await history.aclose()


async def test_emitted_reads_the_newest_start_per_bar_stream_revisions_included(
    histories, redis_prefix
):
    ticks = histories(redis_prefix)
    bars = histories(f"{redis_prefix}:bars")
    await bars.start()

    def bar(key: str, start: int, **extra) -> Update:
        seq = bars.next_seq(key)
        symbol, interval = key.split("@")
        text = orjson.dumps(
            {"type": "bar", "symbol": symbol, "interval": interval, "start": start}
            | extra
        ).decode()
        return Update(key, seq, bars.epoch, text, 0)

    await bars.write(
        [
            bar("AAPL@1s", 1000),
            bar("AAPL@1s", 2000),
            bar("AAPL@1s", 1000, updated=True),  # a revision is not newer
            bar("EURUSD@1s", 3000, source="mid"),
        ]
    )
    standby = histories(f"{redis_prefix}:bars")
    await standby.start()  # the new leader's bar broker loads the counters
    emitted = await RedisTakeover(ticks, standby).emitted()
    assert emitted.starts == {"AAPL@1s": 2000, "EURUSD@1s": 3000}
    assert emitted.traded == {"AAPL"}
    for history in (ticks, bars, standby):
        await history.aclose()
