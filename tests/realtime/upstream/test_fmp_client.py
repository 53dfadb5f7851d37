"""FmpClient against the simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import defaultdict

import pytest

from realtime.upstream.client import FmpClient
from realtime.upstream.config import FmpConfig
from realtime.upstream.protocol import Heartbeat, LoginResult, Tick
from realtime.upstream.simulator import FmpSimulator
from tests.live import async_wait_until, free_port

KEY = "test-key-0123456789"


class Ticks:
    """An ``on_tick`` that keeps what it got."""

    def __init__(self) -> None:
        self.items: list[Tick] = []

    def __call__(self, tick: Tick) -> None:
        self.items.append(tick)

    def symbols(self, since: int = 0) -> set[str]:
        return {t.symbol for t in self.items[since:]}


async def connected(client: FmpClient, within: float = 5.0) -> None:
    await async_wait_until(
        lambda: client.state == "connected", within, f"connected ({client.state})"
    )


async def subscribed(sim: FmpSimulator, symbols: set[str], within=5.0) -> None:
    await async_wait_until(
        lambda: sim.connection_subscriptions() == [frozenset(symbols)],
        within,
        f"one connection subscribed to {sorted(symbols)}, "
        f"got {sim.connection_subscriptions()}",
    )


async def test_logs_in_subscribes_and_receives_ticks_for_exactly_those_symbols(
    simulator, make_client
):
    ticks = Ticks()
    events: list[object] = []
    client = make_client(on_tick=ticks, on_event=events.append)
    client.set_symbols(["aapl", "MSFT"])
    assert client.upstream_symbols == {"AAPL", "MSFT"}
    await client.start()
    await connected(client)
    await subscribed(simulator, {"AAPL", "MSFT"})
    await async_wait_until(
        lambda: ticks.symbols() == {"AAPL", "MSFT"}, 60, "ticks for both symbols"
    )
    assert client.subscribed_symbols == {"AAPL", "MSFT"}
    assert LoginResult(True, 200, "Authenticated") in events
    logins = [f for f in simulator.received_frames if f.get("event") == "login"]
    assert logins == [{"event": "login", "data": {"apiKey": KEY}}]
    subs = [f for f in simulator.received_frames if f.get("event") == "subscribe"]
    assert subs == [{"event": "subscribe", "data": {"ticker": ["aapl", "msft"]}}]
    assert all(t.kind in ("T", "Q", "B") for t in ticks.items)
    assert client.last_frame_at is not None and client.reconnect_attempts == 0


async def test_proceeds_as_logged_in_when_the_server_never_acknowledges(make_client):
    sim = FmpSimulator(rate=100.0, seed=1, send_login_ack=False)
    await sim.start()
    try:
        ticks = Ticks()
        client = make_client(url=sim.url, on_tick=ticks, login_timeout=0.2)
        client.set_symbols(["IBM"])
        await client.start()
        await connected(client)
        await subscribed(sim, {"IBM"})
        await async_wait_until(lambda: ticks.items, 60, "ticks without a login ack")
        await client.stop()
    finally:
        await sim.stop()


async def test_add_and_remove_change_the_upstream_set_and_remove_stops_ticks(
    simulator, make_client
):
    ticks = Ticks()
    client = make_client(on_tick=ticks)
    await client.start()
    await connected(client)
    client.add(["AAPL", "TSLA"])
    await subscribed(simulator, {"AAPL", "TSLA"})
    client.remove(["TSLA"])
    await subscribed(simulator, {"AAPL"})
    assert client.subscribed_symbols == {"AAPL"}
    mark = len(ticks.items)
    await async_wait_until(
        lambda: len(ticks.items) > mark + 20, 60, "more ticks after remove"
    )
    assert ticks.symbols(since=mark + 5) == {"AAPL"}
    unsubs = [f for f in simulator.received_frames if f.get("event") == "unsubscribe"]
    assert unsubs == [{"event": "unsubscribe", "data": {"ticker": ["tsla"]}}]


async def test_subscriptions_are_sent_in_batches(simulator, make_client):
    client = make_client(subscribe_batch=2)
    client.set_symbols(["A", "B", "C", "D", "E"])
    await client.start()
    await subscribed(simulator, {"A", "B", "C", "D", "E"})
    subs = [f for f in simulator.received_frames if f.get("event") == "subscribe"]
    assert [f["data"]["ticker"] for f in subs] == [["a", "b"], ["c", "d"], ["e"]]


async def test_desired_set_is_recorded_while_disconnected_and_sent_on_connect(
    make_client,
):
    port = free_port()
    client = make_client(url=f"ws://127.0.0.1:{port}", reconnect_cap=0.05)
    await client.start()
    client.set_symbols(["NVDA", "AMD"])
    await async_wait_until(
        lambda: client.reconnect_attempts >= 1, 60, "a failed connection attempt"
    )
    assert client.state == "reconnecting" and client.subscribed_symbols == frozenset()
    assert "ConnectionRefused" in (client.last_error or "")
    sim = FmpSimulator(port=port, rate=50.0, seed=2)
    await sim.start()
    try:
        await subscribed(sim, {"NVDA", "AMD"})
        await connected(client)
        assert client.last_error is None
    finally:
        await client.stop()
        await sim.stop()


async def test_reconnect_after_drop_logs_in_and_resubscribes_full_set(
    simulator, make_client
):
    ticks = Ticks()
    states: list[str] = []
    client = make_client(on_tick=ticks, on_state_change=states.append)
    client.set_symbols(["AAPL", "MSFT", "GOOGL"])
    await client.start()
    await subscribed(simulator, {"AAPL", "MSFT", "GOOGL"})
    for round_ in (2, 3):
        await simulator.drop_connections()
        await async_wait_until(
            lambda r=round_: simulator.logins >= r, 60, f"login number {round_}"
        )
        await subscribed(simulator, {"AAPL", "MSFT", "GOOGL"})
        await connected(client)
    mark = len(ticks.items)
    await async_wait_until(lambda: len(ticks.items) > mark, 60, "ticks after reconnect")
    assert "reconnecting" in states and states[-1] == "connected"
    assert simulator.max_open_connections == 1
    logins = [f for f in simulator.received_frames if f.get("event") == "login"]
    assert len(logins) == 3


async def test_reconnects_after_the_server_restarts_on_the_same_port(
    simulator, make_client
):
    client = make_client()
    client.set_symbols(["AAPL"])
    await client.start()
    await subscribed(simulator, {"AAPL"})
    await simulator.restart()
    await subscribed(simulator, {"AAPL"})
    await connected(client)


async def test_refused_login_reports_unauthorized_and_never_loops_tightly(
    simulator, make_client, caplog
):
    simulator.refuse_logins()
    states: list[str] = []
    client = make_client(
        reconnect_base=0.001,
        reconnect_cap=0.001,
        fatal_backoff=0.4,
        on_state_change=states.append,
    )
    client.set_symbols(["AAPL"])
    await client.start()
    await async_wait_until(
        lambda: client.state == "disconnected", 60, "disconnected after refusal"
    )
    assert "Unauthorized" in client.last_error
    started, attempts0 = time.monotonic(), simulator.login_attempts
    await asyncio.sleep(1.0)  # the window in which attempts are counted
    window = time.monotonic() - started
    attempts = simulator.login_attempts - attempts0
    assert attempts <= window / 0.4 + 1, f"{attempts} logins in {window:.1f}s"
    assert simulator.logins == 0 and simulator.subscribed_symbols() == frozenset()
    assert "event=upstream_login_refused" in caplog.text
    simulator.refuse_logins(False)
    await subscribed(simulator, {"AAPL"})
    await connected(client)
    assert client.last_error is None


async def test_malformed_frames_are_skipped_and_the_stream_continues(
    simulator, make_client, caplog
):
    ticks = Ticks()
    client = make_client(on_tick=ticks)
    client.set_symbols(["AAPL"])
    await client.start()
    await async_wait_until(lambda: ticks.items, 60, "first ticks")
    caplog.set_level(logging.WARNING, logger="realtime.upstream.client")
    await simulator.send_malformed()
    await simulator.send_malformed(['{"s": "aapl", "type": "X", "t": 1}'])
    await async_wait_until(
        lambda: caplog.text.count("event=upstream_malformed") >= 5,
        60,
        "malformed frames logged",
    )
    mark = len(ticks.items)
    await async_wait_until(lambda: len(ticks.items) > mark + 5, 60, "ticks go on")
    assert client.state == "connected" and simulator.logins == 1
    assert "unknown tick type 'X'" in caplog.text


async def test_silent_connection_is_replaced_by_the_idle_watchdog(
    simulator, make_client
):
    ticks = Ticks()
    # Pings off: the silenced simulator still answers pings, and pongs count as
    # life (test_pongs_keep_a_quiet_connection_alive...).
    client = make_client(
        on_tick=ticks, idle_timeout=0.5, login_timeout=0.2, ping_interval=0
    )
    client.set_symbols(["AAPL"])
    await client.start()
    await async_wait_until(lambda: ticks.items, 60, "first ticks")
    simulator.silence()
    await async_wait_until(
        lambda: simulator.logins >= 2, 60, "a new connection replacing the silent one"
    )
    assert "no frame" in (client.last_error or "") or client.state == "connected"
    simulator.silence(False)
    await subscribed(simulator, {"AAPL"})
    mark = len(ticks.items)
    await async_wait_until(lambda: len(ticks.items) > mark, 60, "ticks again")


async def test_heartbeats_keep_an_idle_connection_alive(simulator, make_client):
    events: list[object] = []
    client = make_client(idle_timeout=0.6, on_event=events.append)
    await client.start()  # no symbols: only heartbeats arrive (every 0.2 s)
    await connected(client)
    await asyncio.sleep(1.5)
    assert simulator.logins == 1 and client.state == "connected"
    assert any(isinstance(e, Heartbeat) for e in events)
    assert client.last_heartbeat_at is not None


async def test_kicked_by_a_second_login_with_the_same_key_backs_off_long(
    simulator, make_client, caplog
):
    first = make_client(slot_backoff=30.0, fatal_backoff=60.0)
    first.set_symbols(["AAPL"])
    await first.start()
    await subscribed(simulator, {"AAPL"})
    second = make_client()
    second.set_symbols(["MSFT"])
    await second.start()
    await async_wait_until(
        lambda: first.state == "disconnected", 60, "first client kicked"
    )
    assert "another location" in first.last_error
    kicked = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and "event=upstream_kicked" in r.getMessage()
    ]
    assert kicked, caplog.text
    assert "same_api_key" in kicked[0].getMessage()
    await subscribed(simulator, {"MSFT"})
    await asyncio.sleep(0.5)
    assert simulator.logins == 2, "the kicked client came back before slot_backoff"
    assert simulator.connection_subscriptions() == [frozenset({"MSFT"})]


async def test_api_key_never_appears_in_logs_or_errors(simulator, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    key = "sEcReT-kEy-42"
    client = make_client(
        api_key=key, url=f"{simulator.url}/?apikey={key}", on_tick=Ticks()
    )
    client.set_symbols(["AAPL"])
    await client.start()
    await subscribed(simulator, {"AAPL"})
    await simulator.send_malformed([f'{{"echo": "{key}"}}'])
    simulator.refuse_logins()
    await simulator.drop_connections()
    await async_wait_until(lambda: client.state == "disconnected", 60, "refused")
    await client.stop()
    dead = make_client(
        api_key=key, url=f"ws://127.0.0.1:{free_port()}/?apikey={key}", max_attempts=1
    )
    await dead.start()
    await async_wait_until(lambda: dead.state == "disconnected", 60, "gave up")
    assert "***" in caplog.text
    assert key not in caplog.text
    for record in caplog.records:
        assert key not in record.getMessage()
    assert key not in (client.last_error or "") and key not in (dead.last_error or "")


async def test_stream_protocol_delivers_only_desired_symbols_without_duplicates(
    make_client,
):
    sim = FmpSimulator(rate=400.0, seed=4, stream_symbols=["AAPL", "MSFT", "IBM"])
    await sim.start()
    try:
        ticks = Ticks()
        client = make_client(url=sim.url, protocol="stream", on_tick=ticks)
        client.set_symbols(["AAPL", "MSFT"])
        await client.start()
        await connected(client)
        await async_wait_until(lambda: len(ticks.items) >= 60, 60, "stream quotes")
        assert ticks.symbols() == {"AAPL", "MSFT"}
        seen: dict[str, set] = defaultdict(set)
        previous: dict[str, tuple] = {}
        for tick in ticks.items:
            key = (tick.last_price, tick.timestamp)
            assert previous.get(tick.symbol) != key, f"duplicate {tick}"
            previous[tick.symbol] = key
            seen[tick.symbol].add(key)
        assert all(t.kind == "T" and t.timestamp % 1000 == 0 for t in ticks.items)
        subs = [f for f in sim.received_frames if f.get("event") == "subscribe"]
        assert subs == [
            {"event": "subscribe", "data": {"stream": "fmp-us-equities-stream"}}
        ]
        assert client.subscribed_symbols == {"AAPL", "MSFT"}
        client.remove(["MSFT"])
        mark = len(ticks.items)
        await async_wait_until(lambda: len(ticks.items) > mark + 10, 60, "more quotes")
        assert ticks.symbols(since=mark) == {"AAPL"}
    finally:
        await sim.stop()


async def test_a_failing_on_tick_is_logged_and_the_stream_continues(
    simulator, make_client, caplog
):
    calls = []

    def explode(tick: Tick) -> None:
        calls.append(tick)
        if len(calls) == 1:
            raise RuntimeError("callback bug")

    client = make_client(on_tick=explode)
    client.set_symbols(["AAPL"])
    await client.start()
    await async_wait_until(lambda: len(calls) > 5, 60, "ticks after the failure")
    assert "event=on_tick_failed symbol=AAPL" in caplog.text
    assert "callback bug" in caplog.text and simulator.logins == 1


async def test_gives_up_after_max_attempts(make_client):
    states: list[str] = []
    client = make_client(
        url=f"ws://127.0.0.1:{free_port()}",
        max_attempts=2,
        on_state_change=states.append,
    )
    await client.start()
    await async_wait_until(lambda: client.state == "disconnected", 60, "gave up")
    assert client.reconnect_attempts == 2
    assert states == ["connecting", "reconnecting", "disconnected"]


async def test_attempt_counter_resets_once_a_connection_is_stable(
    simulator, make_client
):
    client = make_client(stable_after=0.3)
    await client.start()
    await connected(client)
    await simulator.drop_connections()
    await async_wait_until(lambda: simulator.logins >= 2, 60, "reconnected")
    await connected(client)
    assert client.reconnect_attempts >= 1
    await async_wait_until(
        lambda: client.reconnect_attempts == 0, 60, "counter reset after stable_after"
    )


def test_backoff_is_full_jitter_capped():
    client = FmpClient(
        FmpConfig(
            url="ws://127.0.0.1:1", api_key="k", reconnect_base=1.0, reconnect_cap=8.0
        ),
        on_tick=lambda t: None,
    )
    for attempt, ceiling in [(0, 1.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        client.reconnect_attempts = attempt
        delays = [client._backoff() for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2


def test_wss_urls_verify_certificates_with_certifi():
    client = FmpClient(
        FmpConfig(url="wss://example.invalid", api_key="k"), on_tick=print
    )
    context = client._ssl
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    plain = FmpClient(FmpConfig(url="ws://127.0.0.1:1", api_key="k"), on_tick=print)
    assert plain._ssl is None


def test_bad_protocol_is_rejected():
    with pytest.raises(ValueError, match="protocol"):
        FmpConfig(url="ws://x", api_key="k", protocol="rest")


async def test_stop_leaves_no_task_running(simulator, make_client):
    before = asyncio.all_tasks()
    client = make_client(on_tick=Ticks())
    client.set_symbols(["AAPL", "MSFT"])
    await client.start()
    await subscribed(simulator, {"AAPL", "MSFT"})
    assert len(asyncio.all_tasks() - before) >= 3  # run, reader, sender, watchdog
    await client.stop()
    assert client.state == "stopped"
    server_side = ("FmpSimulator", "serve.<locals>", "ServerConnection")
    leftover = [
        task
        for task in asyncio.all_tasks() - before
        if not task.done()
        and not any(name in repr(task.get_coro()) for name in server_side)
    ]
    assert leftover == []
    await async_wait_until(
        lambda: simulator.open_connections == 0, 60, "server saw the close"
    )
    await client.stop()  # idempotent
