"""``runworker fmp-feed`` and SIGTERM: a planned restart hands the upstream over.

Two real feed workers (leader and hot standby) on Redis, one daphne web process,
the simulator in a thread. The lock TTL is 30 s, so the standby's polling alone
would take up to 10 s: a fast hand-over can only come from the leader closing the
FMP socket, releasing its lock and announcing it (issue 11, item 5).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis

from tests.live import (
    ServerProcess,
    start_scaled,
    stop_scaled,
    wait_until,
)
from tests.realtime.wsclient import next_update, open_client, subscribe

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@pytest.fixture
def feed_pair(migrated_sqlite, redis_prefix, request):
    stack = start_scaled(
        migrated_sqlite, redis_prefix, workers=2, webs=1, REALTIME_FEED_LOCK_TTL="30"
    )
    stack["port"] = stack["ports"][0]
    try:
        yield stack
    finally:
        failed = getattr(request.node, "rep_call", None)
        stop_scaled(stack, show_logs=failed is not None and failed.failed)


def _leader(stack, prefix: str) -> ServerProcess:
    holder = redis.Redis.from_url(REDIS_URL).get(f"{prefix}:feed:leader")
    assert holder is not None, "no feed worker holds the lock"
    return next(w for w in stack["workers"] if f":{w.proc.pid}:" in holder.decode())


async def test_sigterm_hands_the_upstream_to_the_standby_at_once(
    feed_pair, redis_prefix, record_property
):
    sim = feed_pair["sim"]
    ws = await open_client(feed_pair["port"])
    await subscribe(ws, ["SIGT"])
    await next_update(ws, "SIGT", 60)
    await asyncio.to_thread(
        wait_until,
        lambda: "event=feed_standby" in "".join(w.log() for w in feed_pair["workers"]),
        60,
        "the second worker to stand by",
    )
    leader = _leader(feed_pair, redis_prefix)
    standby = next(w for w in feed_pair["workers"] if w is not leader)
    assert sim.run(lambda: sim.sim.logins) == 1

    os.killpg(leader.proc.pid, signal.SIGTERM)
    sent_at = time.monotonic()
    await asyncio.to_thread(
        wait_until, lambda: sim.run(lambda: sim.sim.logins) >= 2, 60, "standby login"
    )
    login_after = time.monotonic() - sent_at
    # Ticks through the new leader's connection reach the client.
    await asyncio.to_thread(
        wait_until,
        lambda: sim.run(lambda: sim.sim.subscribed_symbols()) == {"SIGT"},
        60,
        "the standby to subscribe SIGT upstream",
    )
    await next_update(ws, "SIGT", 60)
    ticks_after = time.monotonic() - sent_at
    record_property("sigterm_standby_login_seconds", round(login_after, 2))
    record_property("sigterm_ticks_resumed_seconds", round(ticks_after, 2))

    assert leader.proc.wait(60) == 0, leader.log()
    leader_log = leader.log()
    assert "event=feed_worker_stopping signal=SIGTERM" in leader_log
    assert "event=upstream_stopped" in leader_log
    assert "event=feed_lock_released" in leader_log
    assert leader_log.index("event=upstream_stopped") < leader_log.index(
        "event=feed_lock_released"
    ), "the lock was released before the FMP socket was closed"
    assert "event=feed_leader_released" in standby.log(), standby.log()
    assert sim.run(lambda: sim.sim.max_open_connections) == 1, (
        "two upstream connections were open at once"
    )
    assert _leader(feed_pair, redis_prefix) is standby
    # Polling alone (every TTL/3 = 10 s) would be far slower than the release.
    assert login_after < 10, f"standby logged in {login_after:.1f}s after SIGTERM"
    await ws.close()
