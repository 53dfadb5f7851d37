"""Scaled mode over real processes: a web process whose channel-layer messages
were dropped fills the hole from the history itself (realtime/fanout/gapfill.py),
so its client sees every seq once, in order.

The drop is a real one: the web process is stopped (SIGSTOP, as a long GC pause
or a partition would) while its hub's channel holds at most 2 messages, so the
feed's sends to it are refused (``event=layer_dropped``) until it runs again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from tests.live import start_scaled, stop_scaled, wait_until
from tests.realtime.wsclient import next_update, open_client, subscribe

pytestmark = pytest.mark.redis


@pytest.fixture
def scaled(migrated_postgres, redis_prefix, request):
    stack = start_scaled(
        migrated_postgres, redis_prefix, webs=1, REALTIME_CHANNEL_CAPACITY="2"
    )
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


def feed_log(stack: dict) -> str:
    return "".join(w.log_path.read_text(errors="replace") for w in stack["workers"])


async def test_a_paused_web_process_fills_the_dropped_updates_from_history(scaled):
    ws = await open_client(scaled["ports"][0])
    await subscribe(ws, ["GAPLIVE"])
    first = await next_update(ws, "GAPLIVE", 60)
    seqs = [first["seq"]]
    recovered = []
    web = scaled["webs"][0].proc
    os.killpg(web.pid, signal.SIGSTOP)
    try:
        # Until the feed has had sends to this process refused (a real loss).
        await asyncio.to_thread(
            wait_until,
            lambda: "event=layer_dropped" in feed_log(scaled),
            60,
            "the feed to drop updates for the stopped web process",
        )
        dropped_at = time.monotonic()
        # A few more ticks are lost after the first refusal.
        await asyncio.to_thread(
            wait_until,
            lambda: time.monotonic() - dropped_at > 0.5,
            60,
            "more losses",
        )
    finally:
        os.killpg(web.pid, signal.SIGCONT)
    # Read until recovered updates came and five live ones followed them.
    live_after, deadline = 0, time.monotonic() + 60
    while live_after < 5 and time.monotonic() < deadline:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message.get("type") != "price_update" or message["symbol"] != "GAPLIVE":
            continue
        seqs.append(message["seq"])
        if message.get("recovered"):
            recovered.append(message["seq"])
            live_after = 0
        elif recovered:
            live_after += 1
    await ws.close()
    assert recovered, "no update was recovered: nothing was lost, or nothing filled"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (
        f"not every seq once, in order: {seqs}"
    )
