"""Sequence numbers and bounded history, in memory and in real Redis (issue 15)."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from realtime.events import Update
from realtime.feed.broker import InMemoryBroker, RedisBroker
from realtime.feed.cache import InProcessTickCache
from realtime.feed.history import HistoryPage, InMemoryHistory, RedisHistory
from realtime.feed.service import FeedService
from realtime.feed.status import StatusStore
from realtime.upstream.config import FmpConfig
from realtime.upstream.protocol import Tick
from tests.live import async_wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fill(history, symbol: str, count: int) -> list[int]:
    seqs = []
    for _ in range(count):
        seq = history.next_seq(symbol)
        text = orjson.dumps({"seq": seq}).decode()
        history.record(Update(symbol, seq, history.epoch, text, 0))
        seqs.append(seq)
    return seqs


def put(broker, symbol: str, text: str) -> None:
    """Number and publish one update through ``broker`` (history, then fan-out)."""
    broker.publish(Update(symbol, broker.next_seq(symbol), broker.epoch, text, 0))


def test_memory_seq_grows_by_one_per_symbol_and_reads_page_forward():
    history = InMemoryHistory(size=100, seconds=600)
    assert fill(history, "AAPL", 5) == [1, 2, 3, 4, 5]
    assert fill(history, "MSFT", 2) == [1, 2]
    page = history.read("AAPL", after_seq=2, limit=2)
    assert [s for s, _ in page.updates] == [3, 4] and page.last_seq == 5
    assert [s for s, _ in history.read("AAPL", None, 3).updates] == [3, 4, 5]
    assert history.read("NONE", None, 10) is None
    assert page.epoch == history.epoch and len(history.epoch) >= 6


def test_memory_history_is_bounded_by_count_and_age():
    clock = Clock()
    history = InMemoryHistory(size=10, seconds=60, clock=clock)
    fill(history, "AAPL", 25)
    page = history.read("AAPL", None, 1000)
    assert [s for s, _ in page.updates] == list(range(16, 26))  # the last 10
    clock.now += 61
    fill(history, "AAPL", 1)  # a write trims what aged out
    assert [s for s, _ in history.read("AAPL", None, 1000).updates] == [26]
    fill(history, "MSFT", 3)
    clock.now += 61
    # Reads never serve aged entries; the sweep frees idle symbols' rings.
    assert history.read("MSFT", None, 1000).updates == []
    assert history.sweep() == 4 and history._rings == {}
    assert history.next_seq("MSFT") == 4  # the sequence itself goes on


def test_page_recovers_only_a_contiguous_tail_of_the_same_epoch():
    page = HistoryPage("A", "e1", [(5, "x"), (6, "y")], 6)
    assert page.recovers("e1", 4)
    assert HistoryPage("A", "e1", [], 6).recovers("e1", 6)  # nothing missed
    assert not page.recovers("e2", 4)  # another epoch
    assert not page.recovers("e1", 3)  # seq 4 no longer held
    assert not page.recovers("e1", 7)  # a seq from the future
    assert not HistoryPage("A", "e1", [(5, "x"), (7, "y")], 7).recovers("e1", 4)


def tick(symbol: str, price: float) -> Tick:
    return Tick(
        symbol=symbol,
        timestamp=int(time.time() * 1000),
        kind="T",
        last_price=price,
        last_size=1.0,
    )


class Collecting:
    """A fan-out that keeps what the broker handed it."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, dict]] = []

    def deliver(self, update: Update) -> None:
        self.texts.append((update.symbol, orjson.loads(update.text)))

    def deliver_upstream(self, status, text):
        pass

    def deliver_refused(self, symbols, message):
        pass

    def forget_channel(self, channel):
        pass

    def route_channel(self, channel, symbols):
        pass

    async def start(self):
        pass

    async def aclose(self):
        pass


def broker_for(history, fanout=None):
    fanout = fanout if fanout is not None else Collecting()
    if isinstance(history, RedisHistory):
        return RedisBroker(history, fanout)
    return InMemoryBroker(history, fanout)


def feed_with(history, publisher) -> FeedService:
    service = FeedService(
        upstream=FmpConfig(url="ws://127.0.0.1:9", api_key="k"),
        cache=InProcessTickCache(),
        broker=broker_for(history, publisher),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="test",
    )
    service._upstream = frozenset({"AAPL", "MSFT"})
    return service


def test_feed_puts_seq_in_the_one_encoded_text_and_records_it():
    history = InMemoryHistory(size=100, seconds=600)
    publisher = Collecting()
    feed = feed_with(history, publisher)
    for i in range(3):
        feed.on_tick(tick("AAPL", 100 + i))
    feed.on_tick(tick("MSFT", 400))
    assert [(s, m["seq"]) for s, m in publisher.texts] == [
        ("AAPL", 1),
        ("AAPL", 2),
        ("AAPL", 3),
        ("MSFT", 1),
    ]
    stored = history.read("AAPL", None, 10).updates
    assert [orjson.loads(t) for _, t in stored] == [m for s, m in publisher.texts[:3]]
    assert feed.cache.latest("AAPL").seq == 3


@pytest.fixture
def redis_history(redis_prefix):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    made: list[RedisHistory] = []

    def make(size: int = 100, seconds: float = 600) -> RedisHistory:
        history = RedisHistory(REDIS_URL, redis_prefix, size, seconds)
        made.append(history)
        return history

    yield make
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


@pytest.mark.redis
async def test_redis_feed_publishes_only_what_redis_holds_and_failover_continues(
    redis_history,
):
    history = redis_history()
    seen_in_redis: list[bool] = []
    publisher = Collecting()
    collect = publisher.deliver
    reader = redis_history()

    def deliver(update):
        # Write-then-publish: a reader at this instant already finds the update.
        seq = orjson.loads(update.text)["seq"]
        page = reader.read(update.symbol, seq - 1, 10)
        seen_in_redis.append(page is not None and page.updates[0][0] == seq)
        collect(update)

    publisher.deliver = deliver  # type: ignore[method-assign]
    feed = feed_with(history, publisher)
    await feed.broker.start()
    epoch = history.epoch
    for i in range(30):
        feed.on_tick(tick("AAPL", 100 + i))
    await async_wait_until(lambda: len(publisher.texts) == 30, 60, "30 publishes")
    assert all(seen_in_redis) and len(seen_in_redis) == 30
    assert [m["seq"] for _, m in publisher.texts] == list(range(1, 31))
    assert history.batches_written < 30  # batched: not one round trip per tick
    await feed.broker.aclose()
    # The standby (a new process: a new instance) continues in the same epoch.
    standby = redis_history()
    await standby.start()
    assert standby.epoch == epoch
    assert standby.next_seq("AAPL") == 31
    await standby.aclose()
    page = await reader.aread("AAPL", 25, 100)
    assert [s for s, _ in page.updates] == [26, 27, 28, 29, 30]
    assert page.recovers(epoch, 25)
    await reader.aclose()


@pytest.mark.redis
async def test_redis_history_lost_means_a_new_epoch(redis_history, redis_prefix):
    first = redis_history()
    broker = broker_for(first)
    await broker.start()
    put(broker, "AAPL", '{"seq":1}')
    await broker.aclose()
    redis.Redis.from_url(REDIS_URL).delete(f"{redis_prefix}:history:epoch")
    second = redis_history()
    await second.start()
    assert second.epoch != first.epoch
    assert second.next_seq("AAPL") == 1  # a new sequence space
    await second.aclose()


@pytest.mark.redis
async def test_redis_history_is_bounded_by_count_and_age(redis_history, redis_prefix):
    history = redis_history(size=10, seconds=2)
    broker = broker_for(history)
    await broker.start()
    for _ in range(25):
        put(broker, "AAPL", '{"x":1}')
    await async_wait_until(lambda: not broker._queue, 60, "the batch written")
    await broker.aclose()
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_prefix}:history:{history.epoch}:s:AAPL"
    assert client.xlen(key) == 10  # count bound in Redis itself
    assert 0 < client.pttl(key) <= (2 + 60) * 1000  # an idle symbol expires
    page = history.read("AAPL", None, 1000)
    assert [s for s, _ in page.updates] == list(range(16, 26))
    # Age: once 2 s passed, reads serve nothing and the next write trims Redis.
    await async_wait_until(
        lambda: history.read("AAPL", None, 1000).updates == [], 60, "entries to age"
    )
    broker = broker_for(history)
    await broker.start()
    put(broker, "AAPL", '{"x":2}')
    await async_wait_until(lambda: client.xlen(key) == 1, 60, "the age trim")
    await broker.aclose()


@pytest.mark.redis
async def test_a_flushed_redis_gets_every_counter_back_so_a_failover_continues(
    redis_history, redis_prefix
):
    """Redis flushed under a running leader: its next batch writes the epoch back
    and every symbol's counter, not only the batch's, so a standby taking over
    later continues each sequence instead of restarting some at 1 in the same
    epoch."""
    leader = redis_history()
    broker = broker_for(leader)
    await broker.start()
    put(broker, "AAPL", '{"seq":1}')
    put(broker, "AAPL", '{"seq":2}')
    await async_wait_until(lambda: not broker._queue, 60, "the first batch")
    client = redis.Redis.from_url(REDIS_URL)
    await async_wait_until(
        lambda: client.hget(f"{redis_prefix}:history:{leader.epoch}:seq", "AAPL"),
        60,
        "the first batch in Redis",
    )
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)  # the flush
    put(broker, "MSFT", '{"seq":1}')
    await broker.aclose()  # writes what is queued
    standby = redis_history()
    await standby.start()
    assert standby.epoch == leader.epoch
    assert standby.next_seq("AAPL") == 3
    assert standby.next_seq("MSFT") == 2
    await standby.aclose()


@pytest.mark.redis
async def test_redis_read_many_answers_each_request_like_aread(redis_history):
    """The pipelined read of a reconnect storm's recoveries (aread_many) gives
    every (symbol, after_seq, limit) the page a single aread would."""
    history = redis_history()
    broker = broker_for(history)
    await broker.start()
    for i in range(5):
        put(broker, "AAPL", orjson.dumps({"seq": i + 1}).decode())
    put(broker, "MSFT", '{"seq":1}')
    await broker.aclose()
    reader = redis_history()
    wanted = [("AAPL", 2, 100), ("AAPL", 0, 2), ("MSFT", 0, 100), ("NONE", 0, 100)]
    many = await reader.aread_many(wanted)
    for key in wanted:
        single = await reader.aread(*key)
        assert many[key] == single, key
    assert [s for s, _ in many[("AAPL", 2, 100)].updates] == [3, 4, 5]
    assert many[("NONE", 0, 100)] is None
    await reader.aclose()
