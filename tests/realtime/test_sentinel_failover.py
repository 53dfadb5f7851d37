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

The gap clients saw is printed, not asserted: bench/failover.py measures it
(docs/reliability.md).
"""

from __future__ import annotations

import pytest

from tests.live import start_scaled, stop_scaled
from tests.realtime.failover import fail_over_under_load
from tests.realtime.sentinels import DOWN_AFTER_MS, start_group

pytestmark = [pytest.mark.redis, pytest.mark.live]


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


async def test_a_sentinel_failover_under_load_loses_no_seq_and_keeps_one_leader(
    failover_stack,
):
    run = await fail_over_under_load(
        failover_stack,
        failover_stack["group"],
        clients=200,
        symbols=[f"FO{i}" for i in range(20)],
        per_client=3,
        steady=1.0,
    )
    problems = run.problems
    assert not problems, f"{len(problems)} problems, first: {problems[:10]}"
    assert run.lost == 0
    assert run.sessions_at_once == 1, (
        f"{run.sessions_at_once} FMP sessions were open at once"
    )
    assert run.health_down is not None, "/health never showed the outage"
    assert run.health_up is not None and run.health_up > run.health_down
    print(
        f"failover: longest per-symbol gap {run.longest_gap:.2f}s "
        f"(before the kill {run.longest_gap_before:.2f}s, down-after "
        f"{DOWN_AFTER_MS} ms), promoted after {run.promoted:.2f}s, "
        f"{run.received} updates ({run.recovered} recovered), /health down "
        f"{run.health_down:.2f}s..{run.health_up:.2f}s, FMP logins {run.logins}"
    )
