"""Brokers and publishers (no hub import in the feed) and the cache's bound."""

from __future__ import annotations

import logging

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from realtime.backends import Backends, CurrentHub
from realtime.events import Update
from realtime.feed.broker import InMemoryBroker, RedisBroker
from realtime.feed.cache import InProcessTickCache, RedisTickCache
from realtime.feed.history import InMemoryHistory
from realtime.feed.publishers import LayerPublisher
from realtime.feed.service import FeedService
from realtime.feed.state import merge_tick
from realtime.feed.status import FeedStatus, StatusStore, refusals
from realtime.upstream.config import FmpConfig
from realtime.upstream.protocol import Tick
from tests.live import async_wait_until
from tests.realtime.feed.test_feed import collecting_broker

AT = "2024-11-10T12:00:00.000+00:00"


class FakeHub:
    def __init__(self) -> None:
        self.delivered: list[tuple] = []

    def deliver(self, update):
        self.delivered.append(("price", update.symbol, update.seq, update.text))

    def deliver_upstream(self, status, text):
        self.delivered.append(("upstream", status))

    def deliver_refused(self, symbols, message):
        self.delivered.append(("refused", symbols, message))


def test_embedded_broker_records_then_hands_to_the_hub_lookup_it_was_given():
    hub = FakeHub()
    lookups = []

    def current_hub():
        lookups.append(1)
        # Recorded before the hub sees it: a subscribe reading the ring finds it.
        assert history.read("AAPL", None, 10) is not None
        return hub

    history = InMemoryHistory(size=10, seconds=60)
    broker = InMemoryBroker(history, CurrentHub(current_hub))
    seq = broker.next_seq("AAPL")
    broker.publish(Update("AAPL", seq, broker.epoch, '{"seq":1}', 1))
    broker.publish_upstream("connected", "{}")
    broker.publish_refused({"TSLA", "AAPL"}, "not authorized")
    assert hub.delivered == [
        ("price", "AAPL", 1, '{"seq":1}'),
        ("upstream", "connected"),
        ("refused", ["AAPL", "TSLA"], "not authorized"),
    ]
    assert len(lookups) == 3
    assert history.read("AAPL", None, 10).updates == [(1, '{"seq":1}')]
    # No hub yet (no client connected): recorded, delivered to nobody.
    idle = InMemoryBroker(history, CurrentHub(lambda: None))
    idle.publish(Update("AAPL", idle.next_seq("AAPL"), idle.epoch, '{"seq":2}', 1))
    assert history.read("AAPL", None, 10).last_seq == 2


def test_backends_pick_the_broker_by_mode():
    common = {
        "prefix": "p",
        "history_size": 10,
        "history_seconds": 60.0,
        "lock_ttl": 3.0,
    }
    embedded = Backends(mode="embedded", redis_url="", **common)
    assert isinstance(embedded.broker(None), InMemoryBroker)
    scaled = Backends(mode="scaled", redis_url="redis://127.0.0.1:9/0", **common)
    assert isinstance(scaled.broker(object()), RedisBroker)
    with pytest.raises(ImproperlyConfigured, match="needs REDIS_URL"):
        Backends(mode="scaled", redis_url="", **common)
    with pytest.raises(ImproperlyConfigured, match="REALTIME_MODE"):
        Backends(mode="cluster", redis_url="", **common)


async def test_layer_publisher_sends_refusals_to_every_hub():
    sent = []

    class Layer:
        async def group_send(self, group, message):
            sent.append((group, message))

    publisher = LayerPublisher(Layer())
    await publisher.start()
    try:
        publisher.deliver_refused(["TSLA"], "you are not authorized to access tsla")
        await async_wait_until(lambda: sent, 60, "group_send")
    finally:
        await publisher.aclose()
    assert sent == [
        (
            "realtime.hubs",
            {
                "type": "hub.refused",
                "symbols": ["TSLA"],
                "message": "you are not authorized to access tsla",
            },
        )
    ]


def _feed(cache, limit: int) -> FeedService:
    return FeedService(
        upstream=FmpConfig(url="ws://127.0.0.1:9", api_key="k"),
        cache=cache,
        broker=collecting_broker(),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="t",
        grace=0.0,
        cache_max_symbols=limit,
    )


def test_cache_is_bounded_evicting_symbols_no_longer_upstream_oldest_first(caplog):
    cache = InProcessTickCache()
    feed = _feed(cache, limit=3)
    symbols = ["A", "B", "C", "D", "E"]
    feed.set_pins(symbols)
    for ts, symbol in enumerate(symbols, start=1):
        feed.on_tick(Tick(symbol, ts, "T", last_price=1.0, last_size=1))
    assert cache.local_count() == 5  # all five are live: nothing to evict
    with caplog.at_level(logging.WARNING, logger="realtime.feed.service"):
        feed.reconcile()
    assert cache.local_count() == 5
    assert "event=cache_over_limit" in caplog.text
    feed.set_pins(["D", "E"])  # A, B, C leave upstream (grace 0)
    feed.reconcile()
    assert cache.symbols() == ["C", "D", "E"], "A and B, the oldest, are evicted"
    assert "event=cache_evicted count=2" in caplog.text
    # The state a tick merges into is the cache's: one copy in the process.
    feed.on_tick(Tick("E", 9, "Q", ask_price=2.0, ask_size=1))
    assert cache.get("E").last_price == 1.0 and cache.get("E").ask_price == 2.0


@pytest.mark.redis
async def test_redis_cache_trim_removes_evicted_symbols_from_the_hash(redis_prefix):
    url = "redis://127.0.0.1:6379/0"
    cache = RedisTickCache(url, redis_prefix)
    try:
        for ts, symbol in enumerate(["A", "B", "C"], start=1):
            tick = Tick(symbol, ts, "T", last_price=1.0, last_size=1)
            cache.put(merge_tick(None, tick, AT))
        await cache.flush()
        assert cache.symbols() == ["A", "B", "C"]
        assert cache.trim(1, frozenset({"C"})) == ["A", "B"]
        assert cache.latest("A") is None and cache.local_count() == 1
        await cache.flush()
        assert cache.symbols() == ["C"]
    finally:
        cache.clear()
        await cache.aclose()
        redis.Redis.from_url(url).delete(f"{redis_prefix}:ticks")


def test_status_round_trips_refusals_and_names_them_for_a_subscribe():
    status = FeedStatus(
        state="connected",
        source="fmp",
        is_running=True,
        api_configured=True,
        upstream_problem="FMP refused TSLA (not authorized).",
        refused_symbols={"TSLA": "you are not authorized to access tsla"},
        refused_streams={},
        unservable_symbols={"BTCUSD": "BTCUSD looks like crypto"},
    )
    back = FeedStatus.from_json(status.to_json())
    assert back == status
    assert refusals(back, ["AAPL", "TSLA", "BTCUSD"]) == {
        "TSLA": "you are not authorized to access tsla",
        "BTCUSD": "BTCUSD looks like crypto",
    }
    assert refusals(None, ["TSLA"]) == {}
    old = FeedStatus.from_json(
        b'{"state": "connected", "source": "fmp",'
        b' "is_running": true, "api_configured": true}'
    )
    assert old.upstream_problem is None and old.refused_symbols == {}
