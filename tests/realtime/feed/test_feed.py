"""FeedService over a real FmpClient talking to the simulator on loopback.

The subscription bookkeeping (leases, pins, grace period) is checked where it
matters: in the set of symbols the simulator sees subscribed upstream.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from realtime.events import Update
from realtime.fanout.hubs import close_hub
from realtime.feed.broker import InMemoryBroker
from realtime.feed.cache import InProcessTickCache
from realtime.feed.history import InMemoryHistory
from realtime.feed.service import FeedService
from realtime.feed.status import StatusStore
from realtime.upstream.config import FmpConfig
from realtime.upstream.simulator import FmpSimulator
from tests.live import async_wait_until


class CollectingFanout:
    """A real fan-out for the broker that keeps what it was given instead of
    delivering it to clients."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []
        self.upstream: list[str] = []
        self.refused: list[tuple[list[str], str]] = []

    def deliver(self, update: Update) -> None:
        self.published.append((update.symbol, orjson.loads(update.text)))

    def deliver_upstream(self, status: str, text: str) -> None:
        self.upstream.append(status)

    def deliver_refused(self, symbols, message: str) -> None:
        self.refused.append((list(symbols), message))


def collecting_broker(fanout: CollectingFanout | None = None) -> InMemoryBroker:
    """An in-memory broker (its own history) handing updates to ``fanout``."""
    history = InMemoryHistory(size=100, seconds=600)
    return InMemoryBroker(history, fanout if fanout is not None else CollectingFanout())


@pytest.fixture
async def simulator():
    sim = FmpSimulator(port=0, rate=300.0, seed=3, heartbeat_interval=0.5)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def feed(simulator):
    publisher = CollectingFanout()

    service = FeedService(
        upstream=FmpConfig(
            url=simulator.url,
            api_key="feed-test-key",
            login_timeout=0.5,
            reconnect_base=0.05,
            reconnect_cap=0.2,
        ),
        cache=InProcessTickCache(),
        broker=collecting_broker(publisher),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="feed-test",
        grace=0.4,
    )
    service.publisher_log = publisher.published
    await service.start()
    yield service
    await service.stop()


def upstream(simulator) -> frozenset[str]:
    return simulator.subscribed_symbols()


async def test_leases_define_upstream_set_and_ticks_are_merged_cached_published(
    feed, simulator
):
    feed.apply_lease("web-1", ["AAPL", "MSFT"], clients=2, ttl=30)
    await async_wait_until(
        lambda: upstream(simulator) == {"AAPL", "MSFT"}, 60, "upstream AAPL+MSFT"
    )
    await async_wait_until(
        lambda: {"AAPL", "MSFT"} <= set(feed.cache.symbols()), 60, "ticks cached"
    )
    symbols = {symbol for symbol, _ in feed.publisher_log}
    assert symbols == {"AAPL", "MSFT"}
    symbol, message = feed.publisher_log[-1]
    cached = feed.cache.get(symbol)
    assert message["type"] == "price_update" and message["symbol"] == symbol
    assert message["timestamp"] == cached.timestamp
    assert feed.total_clients == 2


async def test_symbol_nobody_needs_leaves_upstream_only_after_grace(feed, simulator):
    feed.apply_lease("web-1", ["AAPL", "TSLA"], clients=1, ttl=30)
    await async_wait_until(
        lambda: "TSLA" in upstream(simulator), 60, "TSLA subscribed upstream"
    )
    feed.apply_lease("web-1", ["AAPL"], clients=1, ttl=30)
    await asyncio.sleep(0.2)
    feed.reconcile()
    assert "TSLA" in upstream(simulator), "dropped before the grace period ended"
    await asyncio.sleep(0.3)
    feed.reconcile()
    await async_wait_until(
        lambda: upstream(simulator) == {"AAPL"}, 60, "TSLA unsubscribed after grace"
    )


async def test_flapping_client_does_not_churn_upstream(feed, simulator):
    feed.apply_lease("web-1", ["NVDA"], clients=1, ttl=30)
    await async_wait_until(lambda: "NVDA" in upstream(simulator), 60, "NVDA")
    for _ in range(3):
        feed.release("web-1")
        feed.apply_lease("web-1", ["NVDA"], clients=1, ttl=30)
    await asyncio.sleep(0.6)
    feed.reconcile()
    unsubscribes = [
        f for f in simulator.received_frames if f.get("event") == "unsubscribe"
    ]
    assert unsubscribes == []
    assert "NVDA" in upstream(simulator)


async def test_expired_lease_releases_its_symbols(feed, simulator):
    feed.apply_lease("crashed-web", ["AMD"], clients=4, ttl=0.1)
    await async_wait_until(lambda: "AMD" in upstream(simulator), 60, "AMD")
    await asyncio.sleep(0.15)
    feed.reconcile()
    assert feed.total_clients == 0 and "crashed-web" not in feed.leases
    await asyncio.sleep(0.45)
    feed.reconcile()
    await async_wait_until(lambda: "AMD" not in upstream(simulator), 60, "AMD gone")


async def test_pins_hold_symbols_with_no_client(feed, simulator):
    feed.set_pins(["GOOGL"])
    await async_wait_until(lambda: upstream(simulator) == {"GOOGL"}, 60, "pin")
    assert feed.status().subscribed_symbols == ["GOOGL"]


async def test_callbacks_run_sync_and_async_and_a_failing_one_is_isolated(
    feed, simulator, caplog
):
    seen_sync, seen_async = [], []

    def broken(tick, state):
        raise RuntimeError("callback bug")

    async def collect_async(tick, state):
        seen_async.append(state.symbol)

    seen_inline = []

    def broken_inline(tick, state):
        raise RuntimeError("inline callback bug")

    feed.register_callback(broken)
    feed.register_callback(lambda tick, state: seen_sync.append(tick.symbol))
    feed.register_callback(collect_async)
    # sync=True (the alert engine's): called without the awaitable check; a
    # failing one is isolated all the same.
    feed.register_callback(broken_inline, sync=True)
    feed.register_callback(lambda t, s: seen_inline.append(s.seq), sync=True)
    assert feed.callbacks_registered == 5
    with caplog.at_level(logging.ERROR, logger="realtime.feed.service"):
        feed.apply_lease("web-1", ["META"], clients=1, ttl=30)
        await async_wait_until(lambda: len(seen_sync) >= 3, 60, "sync callbacks")
        await async_wait_until(lambda: len(seen_async) >= 3, 60, "async callbacks")
        await async_wait_until(lambda: len(seen_inline) >= 3, 60, "inline callbacks")
    assert set(seen_sync) == {"META"}
    assert seen_inline == sorted(seen_inline)  # in tick order, each numbered
    assert "callback_failed" in caplog.text
    assert "inline callback bug" in caplog.text


async def test_dotted_path_callback_from_settings_is_registered(simulator):
    service = FeedService(
        upstream=FmpConfig(url=simulator.url, api_key="k"),
        cache=InProcessTickCache(),
        broker=collecting_broker(),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="t",
        callbacks=["tests.realtime.feed.test_feed.example_callback"],
    )
    assert service.callbacks_registered == 1


def example_callback(tick, state) -> None:
    return None


async def test_status_reports_state_clients_and_upstream(feed, simulator):
    feed.apply_lease("web-1", ["AAPL"], clients=3, ttl=30)
    await async_wait_until(lambda: feed.client.state == "connected", 60, "connected")
    await feed.publish_status()
    status = feed.status_store.read()
    assert status.state == "connected" and status.is_running
    assert status.subscribed_symbols == ["AAPL"] and status.total_clients == 3
    assert status.source == "fmp" and status.is_fresh()


# --- the runner, in-process: hub lease -> channel layer -> feed -> hub -> client --


@pytest.mark.django_db(transaction=True)
async def test_runner_delivers_ticks_from_upstream_to_a_subscribed_client(
    settings, simulator
):
    from fmpsite.asgi import application
    from realtime.feed.runner import FeedRunner
    from realtime.models import PinnedSubscription

    settings.FMP_API_KEY = "runner-key"
    settings.FMP_WS_URL = simulator.url
    settings.FMP_RECONNECT_BASE = 0.05
    settings.REALTIME_UNSUBSCRIBE_GRACE = 0.5
    await database_sync_to_async(PinnedSubscription.objects.create)(symbol="IBM")
    runner = FeedRunner()
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.leading.wait(), 10)
        await async_wait_until(
            lambda: "IBM" in upstream(simulator), 60, "pinned IBM subscribed at start"
        )
        comm = WebsocketCommunicator(application, "/api/v2/realtime/ws/prices")
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await comm.send_json_to({"action": "subscribe", "symbols": ["ORCL"]})
        assert (await comm.receive_json_from())["symbols"] == ["ORCL"]
        update = await comm.receive_json_from(timeout=5)
        while update["type"] != "price_update":  # e.g. the `subscriptions` list
            update = await comm.receive_json_from(timeout=5)
        assert update["symbol"] == "ORCL"
        assert upstream(simulator) == {"IBM", "ORCL"}
        await comm.disconnect()
        await async_wait_until(
            lambda: upstream(simulator) == {"IBM"}, 60, "ORCL dropped after grace"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close_hub()


@pytest.mark.django_db(transaction=True)
async def test_runner_without_a_key_runs_the_simulator_and_registers_its_rest_api(
    settings,
):
    from realtime.feed.runner import FeedRunner
    from realtime.reference.service import rest_endpoint

    settings.FMP_API_KEY = ""
    settings.REALTIME_DEFAULT_SYMBOLS = ["AAPL"]
    runner = FeedRunner()
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.leading.wait(), 30)
        simulator = runner.simulator
        assert simulator is not None and runner.feed.source == "simulator"
        endpoint = rest_endpoint()
        assert endpoint is not None and endpoint[0] == simulator.rest_url
        assert endpoint[2] is True  # simulated
        await async_wait_until(
            lambda: runner.feed.cache.latest("AAPL") is not None, 60, "AAPL ticks"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close_hub()
    assert rest_endpoint() is None, "the stopped simulator's URL is still registered"
