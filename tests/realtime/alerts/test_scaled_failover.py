"""Scaled mode: the feed leader is SIGKILLed right after an alert fired. Exactly
one AlertEvent is recorded and its webhook is delivered, every POST signed and
with that event's key, whatever the kill interrupted: the new leader evaluates
the history tail (a crossing not yet written is written, one written is a
duplicate key) and resumes a delivery left pending (realtime/alerts/engine.py
``start``)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter

import pytest
import redis
import websockets

from tests.live import REDIS_URL, staff_token_for, start_scaled, stop_scaled, wait_until
from tests.realtime.alerts.receiver import Receiver

pytestmark = pytest.mark.redis

DEADLINE = 60
SECRET = "alerts-failover-secret"
SYMBOL = "ORCL"


def rest(port: int, method: str, path: str, token: str, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/realtime/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


async def test_leader_killed_after_a_crossing_gives_one_event_and_one_webhook(
    private_sqlite, redis_prefix, record_property
):
    stack = start_scaled(
        private_sqlite,
        redis_prefix,
        workers=2,
        webs=1,
        REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE="true",
        REALTIME_ALERT_WEBHOOK_SECRET=SECRET,
    )
    sim = stack["sim"]
    port = stack["ports"][0]
    failed = True
    try:
        token = staff_token_for(stack["env"], "failover-owner")
        # The walk reverts to the day's open, so a threshold there is crossed soon.
        threshold = sim.run(lambda: sim.sim.reference(SYMBOL).open)
        with Receiver(SECRET) as receiver:
            url = f"ws://127.0.0.1:{port}/api/v2/realtime/ws/prices?token={token}"
            async with websockets.connect(url) as ws:
                status, alert = await asyncio.to_thread(
                    rest,
                    port,
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
                    while json.loads(await ws.recv())["type"] != "alert":
                        pass
            # Right after the crossing: SIGKILL the leader (no clean stop).
            client = redis.Redis.from_url(REDIS_URL)
            leader = client.get(f"{redis_prefix}:feed:leader").decode()
            workers = stack["workers"]
            killed = next(w for w in workers if f":{w.proc.pid}:" in leader)
            standby = next(w for w in workers if w is not killed)
            killed.kill()
            # The standby leads, and its engine has done the takeover's work
            # (tail evaluated, pending deliveries resumed).
            await asyncio.to_thread(
                wait_until,
                lambda: "event=alerts_started" in standby.log_path.read_text(),
                DEADLINE,
                "the new leader's alert engine to start",
            )

            def settled():
                _, body = rest(port, "GET", f"alerts/events?alert={alert['id']}", token)
                events = body["events"]
                done = events and all(
                    e["webhook_state"] in ("delivered", "failed") for e in events
                )
                return events if done else None

            events = await asyncio.to_thread(
                wait_until, settled, DEADLINE, "the event's webhook to settle"
            )
            received = list(receiver.received)
        assert len(events) == 1, events
        assert events[0]["webhook_state"] == "delivered", events
        # One delivery as a receiver counts them: every POST is signed and carries
        # the one event's key. Two POSTs happen when the kill fell between the
        # receiver's 2xx and the old leader recording it (the new leader cannot
        # tell that from a POST never sent, so it resends: at least once, with
        # the key to dedup on, docs/protocol.md).
        keys = Counter(r["body"]["idempotency_key"] for r in received)
        assert set(keys) == {events[0]["idempotency_key"]}, received
        assert all(r["signature_ok"] for r in received)
        assert 1 <= len(received) <= 2, received
        record_property("webhook_posts", len(received))
        failed = False
    finally:
        stop_scaled(stack, show_logs=failed)
