"""Bars in scaled mode: built once by the feed leader, recorded in Redis and
fanned out through the channel layer, so two web processes stream the same bars
and ``GET /bars`` on either reads them."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.live import start_scaled, stop_scaled
from tests.realtime.bars.test_live_bars import get_json, messages_until, reply_of

pytestmark = pytest.mark.redis


@pytest.fixture
def scaled_bars(migrated_sqlite, redis_prefix):
    stack = start_scaled(
        migrated_sqlite, redis_prefix, webs=2, REALTIME_BAR_INTERVALS="1s"
    )
    yield stack
    stop_scaled(stack)


async def subscribed(port):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/v2/realtime/ws/prices")
    await ws.send(
        json.dumps({"action": "subscribe", "symbols": ["SCLB"], "bars": ["1s"]})
    )
    await reply_of(ws, "bar_subscription")
    return ws


async def test_two_web_processes_stream_the_same_bars_from_the_leader(scaled_bars):
    a, b = [await subscribed(port) for port in scaled_bars["ports"]]
    try:
        got_a = await messages_until(a, lambda got: len(got) >= 3)
        last = got_a[-1]["seq"]
        got_b = await messages_until(
            b, lambda got: bool(got) and got[-1]["seq"] >= last
        )
    finally:
        await a.close()
        await b.close()
    by_seq_b = {bar["seq"]: bar for bar in got_b}
    common = [bar for bar in got_a if bar["seq"] in by_seq_b]
    assert len(common) >= 2, (got_a, got_b)
    assert all(by_seq_b[bar["seq"]] == bar for bar in common)
    seqs = [bar["seq"] for bar in got_a]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # none lost, no dup
    port = scaled_bars["ports"][1]
    body = await asyncio.to_thread(
        get_json, f"http://127.0.0.1:{port}/api/v2/realtime/bars/SCLB?interval=1s"
    )
    rest = {bar["seq"]: bar for bar in body["bars"]}
    assert any(rest.get(bar["seq"]) == bar for bar in common)
