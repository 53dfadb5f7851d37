"""Issue 13's real-FMP cases (and 12.7's key fragments) over real loopback sockets.

Each case is played by the simulator or by ``FakeFmp``, a scriptable server that
speaks what FMP was seen to send (FMP_UPSTREAM.md): TLS from a private CA, slot
refusals, refused streams and tickers, kicks delivered only as a close reason,
quote-only symbols, breaks, silent-but-alive sockets, stalled pongs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import ssl
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

from realtime.feed.cache import InProcessTickCache
from realtime.feed.service import FeedService
from realtime.feed.status import StatusStore
from realtime.upstream.client import FmpClient
from realtime.upstream.config import FmpConfig
from tests.live import async_wait_until
from tests.realtime.feed.test_feed import CollectingFanout, collecting_broker
from tests.realtime.upstream.fakefmp import FakeFmp, accept_login, read_json

KEY = "k3yFRAGMENTsecret2026"  # 21 characters


def config(url: str, **overrides) -> FmpConfig:
    values = dict(
        url=url,
        api_key=KEY,
        login_timeout=0.5,
        reconnect_base=0.02,
        reconnect_cap=0.1,
        fatal_backoff=5.0,
        slot_backoff=0.3,
        idle_timeout=5.0,
        stable_after=0.5,
    )
    values.update(overrides)
    return FmpConfig(**values)


@pytest.fixture
async def fakes():
    started: list[FakeFmp] = []

    async def start(script, **kwargs) -> FakeFmp:
        fake = await FakeFmp(script, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


@pytest.fixture
async def clients():
    built: list[FmpClient] = []

    def build(cfg: FmpConfig, **callbacks) -> FmpClient:
        callbacks.setdefault("on_tick", lambda tick: None)
        client = FmpClient(cfg, **callbacks)
        built.append(client)
        return client

    yield build
    for client in built:
        await client.stop()


async def serve_ticks_forever(ws, fake, frames=()):
    await accept_login(ws, fake)
    for frame in frames:
        await ws.send(frame)
    await fake.keep_reading(ws)


# --- 1. TLS: extra CA certificates, SSL_CERT_FILE, never verify-off ------------------


def _private_ca(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fmpsite test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-fmp")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem = tmp / "server.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = tmp / "server.key"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


@pytest.fixture
async def tls_fake(fakes, tmp_path):
    ca_pem, cert_pem, key_pem = _private_ca(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_pem, key_pem)
    fake = await fakes(serve_ticks_forever, ssl_context=server_context)
    return fake, ca_pem


async def test_private_ca_is_refused_without_the_setting_and_trusted_with_it(
    tls_fake, clients, monkeypatch, caplog
):
    fake, ca_pem = tls_fake
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    refused = clients(config(fake.url, max_attempts=1))
    await refused.start()
    await async_wait_until(lambda: refused.state == "disconnected", 60, "gave up")
    assert "TLS verification failed" in refused.last_error
    assert "FMP_CA_BUNDLE" in refused.problem
    assert fake.logins == []
    assert "event=upstream_connection_failed" in caplog.text

    trusted = clients(config(fake.url, ca_bundle=str(ca_pem)))
    await trusted.start()
    await async_wait_until(lambda: trusted.state == "connected", 60, "TLS login")
    assert len(fake.logins) == 1 and trusted.problem is None
    context = trusted._ssl
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_ssl_cert_file_is_honoured(tls_fake, clients, monkeypatch):
    fake, ca_pem = tls_fake
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    client = clients(config(fake.url))
    await client.start()
    await async_wait_until(lambda: client.state == "connected", 60, "TLS login")


def test_missing_ca_bundle_refuses_to_start(settings):
    settings.FMP_CA_BUNDLE = "/nonexistent/ca.pem"
    with pytest.raises(ImproperlyConfigured, match="ca_bundle"):
        FmpConfig.from_settings()


# --- 2. connection slot taken: escalating backoff, reset, /health words, close frame --


async def test_slot_refusals_escalate_then_reset_and_shutdown_sends_a_close_frame(
    fakes, clients, caplog
):
    refusals = {"left": 3}

    async def script(ws, fake):
        await read_json(ws)
        fake.logins.append(time.monotonic())
        if refusals["left"] > 0:
            refusals["left"] -= 1
            await ws.send(
                orjson.dumps(
                    {
                        "event": "login",
                        "status": 401,
                        "message": "Maximum number of connections reached",
                    }
                ).decode()
            )
            await ws.close(1008, "Maximum number of connections reached")
            return
        await ws.send('{"event": "login", "status": 200, "message": "Authenticated"}')
        await fake.keep_reading(ws)

    fake = await fakes(script)
    caplog.set_level(logging.INFO, logger="realtime.upstream.client")
    client = clients(config(fake.url, slot_backoff=0.3, fatal_backoff=1.0))
    problems: list[str | None] = []
    client.on_state_change = lambda state: problems.append(client.problem)
    await client.start()
    await async_wait_until(lambda: client.state == "connected", 60, "slot freed")
    # 0.3, 0.6, then capped at fatal_backoff=1.0 (not 1.2); no jitter.
    delays = [
        r.getMessage().split("delay=")[1].split()[0]
        for r in caplog.records
        if "kind=slot" in r.getMessage()
    ]
    assert delays == ["0.30", "0.60", "1.00"], caplog.text
    gaps = [b - a for a, b in zip(fake.logins, fake.logins[1:], strict=False)]
    assert all(gap >= d - 0.05 for gap, d in zip(gaps, (0.3, 0.6, 1.0), strict=True))
    assert any(p and "connection slot is taken" in p for p in problems), problems
    assert client.problem is None and client.slot_attempts == 3
    await async_wait_until(
        lambda: client.slot_attempts == 0, 60, "slot backoff reset after stable"
    )
    await client.stop()
    await async_wait_until(lambda: fake.open_connections == 0, 60, "closed")
    assert fake.close_codes[-1] == 1000, fake.close_codes


async def test_feed_status_names_the_slot_problem(fakes):
    async def script(ws, fake):
        await read_json(ws)
        await ws.send(
            '{"event": "login", "status": 401, '
            '"message": "Maximum number of connections reached"}'
        )

    fake = await fakes(script)
    feed = FeedService(
        upstream=config(fake.url, slot_backoff=30.0, fatal_backoff=60.0),
        cache=InProcessTickCache(),
        broker=collecting_broker(),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="t",
    )
    await feed.start()
    try:
        await async_wait_until(
            lambda: feed.status().upstream_problem, 60, "a problem reported"
        )
        status = feed.status()
        assert "connection slot is taken" in status.upstream_problem
        assert "Retrying in 30 s" in status.upstream_problem
        assert status.state == "disconnected"
        assert KEY not in status.upstream_problem
    finally:
        await feed.stop()


# --- 3. refused subscriptions reach status and clients -------------------------------


def _refuse(message: str) -> str:
    return orjson.dumps(
        {"event": "subscribe", "status": 401, "message": message}
    ).decode()


async def test_refused_stream_is_recorded_and_published_for_every_symbol(fakes):
    async def script(ws, fake):
        await accept_login(ws, fake)
        frame = await read_json(ws)
        fake.received.append(frame)
        await ws.send(
            _refuse("you are not authorized to access fmp-us-equities-stream")
        )
        await fake.keep_reading(ws)

    fake = await fakes(script)
    publisher = CollectingFanout()
    feed = FeedService(
        upstream=config(fake.url, protocol="stream"),
        cache=InProcessTickCache(),
        broker=collecting_broker(publisher),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="t",
    )
    feed.set_pins(["AAPL", "MSFT"])
    await feed.start()
    try:
        await async_wait_until(lambda: publisher.refused, 60, "refusal published")
        symbols, message = publisher.refused[0]
        assert symbols == ["AAPL", "MSFT"]
        assert "not authorized to access fmp-us-equities-stream" in message
        status = feed.status()
        assert list(status.refused_streams) == ["fmp-us-equities-stream"]
        assert set(status.refused_symbols) == {"AAPL", "MSFT"}
        assert "FMP refused the stream(s) fmp-us-equities-stream" in (
            status.upstream_problem
        )
        # A symbol wanted later on the refused stream is refused at once too.
        feed.set_pins(["AAPL", "MSFT", "TSLA"])
        await async_wait_until(
            lambda: any("TSLA" in s for s, _ in publisher.refused), 60, "TSLA refused"
        )
    finally:
        await feed.stop()


async def test_refused_tickers_are_named_and_accepted_ones_flow(fakes, clients):
    async def script(ws, fake):
        await accept_login(ws, fake)
        frame = await read_json(ws)
        fake.received.append(frame)
        await ws.send(_refuse("you are not authorized to access tsla"))
        await ws.send('{"s": "aapl", "t": 1701958248213, "type": "T", "lp": 190.5}')
        await fake.keep_reading(ws)

    fake = await fakes(script)
    refused: list[tuple[frozenset[str], str]] = []
    ticks = []
    client = clients(
        config(fake.url),
        on_tick=ticks.append,
        on_refused=lambda symbols, message: refused.append((symbols, message)),
    )
    client.set_symbols(["AAPL", "TSLA"])
    await client.start()
    await async_wait_until(lambda: refused and ticks, 60, "refusal and a tick")
    assert refused == [(frozenset({"TSLA"}), "you are not authorized to access tsla")]
    assert client.refused == {"TSLA": "you are not authorized to access tsla"}
    assert ticks[0].symbol == "AAPL"
    client.remove(["TSLA"])
    assert client.refused == {}


async def test_a_refusal_without_names_refuses_the_batch_it_answers(fakes, clients):
    async def script(ws, fake):
        await accept_login(ws, fake)
        await read_json(ws)
        await ws.send(_refuse("Forbidden"))
        await fake.keep_reading(ws)

    fake = await fakes(script)
    refused = []
    client = clients(config(fake.url), on_refused=lambda s, m: refused.append(s))
    client.set_symbols(["IBM", "ORCL"])
    await client.start()
    await async_wait_until(lambda: refused, 60, "refusal")
    assert refused == [frozenset({"IBM", "ORCL"})]


# --- 6. pings: 0 is off, timeouts named, pongs are life -------------------------------


async def test_ping_interval_zero_sends_no_pings(fakes, clients, caplog):
    server_log = logging.getLogger("tests.fakefmp.frames")
    caplog.set_level(logging.DEBUG, logger="tests.fakefmp.frames")

    async def script(ws, fake):
        await accept_login(ws, fake)
        for _ in range(30):
            await ws.send('{"event": "heartbeat", "timestamp": 1747473420000}')
            await asyncio.sleep(0.05)
        await fake.keep_reading(ws)

    fake = await fakes(script, logger=server_log)
    client = clients(config(fake.url, ping_interval=0, idle_timeout=0.6))
    await client.start()
    await async_wait_until(lambda: client.state == "connected", 60, "connected")
    await async_wait_until(
        lambda: caplog.text.count("> TEXT") >= 30, 60, "heartbeats sent by the server"
    )
    assert "< PING" not in caplog.text
    assert fake.connections == 1


async def test_pongs_keep_a_quiet_connection_alive_and_silence_without_them_does_not(
    fakes, clients
):
    async def quiet(ws, fake):  # logged in, then not one frame; pongs only
        await accept_login(ws, fake)
        await fake.keep_reading(ws)

    fake = await fakes(quiet)
    alive = clients(config(fake.url, ping_interval=0.1, idle_timeout=0.6))
    await alive.start()
    await async_wait_until(lambda: alive.state == "connected", 60, "connected")
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # several idle timeouts
        await asyncio.sleep(0.1)
        assert fake.connections == 1, "a quiet connection that pongs was replaced"
    await alive.stop()

    fake2 = await fakes(quiet)
    dead = clients(config(fake2.url, ping_interval=0, idle_timeout=0.6))
    await dead.start()
    await async_wait_until(lambda: fake2.connections >= 2, 60, "idle replacement")
    assert "no frame or pong" in (dead.last_error or "") or dead.state == "connected"


async def test_a_ping_timeout_is_logged_by_name(fakes, clients, caplog):
    done = asyncio.Event()

    async def deaf(ws, fake):  # stops reading: pings are never answered
        await accept_login(ws, fake)
        ws.transport.pause_reading()
        # Held until the test ends (not a fixed 60 s the teardown had to wait out).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 60)
        ws.transport.resume_reading()  # so the close handshake can finish

    fake = await fakes(deaf)
    client = clients(
        config(fake.url, ping_interval=0.2, ping_timeout=0.3, idle_timeout=30)
    )
    await client.start()
    await async_wait_until(
        lambda: "event=upstream_ping_timeout" in caplog.text, 60, "ping timeout"
    )
    await async_wait_until(
        lambda: "ping timeout" in (client.last_error or ""), 60, "named in last_error"
    )
    done.set()


def test_negative_ping_interval_is_refused_at_start(settings):
    with pytest.raises(ValueError, match="ping_interval"):
        FmpConfig(url="ws://x", api_key="k", ping_interval=-1)
    settings.FMP_PING_INTERVAL = -5
    with pytest.raises(ImproperlyConfigured, match="ping_interval"):
        FmpConfig.from_settings()


# --- 7. legacy clusters, kicks as close reasons, login hint ---------------------------


async def test_symbol_of_another_asset_class_on_a_legacy_cluster_is_reported(
    fakes, clients, caplog
):
    fake = await fakes(serve_ticks_forever)
    refused = []
    client = clients(
        config(fake.url, legacy_cluster="stocks"),
        on_refused=lambda s, m: refused.append((s, m)),
    )
    client.set_symbols(["AAPL", "BTCUSD", "EURUSD"])
    assert {s for symbols, _ in refused for s in symbols} == {"BTCUSD", "EURUSD"}
    message = dict((next(iter(s)), m) for s, m in refused)["BTCUSD"]
    assert "crypto" in message and "wss://crypto.financialmodelingprep.com" in message
    assert set(client.unservable) == {"BTCUSD", "EURUSD"}
    assert "event=upstream_cluster_mismatch symbol=BTCUSD" in caplog.text
    assert FmpConfig(
        url="wss://websockets.financialmodelingprep.com", api_key="k"
    ).cluster == ("stocks")
    assert (
        FmpConfig(
            url="wss://socket.financialmodelingprep.com", api_key="k", protocol="stream"
        ).cluster
        is None
    )


async def test_kick_delivered_only_as_a_close_reason_gets_the_slot_backoff(
    fakes, clients, caplog
):
    kicks = {"left": 1}

    async def script(ws, fake):
        await accept_login(ws, fake)
        if kicks["left"]:
            kicks["left"] -= 1
            await asyncio.sleep(0.1)
            await ws.close(1008, "Connected from another location")
            return
        await fake.keep_reading(ws)

    fake = await fakes(script)
    caplog.set_level(logging.INFO, logger="realtime.upstream.client")
    client = clients(config(fake.url, slot_backoff=0.8, reconnect_cap=0.05))
    await client.start()
    await async_wait_until(lambda: fake.connections >= 2, 60, "came back")
    gap = fake.connected_at[1] - fake.connected_at[0]
    assert gap >= 0.8, f"reconnected after {gap:.2f}s: an ordinary 1 s-style retry"
    assert "event=upstream_kicked_by_close" in caplog.text
    assert "kind=slot" in caplog.text


async def test_refused_legacy_login_hints_at_the_standard_socket(
    simulator, clients, caplog
):
    simulator.refuse_logins()
    client = clients(config(simulator.url, fatal_backoff=30.0))
    await client.start()
    await async_wait_until(lambda: client.state == "disconnected", 60, "refused")
    assert "FMP_PROTOCOL=stream" in client.problem
    assert "wss://socket.financialmodelingprep.com" in client.problem
    assert "hint=FMP_PROTOCOL=stream FMP_WS_URL=wss://socket" in caplog.text


# --- 4, 5, 8 through the feed: quote-only prices, numeric strings ---------------


async def test_quote_only_symbol_gets_a_mid_price_and_string_numbers_are_accepted(
    fakes,
):
    frames = [
        '{"s": "eurusd", "t": 1701958248213, "type": "Q", "ap": 1.07865,'
        ' "as": 1000000, "bp": 1.07856, "bs": 1000000}',
        '{"s": "aapl", "t": "1701958248213", "type": "T", "lp": "190.5", "ls": "100"}',
    ]

    async def script(ws, fake):
        await accept_login(ws, fake)
        await read_json(ws)
        for frame in frames:
            await ws.send(frame)
        await fake.keep_reading(ws)

    fake = await fakes(script)
    publisher = CollectingFanout()
    feed = FeedService(
        upstream=config(fake.url),
        cache=InProcessTickCache(),
        broker=collecting_broker(publisher),
        status_store=StatusStore(),
        source="fmp",
        api_configured=True,
        owner="t",
    )
    feed.set_pins(["EURUSD", "AAPL"])
    await feed.start()
    try:
        await async_wait_until(lambda: len(publisher.published) >= 2, 60, "updates")
        updates = dict(publisher.published)
        forex = updates["EURUSD"]
        assert forex["last_price"] == pytest.approx(1.078605)
        assert forex["mid_price"] == forex["last_price"]
        assert forex["price_source"] == "mid" and forex["last_size"] is None
        stock = updates["AAPL"]
        assert (stock["last_price"], stock["last_size"]) == (190.5, 100)
        assert stock["timestamp"] == 1701958248213
        assert "price_source" not in stock and "mid_price" not in stock
    finally:
        await feed.stop()


# --- issue 12.7: no key fragment in websockets' DEBUG lines ---------------------------


def echo_frames(key: str) -> list[str]:
    """Frames over 100 characters that echo ``key`` where websockets' DEBUG line
    cuts them ("head...tail", 48 + 24 characters of the repr): the key straddles
    the head's end in one and the tail's start in the other."""
    head = '{"event": "error", "message": "'
    across_head = head + "x" * (31 - len(head)) + key
    across_head += " " + "y" * 120 + '"}'
    across_tail = head + "z" * 120 + " " + key + ' ok"}'
    return [across_head, across_tail]


async def test_no_key_fragment_reaches_debug_logs_when_a_long_frame_echoes_it(
    fakes, clients, caplog
):
    async def echo(ws, fake):
        login = await read_json(ws)
        for frame in echo_frames(login["data"]["apiKey"]):
            await ws.send(frame)
        await ws.send('{"event": "login", "status": 200, "message": "Authenticated"}')
        await fake.keep_reading(ws)

    caplog.set_level(logging.DEBUG)
    fake = await fakes(echo)
    key20 = KEY[:20]
    client = clients(replace(config(fake.url), api_key=key20))
    await client.start()
    await async_wait_until(lambda: client.state == "connected", 60, "connected")
    await client.stop()
    text = caplog.text
    assert "< TEXT" in text, "websockets' frame lines were not logged at DEBUG"
    leaks = {
        key20[i : i + 6] for i in range(len(key20) - 5) if key20[i : i + 6] in text
    }
    assert leaks == set(), f"key fragments in the log: {leaks}"
