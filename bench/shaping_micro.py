"""Microbenchmark: FanoutHub.deliver per tick, with and without rate caps/filters.

One symbol, 1,000 subscribed connections (ASGI-text outboxes, no socket: the
writer is not running, the queues are emptied between rounds, untimed). Cases:

- ``plain``: nobody has a cap or filter (the uncapped fast path);
- ``plain, caps elsewhere``: another symbol has capped clients, so the hub's
  shaped map is not empty (the one extra dict lookup per tick);
- ``all capped 4/s``: every connection capped (most ticks replace the waiting one);
- ``all trades-only``: every connection filtered to ``T`` (half the ticks are Q).

Prints CPU microseconds per tick (process time, best of 15 rounds of 2,000
ticks: CPU time, so a shared machine skews it less than wall time). Run from a
checkout: ``python -m bench.shaping_micro``; against another checkout's code
(for the baseline before shaping existed):
``PYTHONPATH=/other/checkout python bench/shaping_micro.py`` (cases needing
shaping are skipped there).
"""

from __future__ import annotations

import os
import time

import django

CONNECTIONS = 1_000
TICKS = 2_000
ROUNDS = 15


def build(case: str):
    from realtime.events import Update
    from realtime.fanout.hub import FanoutHub, Outbox

    async def send_text(text: str) -> None:  # never called: no flush runs
        return None

    hub = FanoutHub(None, owner="bench", lease_ttl=60.0)
    outboxes = [Outbox(send_text, f"ws-{i}") for i in range(CONNECTIONS)]
    for outbox in outboxes:
        outbox.symbols.add("AAA")
    hub.by_symbol["AAA"] = set(outboxes)
    if case == "plain, caps elsewhere":
        other = Outbox(send_text, "ws-other")
        hub.by_symbol["BBB"] = {other}
        hub.shaper.set(other, ["BBB"], max_rate=4, data_types=None, replace_types=True)
    elif case == "all capped 4/s":
        for outbox in outboxes:
            hub.shaper.set(
                outbox, ["AAA"], max_rate=4, data_types=None, replace_types=True
            )
    elif case == "all trades-only":
        for outbox in outboxes:
            hub.shaper.set(
                outbox,
                ["AAA"],
                max_rate=None,
                data_types=frozenset("T"),
                replace_types=True,
            )
    updates = [
        Update(
            "AAA",
            seq,
            "e",
            '{"type":"price_update","symbol":"AAA","timestamp":1,'
            f'"data_type":"{"TQ"[seq % 2]}","last_price":{seq}.5,"seq":{seq}}}',
            0,
        )
        for seq in range(TICKS)
    ]
    return hub, outboxes, updates


def run(case: str) -> float:
    hub, outboxes, updates = build(case)
    best = float("inf")
    for _ in range(ROUNDS):
        for outbox in outboxes:
            outbox.queue = []
            outbox.pending = {}
        hub.writer.dirty = set()
        deliver = hub.deliver
        start = time.process_time()
        for update in updates:
            deliver(update)
        best = min(best, (time.process_time() - start) / TICKS * 1e6)
    return best


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    import importlib.util

    has_shaping = importlib.util.find_spec("realtime.fanout.shaping") is not None
    cases = ["plain"]
    if has_shaping:
        cases += ["plain, caps elsewhere", "all capped 4/s", "all trades-only"]
    for case in cases:
        us = run(case)
        print(
            f"{case:22s} {us:8.1f} us/tick  {us / CONNECTIONS * 1000:6.1f} ns per "
            f"connection ({CONNECTIONS} connections)"
        )


if __name__ == "__main__":
    main()
