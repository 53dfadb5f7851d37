"""A Redis master failover under load, end to end (issue 23).

200 WebSocket clients stream through 2 web processes; a feed leader and a
standby feed worker hold the FMP connection between them; every process's
``REDIS_URL`` and ``REALTIME_CHANNEL_REDIS_URL`` is the Sentinel URL of a real
group (tests/realtime/sentinels.py). The master is SIGKILLed and Sentinel
promotes the replica. Then:

- every client's seq per symbol has no hole and no duplicate, and the epoch
  stays (recovered updates are allowed: the hubs fill forward gaps from the
  history, realtime/fanout/gapfill.py);
- the simulator never had more than one FMP session open at once (the feed
  leader is unique throughout: realtime/feed/lock.py);
- ``/health`` reported the outage and then the recovery.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.live import async_wait_until, start_scaled, stop_scaled, wait_until
from tests.realtime.failover import HealthWatch, SessionWatch, StreamClient
from tests.realtime.sentinels import DOWN_AFTER_MS, start_group

pytestmark = [pytest.mark.redis, pytest.mark.live]

CLIENTS = 200
SYMBOLS = [f"FO{i}" for i in range(20)]
SYMBOLS_PER_CLIENT = 3


@pytest.fixture
def failover_stack(tmp_path, migrated_postgres, redis_prefix, request):
    group = start_group(tmp_path)
    try:
        stack = start_scaled(
            migrated_postgres,
            redis_prefix,
            redis_url=group.url,
            workers=2,
            webs=2,
            REALTIME_CHANNEL_REDIS_URL=group.url,
        )
    except BaseException:
        group.stop()
        raise
    stack["group"] = group
    yield stack
    failed = getattr(request.node, "rep_call", None)
    try:
        stop_scaled(stack, show_logs=bool(failed and failed.failed))
    finally:
        group.stop()


def symbols_of(index: int) -> list[str]:
    return [SYMBOLS[(index + k) % len(SYMBOLS)] for k in range(SYMBOLS_PER_CLIENT)]


async def test_a_sentinel_failover_under_load_loses_no_seq_and_keeps_one_leader(
    failover_stack,
):
    stack, group = failover_stack, failover_stack["group"]
    sessions = SessionWatch(stack["sim"])
    health = HealthWatch(stack["ports"][0])
    sessions.start()
    health.start()
    stop = asyncio.Event()
    clients = [
        StreamClient(stack["ports"][i % 2], symbols_of(i)) for i in range(CLIENTS)
    ]
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
        assert not [c.error for c in clients if c.error]
        # Every client streams every one of its symbols before the kill.
        await async_wait_until(
            lambda: all(
                len(c.updates.get(s, [])) >= 2 for c in clients for s in c.symbols
            ),
            60,
            "every client to stream all its symbols",
            interval=0.2,
        )
        await async_wait_until(
            lambda: health.samples and health.samples[-1][1] == 200,
            60,
            "/health to be healthy before the failover",
        )
        # The replica has the feed's writes up to now (replication is async).
        await asyncio.to_thread(
            wait_until, group.replica_caught_up, 60, "the replica to catch up"
        )

        killed_at = time.monotonic()
        group.kill_master()
        await asyncio.to_thread(
            wait_until,
            lambda: group.master() == group.replica_port,
            60,
            "Sentinel to promote the replica",
        )
        # Recovery, as clients see it: every symbol of every client ticks again.
        counts = {id(c): {s: len(c.updates[s]) for s in c.symbols} for c in clients}
        await async_wait_until(
            lambda: all(
                len(c.updates[s]) >= counts[id(c)][s] + 5
                for c in clients
                for s in c.symbols
            ),
            60,
            "every client's symbols to tick again after the failover",
            interval=0.2,
        )
        down, up = health.outage_and_recovery(killed_at)
        if up is None:
            await async_wait_until(
                lambda: health.outage_and_recovery(killed_at)[1] is not None,
                60,
                "/health to report the recovery",
                interval=0.2,
            )
            down, up = health.outage_and_recovery(killed_at)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        sessions.stop()
        health.stop()

    problems = [p for c in clients for p in c.problems()]
    assert not problems, f"{len(problems)} problems, first: {problems[:10]}"
    assert sessions.most_at_once == 1, (
        f"{sessions.most_at_once} FMP sessions were open at once"
    )
    assert down is not None, "/health never showed the outage"
    assert up is not None and up > down
    gap = max(c.longest_gap(killed_at) for c in clients)
    recovered = sum(c.counts()[1] for c in clients)
    print(
        f"failover: longest per-symbol gap {gap:.2f}s "
        f"(down-after {DOWN_AFTER_MS} ms), recovered {recovered}, "
        f"/health down {down - killed_at:.2f}s..{up - killed_at:.2f}s after the kill, "
        f"FMP logins {sessions.logins}"
    )
