"""A webhook receiver that accepts the POST and never answers does not slow the
ticks: price updates keep reaching a WebSocket client while the request is held,
and the delivery ends as failed after its timeout (real daphne, simulator,
loopback receiver)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.live import staff_token_for, start_product, wait_until
from tests.realtime.alerts.receiver import HangingReceiver
from tests.realtime.alerts.test_live_alerts import rest

pytestmark = pytest.mark.live

DEADLINE = 60
SYMBOL = "ORCL"
UPDATES_WHILE_HELD = 10
# One attempt of this long; the retry bound is shorter than the first back-off,
# so that attempt is final and the event ends ``failed``.
WEBHOOK_TIMEOUT = 15


@pytest.fixture(scope="module")
def hang_product(migrated_sqlite):
    with start_product(
        "daphne-alerts-hang",
        simulator={"rate": 200.0, "seed": 7},  # ORCL must cross its open soon
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="alerts-test-key",
        REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE="true",
        REALTIME_ALERT_WEBHOOK_TIMEOUT=str(WEBHOOK_TIMEOUT),
        REALTIME_ALERT_WEBHOOK_RETRY_FOR="0.5",
    ) as live:
        yield live


async def test_a_receiver_that_hangs_does_not_slow_ticks(hang_product):
    live = hang_product
    sim = live.sim
    token = staff_token_for(live.env, "alerts-hang-owner")
    threshold = sim.run(lambda: sim.sim.reference(SYMBOL).open)
    with HangingReceiver() as receiver:
        async with websockets.connect(f"{live.ws_url}?token={token}") as ws:
            await ws.send(json.dumps({"action": "subscribe", "symbols": [SYMBOL]}))
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
                    "frequency": "once",
                    "webhook_url": receiver.url,
                },
            )
            assert status == 201, alert
            async with asyncio.timeout(DEADLINE):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "alert":
                        break
            # The POST is under way and held: the receiver never answers.
            await asyncio.to_thread(
                wait_until, lambda: receiver.holding, DEADLINE, "the held webhook POST"
            )
            seqs = []
            async with asyncio.timeout(DEADLINE):
                while len(seqs) < UPDATES_WHILE_HELD:
                    update = json.loads(await ws.recv())
                    if update["type"] == "price_update" and not update.get("snapshot"):
                        seqs.append(update["seq"])
            # All of them arrived while the request was still outstanding.
            assert receiver.holding == 1 and receiver.accepted == 1
            assert seqs == sorted(seqs) and len(set(seqs)) == UPDATES_WHILE_HELD
            assert all(seq > message["seq"] for seq in seqs)

        # After the timeout the one attempt is final: failed, the error recorded.
        def failed():
            _, body = rest(live, "GET", f"alerts/events?alert={alert['id']}", token)
            events = body["events"]
            return events if events and events[0]["webhook_state"] == "failed" else None

        events = await asyncio.to_thread(
            wait_until, failed, DEADLINE, "the held delivery to end as failed"
        )
    assert len(events) == 1
    assert events[0]["id"] == message["event_id"]
    assert events[0]["webhook_attempts"] == 1
    assert "timed out" in events[0]["webhook_last_error"].lower()
