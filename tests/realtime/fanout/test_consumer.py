"""PriceStreamConsumer speaks PROTOCOL.md exactly, and bad input never costs the
connection (tested the way channels tests itself, with WebsocketCommunicator)."""

from __future__ import annotations

import json

import orjson
import pytest
from channels.testing import WebsocketCommunicator

from fmpsite.asgi import application
from realtime.backends import backends
from realtime.fanout.hubs import close_hub, current_hub
from realtime.feed.state import encode_price_update, merge_tick
from realtime.upstream.protocol import Tick
from tests.factories import update

PATH = "/api/v2/realtime/ws/prices"


@pytest.fixture(autouse=True)
async def _hub_closed_after_test():
    yield
    await close_hub()


async def connect(path: str = PATH, headers=None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_json_from() == {
        "type": "connected",
        "message": "Connected to real-time price stream",
    }
    return comm


def seed(symbol: str, price: float, kind: str = "T"):
    state = merge_tick(
        None,
        Tick(
            symbol=symbol,
            timestamp=1_699_564_800_000,
            kind=kind,
            last_price=price,
            last_size=100,
            ask_price=price + 0.01,
            ask_size=500,
            bid_price=price - 0.01,
            bid_size=300,
        ),
        "2024-11-10T12:00:00.000+00:00",
    )
    backends().cache.put(state)
    return state


async def receive_ack(comm: WebsocketCommunicator) -> dict:
    """The ``subscription`` ack and the ``subscriptions`` list that follows it."""
    ack = await comm.receive_json_from()
    assert ack["type"] == "subscription", ack
    full = await comm.receive_json_from()
    assert full["type"] == "subscriptions", full
    return ack


async def assert_still_open(comm: WebsocketCommunicator) -> None:
    await comm.send_json_to({"action": "ping"})
    reply = await comm.receive_json_from()
    assert reply["type"] == "pong"


async def test_subscribe_acknowledges_added_symbols_and_total():
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["aapl", " msft "]})
    ack = await comm.receive_json_from()
    # The epoch names the sequence space of the "seq" numbers (docs/protocol.md).
    assert isinstance(ack.pop("epoch"), str)
    assert ack == {
        "type": "subscription",
        "action": "subscribed",
        "symbols": ["AAPL", "MSFT"],
        "subscribed_total": 2,
    }
    assert await comm.receive_json_from() == {
        "type": "subscriptions",
        "symbols": ["AAPL", "MSFT"],
    }
    await comm.send_json_to({"action": "subscribe", "symbols": "TSLA"})
    ack = await comm.receive_json_from()
    assert ack["symbols"] == ["TSLA"] and ack["subscribed_total"] == 3
    # The ack names what the request changed; the full list follows it (issue 18).
    full = await comm.receive_json_from()
    assert full == {"type": "subscriptions", "symbols": ["AAPL", "MSFT", "TSLA"]}
    await comm.disconnect()


async def test_subscribe_sends_snapshot_of_cached_symbols_after_ack():
    state = seed("AAPL", 189.45)
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
    assert (await comm.receive_json_from())["type"] == "subscription"
    assert (await comm.receive_json_from())["type"] == "subscriptions"
    snapshot = await comm.receive_json_from()
    assert isinstance(snapshot.pop("epoch"), str)  # snapshots name the seq space
    assert snapshot == {**orjson.loads(encode_price_update(state)), "snapshot": True}
    assert snapshot["last_price"] == 189.45 and snapshot["data_type"] == "T"
    assert await comm.receive_nothing(0.1)  # MSFT has no cached data: no snapshot
    await comm.disconnect()


async def test_live_updates_reach_only_subscribers_of_the_symbol():
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    await receive_ack(comm)
    hub = current_hub()
    text = encode_price_update(seed("AAPL", 190.0))
    hub.deliver(update("MSFT", encode_price_update(seed("MSFT", 400.0))))
    hub.deliver(update("AAPL", text))
    assert await comm.receive_from() == text
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()


async def test_unsubscribe_stops_updates_and_reports_total():
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
    await receive_ack(comm)
    await comm.send_json_to({"action": "unsubscribe", "symbols": ["aapl", "GOOG"]})
    assert await comm.receive_json_from() == {
        "type": "subscription",
        "action": "unsubscribed",
        "symbols": ["AAPL"],
        "subscribed_total": 1,
    }
    assert await comm.receive_json_from() == {
        "type": "subscriptions",
        "symbols": ["MSFT"],
    }
    current_hub().deliver(update("AAPL", encode_price_update(seed("AAPL", 1.0))))
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()


async def test_get_subscriptions_lists_this_connections_symbols():
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["MSFT", "AAPL"]})
    await receive_ack(comm)
    await comm.send_json_to({"action": "get_subscriptions"})
    assert await comm.receive_json_from() == {
        "type": "subscriptions",
        "symbols": ["MSFT", "AAPL"],
    }
    await comm.disconnect()


async def test_ping_gets_pong_with_server_time():
    comm = await connect()
    await comm.send_json_to({"action": "ping"})
    reply = await comm.receive_json_from()
    assert reply["type"] == "pong" and isinstance(reply["timestamp"], int)
    await comm.disconnect()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "Invalid JSON"),
        ("[1, 2]", "Message must be a JSON object, got array"),
        ('"subscribe"', "Message must be a JSON object, got string"),
        ("{}", "Missing 'action' field"),
        ('{"action": "subscrbe"}', "Unknown action: 'subscrbe'"),
        ('{"action": 5}', "Unknown action: 5"),
        ('{"action": "subscribe"}', "Missing 'symbols' field"),
        (
            '{"action": "subscribe", "symbols": 7}',
            "'symbols' must be a string or a list",
        ),
    ],
)
async def test_bad_message_gets_error_naming_problem_and_connection_stays(
    raw, expected
):
    comm = await connect()
    await comm.send_to(text_data=raw)
    reply = await comm.receive_json_from()
    assert reply["type"] == "error"
    assert expected in reply["message"]
    await assert_still_open(comm)
    await comm.disconnect()


async def test_invalid_symbols_are_named_and_valid_ones_still_subscribed():
    comm = await connect()
    await comm.send_json_to(
        {"action": "subscribe", "symbols": ["AAPL", "BAD SYMBOL!", 42, "^GSPC"]}
    )
    first = await comm.receive_json_from()
    assert first["type"] == "error"
    assert "'BAD SYMBOL!'" in first["message"] and "42" in first["message"]
    ack = await comm.receive_json_from()
    assert ack["symbols"] == ["AAPL", "^GSPC"] and ack["subscribed_total"] == 2
    await comm.disconnect()


async def test_symbol_limit_subscribes_what_fits_and_names_the_rest(settings):
    settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION = 3
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["A", "B"]})
    await receive_ack(comm)
    await comm.send_json_to({"action": "subscribe", "symbols": ["C", "D", "E"]})
    # Errors about a request come before its ack (docs/protocol.md).
    error = await comm.receive_json_from()
    assert error["type"] == "error" and error["code"] == "symbol_limit"
    assert "D, E" in error["message"] and "3" in error["message"]
    ack = await comm.receive_json_from()
    assert ack["symbols"] == ["C"] and ack["subscribed_total"] == 3
    assert (await comm.receive_json_from())["symbols"] == ["A", "B", "C"]
    await assert_still_open(comm)
    await comm.disconnect()


async def test_oversized_message_is_refused_with_its_size(settings):
    settings.REALTIME_MAX_MESSAGE_BYTES = 100
    comm = await connect()
    big = json.dumps({"action": "subscribe", "symbols": ["AAPL"] * 40})
    await comm.send_to(text_data=big)
    reply = await comm.receive_json_from()
    assert reply["code"] == "message_too_large"
    assert f"{len(big)} bytes" in reply["message"]
    await assert_still_open(comm)
    await comm.disconnect()


async def test_binary_frame_gets_error():
    comm = await connect()
    await comm.send_to(bytes_data=b"\x00\x01")
    reply = await comm.receive_json_from()
    assert reply["code"] == "binary_not_supported"
    await assert_still_open(comm)
    await comm.disconnect()


async def test_rate_limit_errors_then_flood_closes_4008(settings):
    settings.REALTIME_RATE_LIMIT = 1
    settings.REALTIME_RATE_BURST = 2
    settings.REALTIME_FLOOD_CLOSE_AFTER = 3
    comm = await connect()
    for _ in range(2):
        await comm.send_json_to({"action": "ping"})
        assert (await comm.receive_json_from())["type"] == "pong"
    await comm.send_json_to({"action": "ping"})
    reply = await comm.receive_json_from()
    assert reply["type"] == "error" and reply["code"] == "rate_limited"
    for _ in range(5):
        await comm.send_json_to({"action": "ping"})
    close = None
    for _ in range(6):
        message = await comm.receive_output()
        if message["type"] == "websocket.close":
            close = message
            break
    assert close is not None and close["code"] == 4008


async def test_anonymous_refused_at_handshake_when_not_allowed(settings):
    settings.REALTIME_ALLOW_ANONYMOUS = False
    comm = WebsocketCommunicator(application, PATH)
    connected, code = await comm.connect()
    assert not connected  # daphne turns this close into HTTP 403 (e2e test)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["header", "query"])
async def test_token_holder_connects_when_anonymous_refused(settings, how):
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    settings.REALTIME_ALLOW_ANONYMOUS = False

    @database_sync_to_async
    def make_token():
        user = User.objects.create_user("bob", password="x")
        return Token.objects.create(user=user).key

    key = await make_token()
    if how == "header":
        comm = await connect(headers=[(b"authorization", f"Token {key}".encode())])
    else:
        comm = await connect(path=f"{PATH}?token={key}")
    await assert_still_open(comm)
    await comm.disconnect()
    bad = WebsocketCommunicator(application, f"{PATH}?token=wrong")
    connected, code = await bad.connect()
    assert not connected  # daphne turns this close into HTTP 403 (e2e test)


async def test_foreign_origin_refused_and_missing_origin_allowed():
    foreign = WebsocketCommunicator(
        application, PATH, headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await foreign.connect()
    assert not connected
    same = await connect(headers=[(b"origin", b"http://localhost:8000")])
    await same.disconnect()
    no_origin = await connect()
    await no_origin.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_session_user_connects_when_anonymous_refused(settings):
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import User
    from django.test import Client

    settings.REALTIME_ALLOW_ANONYMOUS = False

    @database_sync_to_async
    def session_cookie() -> str:
        client = Client()
        client.force_login(User.objects.create_user("carol", password="x"))
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    key = await session_cookie()
    comm = await connect(
        headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())]
    )
    await assert_still_open(comm)
    await comm.disconnect()
    forged = WebsocketCommunicator(
        application,
        PATH,
        headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}=forged".encode())],
    )
    connected, _ = await forged.connect()
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_per_user_connection_cap_refuses_one_more_until_one_closes(settings):
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    settings.REALTIME_MAX_CONNECTIONS_PER_USER = 2

    @database_sync_to_async
    def make_token():
        return Token.objects.create(
            user=User.objects.create_user("dave", password="x")
        ).key

    auth = [(b"authorization", f"Token {await make_token()}".encode())]
    first = await connect(headers=auth)
    second = await connect(headers=auth)
    third = WebsocketCommunicator(application, PATH, headers=auth)
    connected, _ = await third.connect()
    assert not connected
    anonymous = await connect()  # the cap is per user, not global
    await first.disconnect()  # returns once the consumer has detached
    fourth = await connect(headers=auth)
    await assert_still_open(fourth)
    for comm in (second, fourth, anonymous):
        await comm.disconnect()


async def test_refused_symbols_reach_subscribers_and_later_subscribers_at_once():
    """FMP refusing a ticker is an ``upstream_refused`` error naming the client's own
    symbols, not ``subscribed`` then silence; a later subscriber hears it first."""
    first = await connect()
    await first.send_json_to({"action": "subscribe", "symbols": ["RFA", "RFB"]})
    await receive_ack(first)
    hub = current_hub()
    assert hub is not None
    hub.deliver_refused(["RFA", "RFZ"], "you are not authorized to access RFA")
    error = await first.receive_json_from()
    assert error["type"] == "error" and error["code"] == "upstream_refused"
    assert error["symbols"] == ["RFA"]
    assert "RFA" in error["message"] and "not authorized" in error["message"]
    second = await connect()
    await second.send_json_to({"action": "subscribe", "symbols": ["RFZ", "RFB"]})
    early = await second.receive_json_from()
    assert early["code"] == "upstream_refused" and early["symbols"] == ["RFZ"]
    ack = await receive_ack(second)
    assert ack["symbols"] == ["RFZ", "RFB"]  # still subscribed: FMP may allow it later
    # A tick for a refused symbol means FMP serves it now: no more early errors.
    text = encode_price_update(seed("RFZ", 1.0))
    hub.deliver(update("RFZ", text, 1_699_564_800_000))
    await second.receive_json_from()
    assert hub.refusals_for(["RFZ"]) == {}
    await first.disconnect()
    await second.disconnect()


async def test_subscribe_the_store_cannot_serve_gets_retryable_error_then_retry_works(
    monkeypatch,
):
    """A snapshot read that fails (Redis down, no pooled connection) undoes the
    subscribe and says so, retryable; the connection stays and a retry works."""
    import redis

    seed("AAPL", 190.0)
    cache = backends().cache
    real = cache.aget_many
    failures = [redis.ConnectionError("No connection available.")]

    async def flaky(symbols):
        if failures:
            raise failures.pop()
        return await real(symbols)

    monkeypatch.setattr(cache, "aget_many", flaky)
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    error = await comm.receive_json_from()
    assert error["type"] == "error"
    assert error["code"] == "unavailable"
    assert error["retryable"] is True
    assert error["symbols"] == ["AAPL"]
    await comm.send_json_to({"action": "get_subscriptions"})
    assert (await comm.receive_json_from())["symbols"] == []
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    ack = await receive_ack(comm)
    assert ack["symbols"] == ["AAPL"]
    snapshot = await comm.receive_json_from()
    assert snapshot["symbol"] == "AAPL" and snapshot["snapshot"] is True
    await comm.disconnect()
