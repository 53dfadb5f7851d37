"""Fuzzing the client protocol: whatever a client sends, the consumer answers with
documented messages (or a documented close) and never dies."""

from __future__ import annotations

import json

from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmpsite.asgi import application
from realtime.fanout.hubs import close_hub

DOCUMENTED_TYPES = {
    "subscription",
    "subscriptions",
    "pong",
    "error",
    "price_update",
    "upstream_status",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=20,
)
actions = st.sampled_from(["subscribe", "unsubscribe", "get_subscriptions", "ping"])
messages = st.one_of(
    json_values.map(json.dumps),
    st.text(min_size=1, max_size=200),
    st.builds(
        lambda action, symbols: json.dumps({"action": action, "symbols": symbols}),
        actions | st.text(max_size=12),
        json_values | st.lists(st.text(max_size=25), max_size=80),
    ),
    st.binary(min_size=1, max_size=64),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(messages, min_size=1, max_size=8))
async def test_any_input_gets_documented_replies_and_connection_survives(batch):
    comm = WebsocketCommunicator(application, "/api/v2/realtime/ws/prices")
    try:
        connected, _ = await comm.connect()
        assert connected
        await comm.receive_json_from()
        for message in batch:
            if isinstance(message, bytes):
                await comm.send_to(bytes_data=message)
            else:
                await comm.send_to(text_data=message)
        await comm.send_json_to({"action": "ping"})
        while True:
            reply = await comm.receive_json_from(timeout=2)
            assert reply["type"] in DOCUMENTED_TYPES, reply
            if reply["type"] == "error":
                assert reply["message"], "an error must say what was wrong"
            if reply["type"] == "pong":
                break
        await comm.disconnect()
    finally:
        await close_hub()
