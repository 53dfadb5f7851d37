"""Scaled mode's cross-process fan-out (issue 14): membership follows the web
processes' lives, a dead feed is seen by health, metrics and clients, and a
message the channel layer drops is counted and resynced.

Real processes, the real Redis channel layer, a private key prefix per test.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from realtime import metrics
from realtime.events import HUBS_GROUP, Update
from realtime.feed.publishers import LayerPublisher
from realtime.groups import price_group
from tests.live import REDIS_URL, async_wait_until, start_scaled, stop_scaled
from tests.realtime.httpprobe import http_json, metric
from tests.realtime.wsclient import next_message, next_update, open_client, subscribe

pytestmark = pytest.mark.redis

HEALTH = "/api/v2/realtime/health"
STATUS = "/api/v2/realtime/status"


def group_members(stack: dict, group: str) -> set[str]:
    """The channels channels-redis holds in ``group`` (its sorted set)."""
    client = redis.Redis.from_url(stack["redis_url"])
    return {
        m.decode() for m in client.zrange(f"{stack['prefix']}:group:{group}", 0, -1)
    }


def exported(port: int, name: str) -> float:
    """The metric's value, 0 while the web process does not export it yet."""
    try:
        return metric(port, name)
    except AssertionError:
        return 0.0


async def wait_members(stack: dict, group: str, count: int, what: str) -> set[str]:
    members: set[str] = set()

    def settled() -> bool:
        nonlocal members
        members = group_members(stack, group)
        return len(members) == count

    await async_wait_until(settled, 60, what)
    return members


async def test_a_killed_web_process_leaves_the_groups_within_the_lease_ttl(
    migrated_sqlite, redis_prefix
):
    stack = start_scaled(migrated_sqlite, redis_prefix, webs=2)
    try:
        keep = await open_client(stack["ports"][0])
        doomed = await open_client(stack["ports"][1])
        await subscribe(keep, ["KEEP", "BOTH"])
        await subscribe(doomed, ["GONE", "BOTH"])
        await next_update(doomed, "GONE", 60)
        await wait_members(stack, price_group("BOTH"), 2, "both hubs in BOTH")
        dead = await wait_members(stack, price_group("GONE"), 1, "a hub in GONE")
        await wait_members(stack, HUBS_GROUP, 2, "two hubs registered")
        await async_wait_until(
            lambda: (
                http_json(stack["ports"][0], STATUS)["connection_status"][
                    "total_clients"
                ]
                == 2
            ),
            60,
            "two clients counted",
        )
        stack["webs"][1].kill()  # SIGKILL: no release, no group_discard
        await wait_members(stack, price_group("GONE"), 0, "the dead hub out of GONE")
        both = await wait_members(stack, price_group("BOTH"), 1, "one hub in BOTH")
        hubs = await wait_members(stack, HUBS_GROUP, 1, "one hub registered")
        assert not (dead & both) and not (dead & hubs)
        await async_wait_until(
            lambda: (
                http_json(stack["ports"][0], STATUS)["connection_status"][
                    "total_clients"
                ]
                == 1
            ),
            60,
            "only the live client counted",
        )
        assert (await next_update(keep, "BOTH", 60))["symbol"] == "BOTH"
        await keep.close()
    finally:
        stop_scaled(stack)


async def test_a_stopped_web_process_leaves_the_groups_at_once(
    migrated_sqlite, redis_prefix
):
    # A lease that outlives the test: leaving the groups can only be the stop's.
    stack = start_scaled(
        migrated_sqlite, redis_prefix, webs=2, REALTIME_LEASE_TTL="600"
    )
    try:
        keep = await open_client(stack["ports"][0])
        leaving = await open_client(stack["ports"][1])
        await subscribe(keep, ["KEEP"])
        await subscribe(leaving, ["LEFT"])
        await next_update(leaving, "LEFT", 60)
        await wait_members(stack, HUBS_GROUP, 2, "two hubs registered")
        await wait_members(stack, price_group("LEFT"), 1, "a hub in LEFT")
        stack["webs"][1].stop()  # SIGTERM
        await wait_members(stack, price_group("LEFT"), 0, "the stopped hub out")
        await wait_members(stack, HUBS_GROUP, 1, "one hub registered")
        await async_wait_until(
            lambda: (
                http_json(stack["ports"][0], STATUS)["connection_status"][
                    "total_clients"
                ]
                == 1
            ),
            60,
            "the stopped process's client no longer counted",
        )
        await keep.close()
    finally:
        stop_scaled(stack)


async def test_a_feed_crash_is_seen_by_health_metrics_and_clients(
    migrated_sqlite, redis_prefix, record_property
):
    stack = start_scaled(migrated_sqlite, redis_prefix, webs=1)
    port = stack["ports"][0]
    try:
        ws = await open_client(port)
        await subscribe(ws, ["DEAD"])
        await next_update(ws, "DEAD", 60)
        worker = stack["workers"][0]
        health = await async_wait_until(
            lambda: (h := http_json(port, HEALTH))["status"] == "connected" and h,
            60,
            "health connected",
        )
        assert f":{worker.proc.pid}:" in health["leader"]
        assert metric(port, "fmpsite_feed_up") == 1
        # The worker's own counters reach the web process's /metrics.
        await async_wait_until(
            lambda: exported(port, 'fmpsite_ticks_received_total{kind="T"}') > 0,
            60,
            "the worker's tick counter on the web process's /metrics",
        )
        worker.kill()  # SIGKILL of the only worker: nothing announces it
        killed_at = time.monotonic()
        status = await next_message(ws, "upstream_status", 60, status="reconnecting")
        record_property("client_told_seconds", round(time.monotonic() - killed_at, 2))
        assert status["status"] == "reconnecting"
        health = await async_wait_until(
            lambda: (h := http_json(port, HEALTH))["status"] == "stopped" and h,
            60,
            "health to report the feed stopped",
        )
        assert health["is_running"] is False and health["stale"] is True
        assert metric(port, "fmpsite_feed_up") == 0
        assert metric(port, "fmpsite_feed_stale") == 1
        await ws.close()
    finally:
        stop_scaled(stack)


async def test_a_layer_overflow_is_counted_and_the_symbols_resynced(redis_prefix):
    """A hub that does not read for a moment: its channel fills (capacity 1),
    the refused updates are counted, and once it reads again it gets the latest
    state of every affected symbol."""
    layer = RedisChannelLayer(
        hosts=[REDIS_URL], prefix=redis_prefix, capacity=1, expiry=30
    )
    publisher = LayerPublisher(layer, resync_delay=0.05)
    channel = await layer.new_channel()
    dropped = metrics.LAYER_DROPPED.labels("channel_full")
    before = dropped._value.get()
    await publisher.start()
    try:
        await layer.group_add(price_group("OVA"), channel)
        await layer.group_add(price_group("OVB"), channel)
        publisher.deliver(Update("OVA", 1, "e1", "a1", 1))
        await async_wait_until(
            lambda: "OVA" in publisher._latest, 60, "the first batch sent"
        )
        # The channel holds one message: every flush from now on is refused.
        for i in range(2, 6):
            publisher.deliver(Update("OVA", i, "e1", f"a{i}", i))
            publisher.deliver(Update("OVB", i, "e1", f"b{i}", i))
            await async_wait_until(
                lambda: not publisher._queue, 60, "the publisher to flush"
            )
        await async_wait_until(
            lambda: dropped._value.get() > before, 60, "the drop to be counted"
        )
        await async_wait_until(
            lambda: publisher._dropping.get(channel, 0) >= 8,
            60,
            "every refused update of the burst counted",
        )
        first = await layer.receive(channel)  # the hub reads again
        assert first["updates"] == [["OVA", 1, "e1", "a1", 1, False]]
        resync = await asyncio.wait_for(layer.receive(channel), 60)
        assert resync["type"] == "price.batch"
        latest = {u.symbol: u.text for u in map(Update._make, resync["updates"])}
        assert latest == {"OVA": "a5", "OVB": "b5"}
        assert dropped._value.get() - before >= 8  # four flushes of two
    finally:
        await publisher.aclose()
        await layer.flush()


async def test_a_takeover_is_named_and_status_keeps_the_clients(
    migrated_sqlite, redis_prefix, record_property
):
    stack = start_scaled(migrated_sqlite, redis_prefix, workers=2, webs=1)
    port = stack["ports"][0]
    try:
        ws = await open_client(port)
        await subscribe(ws, ["TAKE"])
        await next_update(ws, "TAKE", 60)
        first = await async_wait_until(
            lambda: (h := http_json(port, HEALTH))["total_clients"] == 1 and h,
            60,
            "the leader to count the client",
        )
        old = first["leader"]
        leader = next(w for w in stack["workers"] if f":{w.proc.pid}:" in old)
        leader.kill()
        # Every status the new leader publishes, from its first, counts the
        # client and the symbol: it waits for the hubs' leases before reporting.
        seen: list[dict] = []

        def new_leader_reported() -> bool:
            health = http_json(port, HEALTH)
            if health["leader"] not in (None, old):
                seen.append(health)
            return len(seen) >= 1

        await async_wait_until(new_leader_reported, 60, "the standby to report")
        took_over = seen[0]
        assert took_over["total_clients"] == 1, took_over
        assert "TAKE" in took_over["subscribed_symbols"], took_over
        failover = took_over["last_failover"]
        assert failover["from"] == old and failover["to"] == took_over["leader"]
        record_property("failover_gap_seconds", failover["gap_seconds"])
        assert failover["gap_seconds"] >= 0
        assert (await next_update(ws, "TAKE", 60))["symbol"] == "TAKE"
        await ws.close()
    finally:
        stop_scaled(stack)
