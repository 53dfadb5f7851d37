"""Scaled mode over real processes and the real Redis channel layer.

Two daphne web processes and one ``runworker fmp-feed`` share Redis (a private key
prefix per test) and a simulator this test controls. These run in CI: .ci/run
starts Redis when it is not running.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
import redis

from tests.live import (
    REDIS_URL,
    free_port,
    start_scaled,
    stop_scaled,
    wait_until,
)
from tests.realtime.wsclient import (
    collect_updates,
    next_message,
    next_update,
    open_client,
    subscribe,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def scaled(migrated_postgres, redis_prefix, request):
    """Two web processes and a worker on PostgreSQL and Redis, as in the README."""
    stack = start_scaled(migrated_postgres, redis_prefix)
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


async def test_clients_on_two_web_processes_receive_the_same_ticks(scaled):
    a = await open_client(scaled["ports"][0])
    b = await open_client(scaled["ports"][1])
    await subscribe(a, ["SCLA"])
    await subscribe(b, ["SCLA"])
    # Both processes' hubs are in the group once each has seen one update.
    await next_update(a, "SCLA", 60)
    await next_update(b, "SCLA", 60)
    # Both read the same span; over the ticks both saw start to end, each
    # process delivered exactly the same ones, in the same order.
    got_a, got_b = await asyncio.gather(
        collect_updates(a, 1.5), collect_updates(b, 1.5)
    )
    ts_a = [u["timestamp"] for u in got_a if u["symbol"] == "SCLA"]
    ts_b = [u["timestamp"] for u in got_b if u["symbol"] == "SCLA"]
    low, high = max(ts_a[0], ts_b[0]), min(ts_a[-1], ts_b[-1])
    span_a = [t for t in ts_a if low <= t <= high]
    assert len(span_a) >= 3, "too few ticks in common to compare"
    assert span_a == [t for t in ts_b if low <= t <= high], (
        "the two web processes delivered different ticks"
    )
    # An upstream drop reaches the clients of both processes as upstream_status.
    sim = scaled["sim"]
    sim.call(sim.sim.drop_connections())
    for ws in (a, b):
        await next_message(ws, "upstream_status", 60, status="connected")
        await next_update(ws, "SCLA", 60)
    await a.close()
    await b.close()


async def test_killed_web_process_lease_expires_and_its_symbols_leave_upstream(
    scaled,
):
    sim = scaled["sim"]

    def upstream():
        return sim.run(sim.sim.subscribed_symbols)

    keep = await open_client(scaled["ports"][0])
    doomed = await open_client(scaled["ports"][1])
    await subscribe(keep, ["KEEP"])
    await subscribe(doomed, ["GONE"])
    await asyncio.to_thread(
        wait_until, lambda: {"KEEP", "GONE"} <= upstream(), 60, "both upstream"
    )
    scaled["webs"][1].kill()  # SIGKILL: no lease release, the lease must expire
    await asyncio.to_thread(
        wait_until, lambda: "GONE" not in upstream(), 60, "GONE after lease expiry"
    )
    assert "KEEP" in upstream()
    assert (await next_update(keep, "KEEP"))["symbol"] == "KEEP"
    # The killed process's client reconnects to the survivor and resubscribes
    # (as the dashboard's client does): ticks again, upstream exactly as needed.
    back = await open_client(scaled["ports"][0])
    await subscribe(back, ["GONE"])
    assert (await next_update(back, "GONE", 60))["symbol"] == "GONE"
    await asyncio.to_thread(
        wait_until, lambda: upstream() == {"KEEP", "GONE"}, 60, "exactly KEEP, GONE"
    )
    await back.close()
    await keep.close()


def upstream_of(stack) -> frozenset[str]:
    sim = stack["sim"]
    return sim.run(sim.sim.subscribed_symbols)


def open_upstream_connections(stack) -> int:
    sim = stack["sim"]
    return sim.run(lambda: sim.sim.open_connections)


async def test_standby_takes_over_within_10s_when_leader_is_killed(
    migrated_sqlite, redis_prefix, record_property
):
    stack = start_scaled(migrated_sqlite, redis_prefix, workers=2, webs=1)
    sim = stack["sim"]
    try:
        ws = await open_client(stack["ports"][0])
        await subscribe(ws, ["FAIL"])
        await next_update(ws, "FAIL", 60)
        assert open_upstream_connections(stack) == 1
        client = redis.Redis.from_url(REDIS_URL)
        leader = client.get(f"{redis_prefix}:feed:leader").decode()
        pids = {w.proc.pid: w for w in stack["workers"]}
        leader_proc = next(w for pid, w in pids.items() if f":{pid}:" in leader)
        leader_proc.kill()  # SIGKILL: no clean release of the lock
        killed_at = time.monotonic()
        await next_update(ws, "FAIL", 60)
        # The update above may still be in flight from before the kill; wait for
        # the new leader's connection and a tick that came through it.
        await asyncio.to_thread(
            wait_until,
            lambda: sim.run(lambda: sim.sim.logins) >= 2,
            60,
            "the standby to log in upstream",
        )
        await next_update(ws, "FAIL", 60)
        took = time.monotonic() - killed_at
        record_property("takeover_seconds", round(took, 2))
        assert took < 10, f"standby took {took:.1f}s"
        assert sim.run(lambda: sim.sim.max_open_connections) == 1, (
            "two upstream connections were open at once"
        )
        new_leader = client.get(f"{redis_prefix}:feed:leader").decode()
        assert new_leader != leader
        await ws.close()
    finally:
        stop_scaled(stack)


@pytest.fixture
def private_redis():
    """A redis-server of our own, so restarting it disturbs nothing else."""
    port = free_port()
    args = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: _pings(url), 60, "private redis to start")
    state = {"proc": proc, "url": url, "args": args}
    yield state
    state["proc"].terminate()
    state["proc"].wait(5)


def restart(private: dict) -> None:
    private["proc"].kill()
    private["proc"].wait(5)
    private["proc"] = subprocess.Popen(private["args"], stdout=subprocess.DEVNULL)


def _pings(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


async def test_after_redis_restart_leases_rebuild_upstream_set_and_ticks_flow(
    migrated_sqlite, redis_prefix, private_redis, record_property
):
    stack = start_scaled(
        migrated_sqlite, redis_prefix, redis_url=private_redis["url"], webs=1
    )
    try:
        ws = await open_client(stack["ports"][0])
        await subscribe(ws, ["RDSA"])
        await next_update(ws, "RDSA", 60)
        await asyncio.to_thread(restart, private_redis)
        await asyncio.to_thread(
            wait_until, lambda: _pings(private_redis["url"]), 60, "redis back"
        )
        back_at = time.monotonic()
        update = await next_update(ws, "RDSA", 60)
        assert update["symbol"] == "RDSA"
        record_property(
            "ticks_after_redis_back_seconds", round(time.monotonic() - back_at, 2)
        )
        await asyncio.to_thread(
            wait_until,
            lambda: upstream_of(stack) == {"RDSA"},
            60,
            "the upstream set to be rebuilt as exactly the leased symbols",
        )
        await ws.close()
    finally:
        stop_scaled(stack)
