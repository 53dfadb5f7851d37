"""``max_rate`` and ``data_types`` on the WebSocket (docs/protocol.md, "Rate caps
and filters"): refused by name with the connection and the subscription set
unchanged, reported by ``get_subscriptions``, snapshots unfiltered."""

from __future__ import annotations

import pytest

from realtime.fanout.hubs import close_hub, current_hub
from realtime.feed.state import encode_price_update
from tests.factories import update
from tests.realtime.fanout.test_consumer import (
    assert_still_open,
    connect,
    receive_ack,
    seed,
)


@pytest.fixture(autouse=True)
async def _hub_closed_after_test():
    yield
    await close_hub()


async def get_subscriptions(comm) -> dict:
    await comm.send_json_to({"action": "get_subscriptions"})
    return await comm.receive_json_from()


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"max_rate": "fast"}, "invalid_max_rate"),
        ({"max_rate": -2}, "invalid_max_rate"),
        ({"max_rate": 0.01}, "invalid_max_rate"),
        ({"data_types": ["T", "X"]}, "unknown_data_type"),
        ({"data_types": []}, "unknown_data_type"),
    ],
)
async def test_a_bad_cap_or_filter_is_refused_and_changes_nothing(extra, code):
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    await receive_ack(comm)
    await comm.send_json_to(
        {"action": "subscribe", "symbols": ["AAPL", "MSFT"], **extra}
    )
    error = await comm.receive_json_from()
    assert error["type"] == "error" and error["code"] == code, error
    assert await comm.receive_nothing(0.1)  # no ack: nothing was subscribed
    assert await get_subscriptions(comm) == {
        "type": "subscriptions",
        "symbols": ["AAPL"],
    }
    await assert_still_open(comm)
    await comm.disconnect()


async def test_a_cap_above_the_ceiling_is_refused_naming_it(settings):
    settings.REALTIME_MAX_RATE_CEILING = 5
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"], "max_rate": 6})
    error = await comm.receive_json_from()
    assert error["code"] == "invalid_max_rate"
    assert "maximum of 5" in error["message"]
    # Without max_rate the ceiling is the subscription's cap.
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    await receive_ack(comm)
    assert (await get_subscriptions(comm))["options"] == {"AAPL": {"max_rate": 5}}
    await comm.disconnect()


async def test_get_subscriptions_reports_caps_and_filters_per_symbol():
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
    await receive_ack(comm)
    await comm.send_json_to(
        {
            "action": "subscribe",
            "symbols": ["MSFT", "TSLA"],
            "max_rate": 4,
            "data_types": ["T"],
        }
    )
    await receive_ack(comm)
    assert await get_subscriptions(comm) == {
        "type": "subscriptions",
        "symbols": ["AAPL", "MSFT", "TSLA"],
        "options": {
            "MSFT": {"max_rate": 4, "data_types": ["T"]},
            "TSLA": {"max_rate": 4, "data_types": ["T"]},
        },
    }
    # Naming only max_rate changes only the cap; 0 lifts it.
    await comm.send_json_to({"action": "subscribe", "symbols": ["TSLA"], "max_rate": 0})
    await receive_ack(comm)
    assert (await get_subscriptions(comm))["options"] == {
        "MSFT": {"max_rate": 4, "data_types": ["T"]},
        "TSLA": {"data_types": ["T"]},
    }
    await comm.disconnect()


async def test_the_server_default_caps_subscriptions_without_max_rate(settings):
    settings.REALTIME_DEFAULT_MAX_RATE = 2
    comm = await connect()
    await comm.send_json_to({"action": "subscribe", "symbols": ["AAPL"]})
    await receive_ack(comm)
    await comm.send_json_to({"action": "subscribe", "symbols": ["MSFT"], "max_rate": 8})
    await receive_ack(comm)
    assert (await get_subscriptions(comm))["options"] == {
        "AAPL": {"max_rate": 2},
        "MSFT": {"max_rate": 8},
    }
    await comm.disconnect()


async def test_trades_only_gets_its_snapshot_but_no_quotes():
    seed("AAPL", 189.0, kind="Q")
    comm = await connect()
    await comm.send_json_to(
        {"action": "subscribe", "symbols": ["AAPL"], "data_types": ["T"]}
    )
    await receive_ack(comm)
    snapshot = await comm.receive_json_from()
    assert snapshot["snapshot"] is True and snapshot["data_type"] == "Q"
    hub = current_hub()
    quote = encode_price_update(seed("AAPL", 190.0, kind="Q"))
    trade = encode_price_update(seed("AAPL", 191.0, kind="T"))
    hub.deliver(update("AAPL", quote, seq=2))
    hub.deliver(update("AAPL", trade, seq=3))
    assert await comm.receive_from() == trade
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()
