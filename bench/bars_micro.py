"""Microbenchmark: FeedService.on_tick per tick, with and without bars.

Runs the feed's tick path (embedded broker and history, no hub) over a
simulated stream of 5,000 ticks/s worth of trades across 200 symbols, once with
no callback and once with the bar aggregator (1s, 1m) registered as the leader
wires it. Prints microseconds per tick and the overhead. ``python -m
bench.bars_micro`` (DJANGO_SETTINGS_MODULE=fmpsite.settings.test).
"""

from __future__ import annotations

import os
import random
import time

import django


def run(ticks: int = 100_000, with_bars: bool = False) -> float:
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
    if with_bars:
        bars = BarFeed(
            InMemoryBroker(InMemoryHistory(1600, 86400), nobody),
            parse_intervals("1s,1m"),
        )
        feed.register_callback(bars.on_tick)
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
    start = time.perf_counter()
    for tick in stream:
        feed.on_tick(tick)
    return (time.perf_counter() - start) / ticks * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for with_bars in (False, True):
            best[with_bars] = min(best[with_bars], run(with_bars=with_bars))
    overhead = (best[True] / best[False] - 1) * 100
    print(
        f"on_tick without bars: {best[False]:.2f} us/tick; with bars (1s,1m): "
        f"{best[True]:.2f} us/tick; overhead {overhead:+.1f} %"
    )


if __name__ == "__main__":
    main()
