"""ReferenceService against FMP's REST API as the simulator serves it (real sockets)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime

import pytest
import redis

from realtime.reference import endpoint as endpoint_module
from realtime.reference.cache import (
    LocalReferenceCache,
    RedisReferenceCache,
    ReferenceCache,
)
from realtime.reference.service import (
    ReferenceService,
    rest_endpoint,
    set_rest_base,
)
from realtime.upstream.simulator import FmpSimulator, universe
from tests.live import async_wait_until, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
STOCKS = [s for s, i in universe.INSTRUMENTS.items() if i.asset_class == "stock"]


def make_service(
    url: str,
    *,
    cache: ReferenceCache | None = None,
    key: str = "ref-key",
    **options,
) -> ReferenceService:
    return ReferenceService(
        cache=cache or LocalReferenceCache(),
        endpoint=lambda: (url, key, False),
        timeout=10.0,
        **options,
    )


def requests_to(sim: FmpSimulator, path: str = "") -> list[str]:
    return [r for r in sim.rest_requests if r.startswith(path)]


async def test_one_request_fetches_many_symbols_with_names_and_prices(fmp):
    service = make_service(fmp.rest_url)
    symbols = ["AAPL", "MSFT", "BTCUSD", "EURUSD", "^GSPC", *STOCKS[10:40]]
    references = await service.get_references(symbols)
    assert set(references) == set(symbols)
    assert len(requests_to(fmp)) == 1
    assert requests_to(fmp, "/stable/batch-quote")
    aapl = references["AAPL"]
    quote = fmp.rest_quote("AAPL")
    assert (aapl.name, aapl.exchange, aapl.asset_class) == (
        "Apple Inc.",
        "NASDAQ",
        "stock",
    )
    assert (aapl.previous_close, aapl.open) == (quote["previousClose"], quote["open"])
    assert aapl.day_low <= aapl.day_high
    assert aapl.simulated is True  # the simulator marks its answers
    assert aapl.trading_day == universe.trading_day().isoformat()
    assert references["BTCUSD"].asset_class == "crypto"
    assert references["EURUSD"].asset_class == "forex"
    assert references["^GSPC"].asset_class == "index"


async def test_symbols_are_split_into_batches_of_batch_size(fmp):
    service = make_service(fmp.rest_url, batch_size=10)
    references = await service.get_references(STOCKS[:25])
    assert len(references) == 25
    assert len(requests_to(fmp, "/stable/batch-quote")) == 3


async def test_concurrent_callers_share_one_request(fmp):
    service = make_service(fmp.rest_url)
    results = await asyncio.gather(
        *(service.get_references([symbol]) for symbol in STOCKS[:20]),
        service.get_references(["AAPL"]),
        service.get_references(["AAPL", "MSFT"]),
    )
    assert [set(r) for r in results[:20]] == [{s} for s in STOCKS[:20]]
    assert set(results[-1]) == {"AAPL", "MSFT"}
    assert len(requests_to(fmp)) == 1


async def test_a_second_call_is_served_from_the_cache(fmp):
    service = make_service(fmp.rest_url)
    first = await service.resolve(["AAPL", "ZZZZZZ"])
    count = len(requests_to(fmp))
    assert count == 1
    again = await service.resolve(["aapl", "ZZZZZZ"])
    assert len(requests_to(fmp)) == count, "cached per symbol per trading day"
    assert again == first
    assert again.unknown == ["ZZZZZZ"] and set(again.references) == {"AAPL"}


async def test_unknown_symbols_are_the_ones_fmp_does_not_list(fmp):
    service = make_service(fmp.rest_url)
    unknown = await service.unknown_symbols(
        ["aapl", "ZZZZZZ", "BTCUSD", "QQQQQ", "a a"]
    )
    assert unknown == ["ZZZZZZ", "QQQQQ"]


async def test_429_backs_off_doubling_and_fails_open(caplog):
    sim = FmpSimulator(rate=0.0, any_symbol=False, rest_rate_limit=1)
    await sim.start()
    now = [1000.0]
    service = make_service(sim.rest_url, clock=lambda: now[0], backoff=30.0)
    try:
        assert await service.unknown_symbols(["ZZZZZZ"]) == ["ZZZZZZ"]
        # Over the limit: FMP answers 429; the symbol is not called unknown.
        with caplog.at_level(logging.INFO, logger="realtime.reference"):
            assert await service.unknown_symbols(["QQQQQ"]) == []
        assert "event=reference_backoff seconds=30 status=429" in caplog.text
        assert "event=reference_fail_open" in caplog.text
        assert len(requests_to(sim)) == 2
        status = service.status()
        assert status["available"] is False and status["backoff_seconds"] == 30
        assert "429" in status["last_error"] and "Limit Reach" in status["last_error"]
        # While backing off: no request at all.
        assert await service.unknown_symbols(["QQQQQ"]) == []
        assert len(requests_to(sim)) == 2
        # Still limited after the wait: the next wait is twice as long.
        now[0] += 31
        assert await service.unknown_symbols(["QQQQQ"]) == []
        assert len(requests_to(sim)) == 3
        assert service.status()["backoff_seconds"] == 60
        # FMP serves again: so does the service, and the error is cleared.
        sim.rest_rate_limit = None
        now[0] += 61
        assert await service.unknown_symbols(["QQQQQ"]) == ["QQQQQ"]
        assert service.status()["available"] is True
        assert service.status()["last_error"] is None
    finally:
        await sim.stop()


async def test_unreachable_fmp_fails_open_and_never_logs_the_key(caplog):
    service = make_service(f"http://127.0.0.1:{free_port()}", key="secret-ref-key")
    with caplog.at_level(logging.DEBUG):
        assert await service.unknown_symbols(["ZZZZZZ", "AAPL"]) == []
        assert await service.get_references(["AAPL"]) == {}
    status = service.status()
    assert status["available"] is False
    assert "Connection refused" in status["last_error"]
    assert "event=reference_backoff" in caplog.text
    assert "secret-ref-key" not in caplog.text + status["last_error"]


async def test_without_any_endpoint_symbols_are_unresolved_not_unknown():
    service = ReferenceService(cache=LocalReferenceCache(), endpoint=lambda: None)
    resolution = await service.resolve(["AAPL"])
    assert resolution.unresolved == ["AAPL"] and resolution.unknown == []
    assert service.status()["available"] is False
    assert "no FMP REST endpoint" in service.status()["last_error"]


async def test_a_plan_without_batch_falls_back_to_capped_single_quotes(fmp):
    fmp.rest_batch_status = 402  # "Premium Query Parameter"
    service = make_service(fmp.rest_url, per_symbol_cap=3)
    resolution = await service.resolve(["AAPL", "MSFT", "ZZZZZZ", "NVDA", "TSLA"])
    assert set(resolution.references) == {"AAPL", "MSFT"}
    assert resolution.unknown == ["ZZZZZZ"]
    assert resolution.unresolved == ["NVDA", "TSLA"]  # past the cap: asked later
    assert len(requests_to(fmp, "/stable/batch-quote")) == 1
    assert len(requests_to(fmp, "/stable/quote")) == 3
    assert service.batch_supported is False
    resolution = await service.resolve(["NVDA"])
    assert set(resolution.references) == {"NVDA"}
    assert len(requests_to(fmp, "/stable/batch-quote")) == 1, "batch is not retried"


async def test_the_request_budget_caps_requests_per_minute(fmp):
    service = make_service(
        fmp.rest_url, max_per_minute=2, batch_size=1, clock=lambda: 50.0
    )
    resolution = await service.resolve(["AAPL", "MSFT", "NVDA"])
    assert set(resolution.references) == {"AAPL", "MSFT"}
    assert resolution.unresolved == ["NVDA"]
    assert len(requests_to(fmp)) == 2
    assert "budget" in service.status()["last_error"]


async def test_wait_bounds_a_callers_wait_and_the_answer_still_fills_the_cache():
    """A slow FMP: the caller gets "unresolved" in time; the next is served."""
    release = asyncio.Event()
    served = []

    async def slow_fmp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        request = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        served.append(request)
        await release.wait()
        body = (
            b'[{"symbol": "AAPL", "name": "Apple Inc.", "exchange": "NASDAQ", '
            b'"previousClose": "189.5", "open": 190.1, "dayHigh": 191, "dayLow": 189}]'
        )
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_fmp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    service = make_service(f"http://127.0.0.1:{port}")
    try:
        resolution = await service.resolve(["AAPL"], wait=0.2)
        assert resolution.unresolved == ["AAPL"]
        release.set()
        await async_wait_until(
            lambda: (
                service._loops and not any(s.inflight for s in service._loops.values())
            ),
            60,
            "the fetch to finish",
        )
        resolution = await service.resolve(["AAPL"], wait=0.2)
        reference = resolution.references["AAPL"]
        assert reference.previous_close == 189.5  # numeric strings accepted
        assert reference.simulated is False  # no simulator header: real FMP
        assert len(served) == 1
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.redis
async def test_the_redis_cache_is_shared_between_processes(fmp, redis_prefix):
    caches = [RedisReferenceCache(REDIS_URL, redis_prefix) for _ in range(2)]
    first, second = (make_service(fmp.rest_url, cache=c) for c in caches)
    try:
        await first.resolve(["AAPL", "ZZZZZZ"])
        assert len(requests_to(fmp)) == 1
        resolution = await second.resolve(["AAPL", "ZZZZZZ"])
        assert len(requests_to(fmp)) == 1, "the other process found it in Redis"
        assert resolution.references["AAPL"].name == "Apple Inc."
        assert resolution.unknown == ["ZZZZZZ"]
        key = caches[0].key(universe.trading_day())
        ttl = redis.Redis.from_url(REDIS_URL).ttl(key)
        assert 0 < ttl <= 2 * 24 * 3600
    finally:
        caches[0].clear()


@pytest.mark.redis
def test_the_simulator_url_is_published_for_web_processes(settings, redis_prefix):
    settings.FMP_API_KEY = ""
    settings.REDIS_URL = REDIS_URL
    settings.REALTIME_MODE = "scaled"
    settings.REALTIME_CACHE_PREFIX = redis_prefix
    set_rest_base("http://127.0.0.1:1234")
    endpoint_module._local_base = None  # a web process: it did not start the simulator
    endpoint_module._redis_base = None
    assert rest_endpoint() == ("http://127.0.0.1:1234", "simulator", True)
    # The old leader stepping down must not erase a new leader's URL.
    endpoint_module._local_base = "http://127.0.0.1:999"
    set_rest_base(None)
    endpoint_module._redis_base = None
    assert rest_endpoint() == ("http://127.0.0.1:1234", "simulator", True)
    endpoint_module._local_base = "http://127.0.0.1:1234"
    set_rest_base(None)
    assert rest_endpoint() is None
    settings.FMP_API_KEY = "real-key"
    assert rest_endpoint() == (settings.FMP_REST_URL, "real-key", False)
    settings.FMP_REST_ENABLED = False
    assert rest_endpoint() is None


def test_without_redis_the_registered_url_is_used(settings):
    settings.FMP_API_KEY = ""
    settings.REDIS_URL = ""
    assert rest_endpoint() is None
    set_rest_base("http://127.0.0.1:4321")
    assert rest_endpoint() == ("http://127.0.0.1:4321", "simulator", True)


def test_the_trading_day_rolls_at_the_new_york_open():
    before = datetime(2026, 11, 30, 14, 29, tzinfo=UTC)  # 09:29 New York (EST)
    after = datetime(2026, 11, 30, 14, 31, tzinfo=UTC)
    assert universe.trading_day(before) == date(2026, 11, 29)
    assert universe.trading_day(after) == date(2026, 11, 30)


async def test_cluster_mismatches_name_symbols_another_legacy_cluster_serves(
    settings,
):
    """Through the product's own path: the registered built-in simulator."""
    from realtime.reference import selectors

    settings.FMP_API_KEY = ""
    settings.REDIS_URL = ""
    fmp = FmpSimulator(rate=0.0, any_symbol=False)  # accepts the product's key
    await fmp.start()
    set_rest_base(fmp.rest_url)
    try:
        await _check_cluster_mismatches(fmp, selectors)
    finally:
        await fmp.stop()


async def _check_cluster_mismatches(fmp, selectors):
    symbols = ["AAPL", "SPY", "BTCUSD", "EURUSD", "^GSPC", "ZZZZZZ"]
    assert await selectors.cluster_mismatches(symbols, "stocks") == {
        "BTCUSD": "crypto",
        "EURUSD": "forex",
    }
    assert await selectors.cluster_mismatches(symbols, "crypto") == {
        "AAPL": "stock",
        "SPY": "stock",
        "EURUSD": "forex",
    }
    assert await selectors.cluster_mismatches(symbols, None) == {}
    assert len(requests_to(fmp)) == 1, "one request, then the cache"
