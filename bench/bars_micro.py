"""Microbenchmark: FeedService.on_tick per tick, with and without bars.

Runs the feed's tick path (embedded broker and history, no hub) over a
simulated stream of 5,000 ticks/s worth of trades across 200 symbols, once
without bars and once with the bar aggregator (1s, 1m) attached as the leader
wires it. The bars' timer work is inside the timed loop: at each second of
exchange time (every 5 s when every interval is a multiple of 5 s, as the feed's
timer) plus the close delay the loop calls ``BarFeed.close_due`` (fold
the buffered ticks in, close, number, encode and record the bars), as the
feed's timer does. Prints CPU microseconds per tick (process time, best of 7,
so other work on the machine counts less) and the overhead.
``python -m bench.bars_micro [intervals]`` (default ``1s,1m``;
DJANGO_SETTINGS_MODULE=fmpsite.settings.test).

On a shared, loaded box the CPU times above move by more than the bars cost.
``python -m bench.bars_micro [intervals] --once none|feed|bars [ticks]`` runs one
pass and prints nothing: run it under ``valgrind --tool=callgrind`` and compare
the instruction counts (load-independent), ``bars - feed`` over ``feed - none``
(``none`` builds the stream and the services, then stops).
"""

from __future__ import annotations

import os
import random
import sys
import time

import django


def run(
    ticks: int = 100_000,
    with_bars: bool = False,
    intervals: str = "1s,1m",
    loop: bool = True,
) -> float:
    from realtime.backends import CurrentHub
    from realtime.bars.feed import BarFeed
    from realtime.bars.keys import parse_intervals
    from realtime.feed.broker import InMemoryBroker
    from realtime.feed.cache import InProcessTickCache
    from realtime.feed.history import InMemoryHistory
    from realtime.feed.service import FeedService
    from realtime.feed.status import StatusStore
    from realtime.upstream.config import FmpConfig
    from realtime.upstream.protocol import Tick

    nobody = CurrentHub(lambda: None)
    feed = FeedService(
        upstream=FmpConfig.from_settings(url="ws://127.0.0.1:9", api_key="x"),
        cache=InProcessTickCache(),
        broker=InMemoryBroker(InMemoryHistory(1000, 600), nobody),
        status_store=StatusStore("", "bench"),
        source="bench",
        api_configured=False,
        owner="bench",
    )
    symbols = [f"S{i:03d}" for i in range(200)]
    feed._upstream = frozenset(symbols)
    clock = [0.0]
    bars = None
    if with_bars:
        bars = BarFeed(
            InMemoryBroker(InMemoryHistory(1600, 86400), nobody),
            parse_intervals(intervals),
            clock=lambda: clock[0],
        )
        feed.register_callback(bars.on_tick, sync=True)
    rng = random.Random(1)
    t0 = 1_700_000_000_000
    stream = [
        Tick(
            rng.choice(symbols),
            t0 + i // 5,  # 5,000 ticks per second of exchange time
            "T",
            last_price=round(100 + rng.gauss(0, 1), 2),
            last_size=100 * rng.randint(1, 10),
        )
        for i in range(ticks)
    ]
    delay_ms = 250  # REALTIME_BAR_CLOSE_DELAY's default
    period = bars.aggregator.chunk_ms if bars is not None else 1000
    timer_at = t0 + period + delay_ms
    start = time.process_time()
    if not loop:
        return 0.0
    for tick in stream:
        if tick.timestamp >= timer_at:  # the feed's timer, on exchange time
            if bars is not None:
                clock[0] = timer_at / 1000
                bars.close_due()
            timer_at += period
        feed.on_tick(tick)
    if bars is not None:
        published[0] = bars.published
    return (time.process_time() - start) / ticks * 1e6


published = [0]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    args = sys.argv[1:]
    intervals = args[0] if args and not args[0].startswith("--") else "1s,1m"
    if "--once" in args:  # one pass for an instruction count (docstring)
        mode, *rest = args[args.index("--once") + 1 :]
        ticks = int(rest[0]) if rest else 40_000
        run(ticks, with_bars=mode == "bars", intervals=intervals, loop=mode != "none")
        return
    best = {False: float("inf"), True: float("inf")}
    for _ in range(7):
        for with_bars in (False, True):
            cost = run(with_bars=with_bars, intervals=intervals)
            best[with_bars] = min(best[with_bars], cost)
    overhead = (best[True] / best[False] - 1) * 100
    print(
        f"on_tick without bars: {best[False]:.2f} us/tick; with bars ({intervals}): "
        f"{best[True]:.2f} us/tick; overhead {overhead:+.1f} % "
        f"({published[0]} bars published per run)"
    )


if __name__ == "__main__":
    main()
