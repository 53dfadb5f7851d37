"""Alerts end to end on a real daphne fed by the simulator: an alert on a symbol
nobody watches gets it subscribed upstream, fires, reaches the owner's open
WebSocket as an ``alert`` message and a local webhook receiver, signed, once per
event."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections import Counter

import pytest
import websockets

from tests.live import staff_token_for, start_product, wait_until
from tests.realtime.alerts.receiver import Receiver

pytestmark = pytest.mark.live

DEADLINE = 60
SECRET = "alerts-live-secret"
SYMBOL = "ORCL"  # in the simulator's universe, and nobody subscribes to it here


def rest(live, method: str, path: str, token: str, body=None):
    request = urllib.request.Request(
        f"{live.url}/api/v2/realtime/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def alerts_product(private_sqlite):
    with start_product(
        "daphne-alerts",
        simulator={"rate": 20.0, "seed": 5},
        DATABASE_URL=private_sqlite,
        FMP_API_KEY="alerts-test-key",
        REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE="true",
        REALTIME_ALERT_WEBHOOK_SECRET=SECRET,
    ) as live:
        yield live


async def test_alert_on_an_unwatched_symbol_subscribes_fires_and_delivers(
    alerts_product,
):
    live = alerts_product
    sim = live.sim
    token = staff_token_for(live.env, "alerts-owner")
    assert SYMBOL not in sim.run(lambda: sim.sim.subscribed_symbols())
    # The walk reverts to the day's open, so a threshold there is crossed soon.
    threshold = sim.run(lambda: sim.sim.reference(SYMBOL).open)
    with Receiver(SECRET) as receiver:
        async with websockets.connect(f"{live.ws_url}?token={token}") as ws:
            status, alert = await asyncio.to_thread(
                rest,
                live,
                "POST",
                "alerts",
                token,
                {
                    "symbol": SYMBOL,
                    "condition": "crosses_above",
                    "threshold": threshold,
                    "frequency": "every_cross",
                    "webhook_url": receiver.url,
                },
            )
            assert status == 201, alert
            await asyncio.to_thread(
                wait_until,
                lambda: SYMBOL in sim.run(lambda: sim.sim.subscribed_symbols()),
                DEADLINE,
                f"{SYMBOL} subscribed upstream for its alert",
            )
            async with asyncio.timeout(DEADLINE):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "alert":
                        break
        assert message["alert_id"] == alert["id"]
        assert message["symbol"] == SYMBOL
        assert message["price"] >= threshold
        await asyncio.to_thread(
            wait_until,
            lambda: any(
                r["body"]["event_id"] == message["event_id"] for r in receiver.received
            ),
            DEADLINE,
            "the webhook POST of the live event",
        )
        received = list(receiver.received)
    assert all(r["signature_ok"] for r in received), received
    assert all(r["path"] == "/hook" for r in received)
    per_event = Counter(r["body"]["event_id"] for r in received)
    assert set(per_event.values()) == {1}, per_event  # each event delivered once
    _, events = await asyncio.to_thread(
        rest, live, "GET", f"alerts/events?alert={alert['id']}", token
    )
    keys = [e["idempotency_key"] for e in events["events"]]
    assert len(keys) == len(set(keys)) >= 1
    delivered = {e["id"] for e in events["events"] if e["webhook_state"] == "delivered"}
    assert message["event_id"] in delivered
