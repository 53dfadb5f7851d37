"""FmpSimulator speaks FMP_UPSTREAM.md: checked with a plain websockets client."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from realtime.upstream import protocol
from realtime.upstream.protocol import ParseError, Tick
from realtime.upstream.simulator import FmpSimulator
from tests.live import ROOT, async_wait_until, server_env


@asynccontextmanager
async def session(
    sim: FmpSimulator, key: str = "key", symbols: tuple[str, ...] = ()
) -> AsyncIterator[ClientConnection]:
    """A raw connection, logged in (ack consumed) and subscribed to ``symbols``."""
    async with connect(sim.url, max_queue=None) as ws:
        await ws.send(protocol.login_frame(key))
        if sim.send_login_ack:
            assert json.loads(await recv(ws)) == {
                "event": "login",
                "status": 200,
                "message": "Authenticated",
            }
        for frame in protocol.subscribe_frames(symbols):
            await ws.send(frame)
            assert json.loads(await recv(ws))["event"] == "subscribe"
        yield ws


async def recv(ws: ClientConnection, within: float = 3.0) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), within)


async def collect(ws: ClientConnection, count: int, within: float = 5.0) -> list:
    """The next ``count`` data frames (heartbeats and acks skipped), as dicts."""
    frames: list[dict] = []
    deadline = time.monotonic() + within
    while len(frames) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"only {len(frames)}/{count} frames in {within}s")
        frame = json.loads(await recv(ws, remaining))
        if "event" not in frame:
            frames.append(frame)
    return frames


@pytest.fixture
async def quiet_simulator() -> AsyncIterator[FmpSimulator]:
    sim = FmpSimulator(rate=300.0, seed=5, heartbeat_interval=30.0)
    await sim.start()
    yield sim
    await sim.stop()


async def test_login_subscribe_and_ack_shapes(quiet_simulator):
    sim = quiet_simulator
    async with connect(sim.url) as ws:
        await ws.send(protocol.login_frame("any-key"))
        assert json.loads(await recv(ws)) == {
            "event": "login",
            "status": 200,
            "message": "Authenticated",
        }
        await ws.send('{"event": "subscribe", "data": {"ticker": "aapl"}}')
        ack = json.loads(await recv(ws))
        assert ack["event"] == "subscribe" and ack["status"] == 200
        assert "aapl" in ack["message"]
        assert sim.connection_subscriptions() == [frozenset({"AAPL"})]
        assert sim.logins == 1 and sim.open_connections == 1
        assert sim.received_frames[0] == {
            "event": "login",
            "data": {"apiKey": "any-key"},
        }


async def test_ticks_only_for_subscribed_symbols_with_nanosecond_time_and_sane_book(
    quiet_simulator,
):
    async with session(quiet_simulator, symbols=("AAPL", "MSFT")) as ws:
        frames = await collect(ws, 150)
    assert {f["s"] for f in frames} == {"aapl", "msft"}
    now_ns = time.time_ns()
    kinds = {f["type"] for f in frames}
    assert {"T", "Q"} <= kinds <= {"T", "Q", "B"}
    for f in frames:
        assert len(str(f["t"])) == 19 and abs(now_ns - f["t"]) < 10 * 10**9
        prices = [f[k] for k in ("ap", "bp", "lp") if k in f]
        assert all(round(p * 100) == pytest.approx(p * 100, abs=1e-6) for p in prices)
        sizes = [f[k] for k in ("as", "bs", "ls") if k in f]
        assert all(s % 100 == 0 and s > 0 for s in sizes)
        if f["type"] == "Q":
            assert 0 < f["bp"] < f["ap"]
        else:
            assert f["lp"] > 0 and f["ls"] > 0
        (tick,) = protocol.parse_frame(json.dumps(f))
        assert isinstance(tick, Tick)


async def test_unsubscribe_stops_ticks_for_that_symbol(quiet_simulator):
    async with session(quiet_simulator, symbols=("AAPL", "MSFT")) as ws:
        await ws.send(protocol.unsubscribe_frames(["MSFT"])[0])
        # Frames already in flight may precede the ack; after it, none for msft.
        while True:
            frame = json.loads(await recv(ws))
            if frame.get("event") == "unsubscribe":
                assert frame["status"] == 200
                break
        assert quiet_simulator.subscribed_symbols() == {"AAPL"}
        frames = await collect(ws, 60)
    assert {f["s"] for f in frames} == {"aapl"}


async def test_nothing_is_sent_without_subscriptions(quiet_simulator):
    async with session(quiet_simulator) as ws:
        with pytest.raises(TimeoutError):
            await recv(ws, 0.3)


async def test_unknown_api_key_gets_401_unauthorized_and_is_closed():
    sim = FmpSimulator(api_keys={"good-key"})
    await sim.start()
    try:
        async with connect(sim.url) as ws:
            await ws.send(protocol.login_frame("bad-key"))
            reply = json.loads(await recv(ws))
            assert reply == {"event": "login", "status": 401, "message": "Unauthorized"}
            with pytest.raises(ConnectionClosed):
                await recv(ws)
        async with session(sim, key="good-key", symbols=("IBM",)) as ws:
            assert (await collect(ws, 1))[0]["s"] == "ibm"
        assert sim.logins == 1 and sim.login_attempts == 2
    finally:
        await sim.stop()


async def test_refuse_logins_answers_unauthorized(quiet_simulator):
    quiet_simulator.refuse_logins()
    async with connect(quiet_simulator.url) as ws:
        await ws.send(protocol.login_frame("key"))
        assert json.loads(await recv(ws))["message"] == "Unauthorized"
        with pytest.raises(ConnectionClosed):
            await recv(ws)


async def test_second_login_with_same_key_kicks_the_older_connection(quiet_simulator):
    sim = quiet_simulator
    async with session(sim, key="shared", symbols=("AAPL",)) as old:
        async with session(sim, key="shared", symbols=("MSFT",)) as new:
            while True:
                frame = json.loads(await recv(old))
                if frame.get("event") == "login":
                    break
            assert frame == {
                "event": "login",
                "status": 401,
                "message": "Connected from another location",
            }
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(old)
            assert (await collect(new, 1))[0]["s"] == "msft"
            assert sim.connection_subscriptions() == [frozenset({"MSFT"})]
            assert sim.max_open_connections == 2


async def test_same_seed_gives_the_same_price_sequence_per_symbol():
    sequences = []
    for _ in range(2):
        sim = FmpSimulator(rate=500.0, seed=42)
        await sim.start()
        try:
            async with session(sim, symbols=("AAPL",)) as ws:
                frames = await collect(ws, 40)
        finally:
            await sim.stop()
        sequences.append(
            [(f["type"], f.get("lp"), f.get("ap"), f.get("bp")) for f in frames]
        )
    assert sequences[0] == sequences[1]
    assert len({s[1:] for s in sequences[0]}) > 5, "prices should move"


async def test_stream_subscription_sends_quote_objects_with_duplicates():
    sim = FmpSimulator(rate=400.0, seed=9, stream_symbols=["AAPL", "MSFT"])
    await sim.start()
    try:
        async with session(sim) as ws:
            await ws.send(protocol.stream_subscribe_frame("fmp-us-equities-stream"))
            assert json.loads(await recv(ws))["status"] == 200
            frames = await collect(ws, 100)
    finally:
        await sim.stop()
    assert {f["symbol"] for f in frames} == {"AAPL", "MSFT"}
    assert set(frames[0]) == set(protocol.QUOTE_OBJECT_FIELDS)
    assert all(len(str(f["timestamp"])) == 10 for f in frames)
    last: dict[str, dict] = {}
    duplicates = 0
    for frame in frames:
        duplicates += last.get(frame["symbol"]) == frame
        last[frame["symbol"]] = frame
    assert duplicates > 0, "the firehose re-broadcasts unchanged quotes"


async def test_heartbeats_arrive_at_the_interval():
    sim = FmpSimulator(heartbeat_interval=0.1)
    await sim.start()
    try:
        async with session(sim) as ws:
            frames = [json.loads(await recv(ws, 1.0)) for _ in range(3)]
    finally:
        await sim.stop()
    now_ms = time.time() * 1000
    for frame in frames:
        assert frame["event"] == "heartbeat"
        assert abs(now_ms - frame["timestamp"]) < 5000


async def test_rate_is_total_ticks_per_second_over_the_connection_symbols():
    sim = FmpSimulator(rate=200.0, seed=1)
    await sim.start()
    try:
        async with session(sim, symbols=("A", "B", "C", "D")) as ws:
            await collect(ws, 5)
            started, count = time.monotonic(), 0
            while (remaining := 1.0 - (time.monotonic() - started)) > 0:
                try:
                    await recv(ws, remaining)
                except TimeoutError:
                    break
                count += 1
            elapsed = time.monotonic() - started
    finally:
        await sim.stop()
    assert 0.6 * 200 * elapsed <= count <= 1.4 * 200 * elapsed, count


async def test_high_rates_are_sustained_without_starving_the_loop(record_property):
    """At a rate it cannot reach, the simulator sends as fast as it can in short
    bursts: a reader on the same event loop (tests; embedded mode, where the
    simulator shares daphne's loop) keeps up, and the loop stays responsive.
    (It used to build a second's worth of frames in one go: a reader sharing the
    loop got one frame per burst and the loop stalled for seconds.)"""
    sim = FmpSimulator(rate=1_000_000.0, seed=1)
    await sim.start()
    gaps: list[float] = []

    async def watch_the_loop() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - before)

    watcher = asyncio.create_task(watch_the_loop())
    try:
        async with session(sim, symbols=tuple(f"S{i}" for i in range(50))) as ws:
            await collect(ws, 100, within=60)
            started, before = time.monotonic(), sim.ticks_sent
            await collect(ws, 6000, within=60)
            elapsed = time.monotonic() - started
            sent = sim.ticks_sent - before
    finally:
        watcher.cancel()
        await sim.stop()
    record_property("simulator_ticks_per_second", round(sent / elapsed))
    record_property("simulator_max_loop_gap_ms", round(1000 * max(gaps)))
    assert sent >= 6000
    assert sent / elapsed > 1000, f"{sent / elapsed:.0f} ticks/s"
    assert max(gaps) < 1.0, f"the loop stalled for {max(gaps):.2f}s"


async def test_set_rate_zero_pauses_ticks(quiet_simulator):
    async with session(quiet_simulator, symbols=("AAPL",)) as ws:
        await collect(ws, 5)
        quiet_simulator.set_rate(0)
        await asyncio.sleep(0.05)  # let frames already queued arrive
        while True:
            try:
                await recv(ws, 0.1)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            await recv(ws, 0.3)
        quiet_simulator.set_rate(100)
        await collect(ws, 3)


async def test_drop_connections_closes_abruptly(quiet_simulator):
    async with session(quiet_simulator, symbols=("AAPL",)) as ws:
        await quiet_simulator.drop_connections()
        with pytest.raises(ConnectionClosedError):
            while True:
                await recv(ws)
        assert ws.close_code == 1006
    await async_wait_until(
        lambda: quiet_simulator.open_connections == 0, 60, "server forgot it"
    )


async def test_silence_sends_nothing_but_keeps_the_connection_open():
    sim = FmpSimulator(rate=300.0, heartbeat_interval=0.05)
    await sim.start()
    try:
        async with session(sim, symbols=("AAPL",)) as ws:
            await collect(ws, 3)
            sim.silence()
            while True:  # drain what was already in flight
                try:
                    await recv(ws, 0.1)
                except TimeoutError:
                    break
            with pytest.raises(TimeoutError):
                await recv(ws, 0.4)
            assert sim.open_connections == 1
            await ws.ping()
            sim.silence(False)
            await collect(ws, 3)
    finally:
        await sim.stop()


async def test_send_malformed_pushes_frames_that_do_not_parse(quiet_simulator):
    async with session(quiet_simulator) as ws:
        await quiet_simulator.send_malformed()
        got = [await recv(ws) for _ in range(8)]
        for raw in got:
            assert all(isinstance(e, ParseError) for e in protocol.parse_frame(raw))
        await quiet_simulator.send_malformed(["custom"])
        assert await recv(ws) == "custom"


async def test_restart_listens_again_on_the_same_port(quiet_simulator):
    port = quiet_simulator.port
    async with session(quiet_simulator, symbols=("AAPL",)) as ws:
        await quiet_simulator.restart()
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(ws)
    assert quiet_simulator.port == port
    assert quiet_simulator.url == f"ws://127.0.0.1:{port}"
    async with session(quiet_simulator, symbols=("MSFT",)) as ws:
        assert (await collect(ws, 1))[0]["s"] == "msft"


@pytest.mark.live  # the fmp_simulator command as a server process
async def test_management_command_serves_until_interrupted():
    env = server_env()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "fmp_simulator",
        "--port",
        "0",
        "--rate",
        "100",
        "--seed",
        "3",
        "--api-key",
        "cmd-key",
        "--heartbeat",
        "5",
        "--rest-port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        assert match, f"no URL in {line!r}"
        rest = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert rest, f"no REST URL in {line!r}"
        status, body, _ = await rest_get(
            rest.group(0), "/stable/quote?symbol=AAPL&apikey=cmd-key"
        )
        assert status == 200 and body[0]["name"] == "Apple Inc."
        async with connect(match.group(0)) as ws:
            await ws.send(protocol.login_frame("cmd-key"))
            assert json.loads(await recv(ws))["status"] == 200
            await ws.send(protocol.subscribe_frames(["AAPL"])[0])
            frames = await collect(ws, 3)
        assert {f["s"] for f in frames} == {"aapl"}
        os.killpg(proc.pid, signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


# --- a market that looks real (issue 16 item 3) and FMP's REST API (issue 13) ------

QUOTE_FIELDS = {
    "symbol",
    "name",
    "price",
    "changePercentage",
    "change",
    "volume",
    "dayLow",
    "dayHigh",
    "yearHigh",
    "yearLow",
    "marketCap",
    "priceAvg50",
    "priceAvg200",
    "exchange",
    "open",
    "previousClose",
    "timestamp",
}


async def rest_get(base: str, path: str) -> tuple[int, Any, dict[str, str]]:
    """GET over a real loopback socket: status, parsed JSON body, headers."""

    def get() -> tuple[int, Any, dict[str, str]]:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                return (
                    response.status,
                    json.loads(response.read()),
                    dict(response.headers),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)

    return await asyncio.to_thread(get)


@pytest.fixture
async def market() -> AsyncIterator[FmpSimulator]:
    """A simulator that, like FMP, knows only its universe of symbols."""
    sim = FmpSimulator(rate=400.0, seed=3, any_symbol=False)
    await sim.start()
    yield sim
    await sim.stop()


def trade_prices(frames: list[dict]) -> dict[str, list[float]]:
    prices: dict[str, list[float]] = {}
    for frame in frames:
        if frame["type"] == "T":
            prices.setdefault(frame["s"], []).append(frame["lp"])
    return prices


async def test_prices_sit_at_plausible_levels_that_do_not_depend_on_the_seed():
    runs = []
    for seed in (1, 2):
        sim = FmpSimulator(rate=600.0, seed=seed, any_symbol=False)
        await sim.start()
        try:
            async with session(sim, symbols=("AAPL", "EURUSD", "BTCUSD")) as ws:
                frames = await collect(ws, 240, within=60)
        finally:
            await sim.stop()
        runs.append(trade_prices(frames))
        crypto = [f for f in frames if f["s"] == "btcusd" and f["type"] == "T"]
        assert all(f["e"] == "binance" for f in crypto)
    for prices in runs:
        assert set(prices) == {"aapl", "eurusd", "btcusd"}
        assert all(175 < p < 205 for p in prices["aapl"]), prices["aapl"]
        assert all(1.0 < p < 1.16 and round(p, 5) == p for p in prices["eurusd"])
        assert all(55_000 < p < 65_000 for p in prices["btcusd"])
    # A restart (another seed, another process) starts where the last one was:
    # both runs open at the day's reference price, so no "crash" in a sparkline.
    for symbol in ("aapl", "eurusd", "btcusd"):
        first = [run[symbol][0] for run in runs]
        assert abs(first[0] / first[1] - 1) < 0.005, (symbol, first)


async def test_symbols_outside_the_universe_get_no_ticks_like_fmp(market):
    async with session(market, symbols=("AAPL", "ZZZZZZ")) as ws:
        frames = await collect(ws, 60)
    assert {f["s"] for f in frames} == {"aapl"}
    assert market.knows("AAPL") and not market.knows("ZZZZZZ")


def test_any_symbol_switch_gives_invented_symbols_a_stable_level():
    levels = {
        FmpSimulator(seed=seed).rest_quote("ZZZZZZ")["open"] for seed in (1, 2, None)
    }
    assert len(levels) == 1
    (level,) = levels
    assert 9 < level < 520
    assert FmpSimulator(any_symbol=False).rest_quote("ZZZZZZ") is None


def test_reference_prices_are_stable_per_trading_day_and_roll_with_it():
    monday, tuesday = date(2026, 11, 30), date(2026, 12, 1)
    a = FmpSimulator(seed=1, any_symbol=False, trading_day=monday).rest_quote("AAPL")
    b = FmpSimulator(seed=9, any_symbol=False, trading_day=monday).rest_quote("AAPL")
    c = FmpSimulator(seed=1, any_symbol=False, trading_day=tuesday).rest_quote("AAPL")
    assert (a["previousClose"], a["open"]) == (b["previousClose"], b["open"])
    assert c["previousClose"] != a["previousClose"]
    assert abs(c["previousClose"] / a["previousClose"] - 1) < 0.07


async def test_rest_quote_and_batch_quote_have_fmps_shapes(market):
    status, body, headers = await rest_get(
        market.rest_url, "/stable/quote?symbol=AAPL&apikey=k"
    )
    assert status == 200 and headers["X-Simulated"] == "true"
    (quote,) = body
    assert set(quote) == QUOTE_FIELDS
    assert (quote["symbol"], quote["name"], quote["exchange"]) == (
        "AAPL",
        "Apple Inc.",
        "NASDAQ",
    )
    assert quote["dayLow"] <= quote["price"] <= quote["dayHigh"]
    assert quote["yearLow"] < quote["price"] < quote["yearHigh"]
    change = quote["price"] - quote["previousClose"]
    assert quote["change"] == pytest.approx(change, abs=0.006)
    assert quote["changePercentage"] == pytest.approx(
        100 * change / quote["previousClose"], abs=0.01
    )
    assert abs(quote["previousClose"] / 190 - 1) < 0.035
    assert len(str(quote["timestamp"])) == 10

    status, body, _ = await rest_get(
        market.rest_url,
        "/stable/batch-quote?symbols=MSFT,ZZZZZZ,btcusd,EURUSD&apikey=k",
    )
    assert status == 200
    assert [q["symbol"] for q in body] == ["MSFT", "BTCUSD", "EURUSD"]
    assert [q["exchange"] for q in body] == ["NASDAQ", "CRYPTO", "FOREX"]
    assert all(set(q) == QUOTE_FIELDS for q in body)

    assert (await rest_get(market.rest_url, "/stable/quote?symbol=ZZZZZZ&apikey=k"))[
        :2
    ] == (200, [])
    status, body, _ = await rest_get(
        market.rest_url, "/api/v3/quote/AAPL,MSFT?apikey=k"
    )
    assert status == 200 and [q["symbol"] for q in body] == ["AAPL", "MSFT"]


async def test_rest_and_stream_agree_on_the_day_reference(market):
    async with session(market) as ws:
        await ws.send(protocol.stream_subscribe_frame("fmp-us-equities-stream"))
        assert json.loads(await recv(ws))["status"] == 200
        frames = await collect(ws, 200, within=60)
    streamed = {f["symbol"]: f for f in frames}
    assert "AAPL" in streamed and streamed["AAPL"]["name"] == "Apple Inc."
    _, body, _ = await rest_get(
        market.rest_url, f"/stable/batch-quote?symbols={','.join(streamed)}&apikey=k"
    )
    for quote in body:
        frame = streamed[quote["symbol"]]
        assert (quote["previousClose"], quote["open"], quote["name"]) == (
            frame["previousClose"],
            frame["open"],
            frame["name"],
        )


async def test_rest_requires_the_api_key_and_never_records_it():
    sim = FmpSimulator(api_keys={"good-rest-key"})
    await sim.start()
    try:
        for path in (
            "/stable/quote?symbol=AAPL",
            "/stable/quote?symbol=AAPL&apikey=bad-rest-key",
        ):
            status, body, _ = await rest_get(sim.rest_url, path)
            assert status == 401 and "Invalid API KEY" in body["Error Message"]
        status, body, _ = await rest_get(
            sim.rest_url, "/stable/quote?symbol=AAPL&apikey=good-rest-key"
        )
        assert status == 200 and body[0]["symbol"] == "AAPL"
        assert len(sim.rest_requests) == 3
        assert not any("rest-key" in line for line in sim.rest_requests)
    finally:
        await sim.stop()


async def test_rest_rate_limit_answers_429_then_serves_again():
    sim = FmpSimulator(rest_rate_limit=3, rest_rate_window=1.0)
    await sim.start()
    try:
        path = "/stable/quote?symbol=AAPL&apikey=k"
        statuses = [(await rest_get(sim.rest_url, path))[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        status, body, _ = await rest_get(sim.rest_url, path)
        assert status == 429 and body["Error Message"].startswith("Limit Reach")
        deadline = time.monotonic() + 60
        while (await rest_get(sim.rest_url, path))[0] == 429:
            assert time.monotonic() < deadline, "the window never let requests in again"
            await asyncio.sleep(0.1)
    finally:
        await sim.stop()


async def test_rest_search_batch_refusal_keep_alive_and_restart(market):
    _, body, _ = await rest_get(
        market.rest_url, "/stable/search-name?query=apple&apikey=k"
    )
    assert body[0] == {
        "symbol": "AAPL",
        "name": "Apple Inc.",
        "currency": "USD",
        "exchangeFullName": "NASDAQ",
        "exchange": "NASDAQ",
    }
    _, body, _ = await rest_get(
        market.rest_url, "/stable/search-symbol?query=btc&apikey=k"
    )
    assert "BTCUSD" in [r["symbol"] for r in body]

    market.rest_batch_status = 402  # some plans: batch endpoints are "Premium"
    status, body, _ = await rest_get(
        market.rest_url, "/stable/batch-quote?symbols=AAPL&apikey=k"
    )
    assert status == 402 and "Premium" in body["Error Message"]
    assert (await rest_get(market.rest_url, "/stable/quote?symbol=AAPL&apikey=k"))[
        0
    ] == 200

    def two_requests_on_one_connection() -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", market.rest_port, timeout=30)
        try:
            statuses = []
            for _ in range(2):
                conn.request("GET", "/stable/quote?symbol=MSFT&apikey=k")
                response = conn.getresponse()
                assert json.loads(response.read())[0]["symbol"] == "MSFT"
                statuses.append(response.status)
            return statuses
        finally:
            conn.close()

    assert await asyncio.to_thread(two_requests_on_one_connection) == [200, 200]
    port = market.rest_port
    await market.restart()
    assert market.rest_port == port
    assert (await rest_get(market.rest_url, "/stable/quote?symbol=AAPL&apikey=k"))[
        0
    ] == 200


def _trade_times(late_probability: float) -> list[list[int]]:
    """Per symbol, the timestamps of the simulator's trades in sending order."""
    import random

    from realtime.upstream.simulator.market import Market

    market = Market(seed=5, any_symbol=True, trading_day=date(2026, 12, 7))
    frames = market.legacy_frames(
        ["AAPL", "MSFT"], 2000, random.Random(5), 0.0, 0.0, late_probability
    )
    times: dict[str, list[int]] = {}
    for frame in frames:
        for event in protocol.parse_frame(frame):
            if isinstance(event, Tick) and event.kind == "T":
                times.setdefault(event.symbol, []).append(event.timestamp)
    return list(times.values())


def test_the_simulator_sends_late_trades_only_when_asked():
    def late_gaps(series):
        return [a - b for s in series for a, b in zip(s, s[1:], strict=False) if b < a]

    assert late_gaps(_trade_times(0.0)) == []
    gaps = late_gaps(_trade_times(0.2))
    assert len(gaps) > 100  # about a fifth of 2000 trades
    # Stamped 0.2-1.5 s early: never more than that behind the trade before.
    assert all(0 < gap <= 1_600 for gap in gaps), max(gaps)
    assert max(gaps) >= 1_000
