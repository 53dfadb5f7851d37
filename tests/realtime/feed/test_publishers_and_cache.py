"""Publishers (no hub import on the tick path) and the cache's symbol bound."""

from __future__ import annotations

import logging

import pytest
import redis

from realtime.feed.cache import InProcessTickCache, RedisTickCache
from realtime.feed.publishers import LayerPublisher, LocalPublisher, build_publisher
from realtime.feed.service import FeedService
from realtime.feed.state import merge_tick
from realtime.feed.status import FeedStatus, StatusStore, refusals
from realtime.upstream.config import FmpConfig
from realtime.upstream.protocol import Tick
from tests.live import async_wait_until
from tests.realtime.feed.test_feed import CollectingPublisher

AT = "2024-11-10T12:00:00.000+00:00"


class FakeHub:
    def __init__(self) -> None:
        self.delivered: list[tuple] = []

    def deliver(self, symbol, text, tick_ts):
        self.delivered.append(("price", symbol, text, tick_ts))

    def deliver_upstream(self, status, text):
        self.delivered.append(("upstream", status))

    def deliver_refused(self, symbols, message):
        self.delivered.append(("refused", symbols, message))


def test_local_publisher_uses_the_hub_lookup_it_was_given():
    hub = FakeHub()
    lookups = []

    def current_hub():
        lookups.append(1)
        return hub

    publisher = LocalPublisher(current_hub)
    publisher.publish("AAPL", "{}", 1)
    publisher.publish_upstream("connected", "{}")
    publisher.publish_refused({"TSLA", "AAPL"}, "not authorized")
    assert hub.delivered == [
        ("price", "AAPL", "{}", 1),
        ("upstream", "connected"),
        ("refused", ["AAPL", "TSLA"], "not authorized"),
    ]
    assert len(lookups) == 3
    LocalPublisher(lambda: None).publish("AAPL", "{}", 1)  # no hub yet: dropped


def test_local_publisher_without_refusal_support_logs_once(caplog):
    class OldHub:
        def deliver(self, *args): ...

    publisher = LocalPublisher(lambda: OldHub())
    publisher.publish_refused(["A"], "m")
    publisher.publish_refused(["B"], "m")
    assert caplog.text.count("event=hub_cannot_deliver_refusals") == 1


def test_build_publisher_picks_by_mode():
    assert isinstance(build_publisher("embedded", None), LocalPublisher)
    assert isinstance(build_publisher("scaled", object()), LayerPublisher)


async def test_layer_publisher_sends_refusals_to_every_hub():
    sent = []

    class Layer:
        async def group_send(self, group, message):
            sent.append((group, message))

    publisher = LayerPublisher(Layer())
    await publisher.start()
    try:
        publisher.publish_refused(["TSLA"], "you are not authorized to access tsla")
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
        publisher=CollectingPublisher(),
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
