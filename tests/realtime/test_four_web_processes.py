"""Four web processes on one Redis channel layer, with a feed leader and a hot
standby (issue 23): every process's clients get the symbols, and still do after
the leader is killed and the standby takes over."""

from __future__ import annotations

import asyncio

import pytest

from tests.live import start_scaled, stop_scaled, wait_until
from tests.realtime.wsclient import next_update, open_client, subscribe

pytestmark = pytest.mark.redis


@pytest.fixture
def four(migrated_postgres, redis_prefix, request):
    stack = start_scaled(migrated_postgres, redis_prefix, workers=2, webs=4)
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


async def test_four_web_processes_deliver_through_a_feed_takeover(four):
    assert len(four["ports"]) == 4
    clients = [await open_client(port) for port in four["ports"]]
    # One symbol all share, and one of each process's own.
    for i, ws in enumerate(clients):
        await subscribe(ws, ["FOURALL", f"FOUR{i}"])
    for i, ws in enumerate(clients):
        for symbol in ("FOURALL", f"FOUR{i}"):
            assert (await next_update(ws, symbol, 60))["symbol"] == symbol
    leader = next(w for w in four["workers"] if "event=feed_lock_acquired" in w.log())
    standby = next(w for w in four["workers"] if w is not leader)
    leader.kill()
    await asyncio.to_thread(
        wait_until,
        lambda: "event=feed_lock_acquired" in standby.log(),
        60,
        "the standby to take the lock",
    )
    # A symbol first asked for after the takeover can only come from the new
    # leader: every process's clients get it, and their own ones go on.
    for ws in clients:
        await subscribe(ws, ["FOURNEW"])
    for i, ws in enumerate(clients):
        for symbol in ("FOURNEW", f"FOUR{i}"):
            assert (await next_update(ws, symbol, 60))["symbol"] == symbol
    await asyncio.gather(*(ws.close() for ws in clients))
