"""Microbenchmark: FeedService.on_tick per tick, with and without price alerts.

The feed's tick path (embedded broker and history, no hub) over a stream of
5,000 ticks/s worth of trades across 1,000 symbols, once with no callback and
once with the alert engine registered as the leader wires it, holding 100,000
active alerts (100 per symbol: crossings above and below, every_cross with a
hysteresis, thresholds spread around the price so some are crossed). Firings
only go onto the engine's queue, as in production (the writer is not run).
Prints microseconds per tick, the overhead and the firings per tick.
``python -m bench.alerts_micro`` (DJANGO_SETTINGS_MODULE=fmpsite.settings.test).
"""

from __future__ import annotations

import os
import random
import time

import django

SYMBOLS = 1_000
ALERTS = 100_000


def run(
    ticks: int = 100_000, with_alerts: bool = False, step: float = 0.01
) -> tuple[float, int]:
    """``step``: the standard deviation of a symbol's move per tick (its price is
    a random walk from 100, as a stock's trades move a cent or a few)."""
    from realtime.alerts.engine import AlertEngine
    from realtime.alerts.evaluator import AlertSpec
    from realtime.alerts.webhook import WebhookConfig
    from realtime.backends import CurrentHub
    from realtime.feed.broker import InMemoryBroker
    from realtime.feed.cache import InProcessTickCache
    from realtime.feed.history import InMemoryHistory
    from realtime.feed.service import FeedService
    from realtime.feed.status import StatusStore
    from realtime.upstream.config import FmpConfig
    from realtime.upstream.protocol import Tick

    nobody = CurrentHub(lambda: None)
    broker = InMemoryBroker(InMemoryHistory(1000, 600), nobody)
    feed = FeedService(
        upstream=FmpConfig.from_settings(url="ws://127.0.0.1:9", api_key="x"),
        cache=InProcessTickCache(),
        broker=broker,
        status_store=StatusStore("", "bench"),
        source="bench",
        api_configured=False,
        owner="bench",
    )
    symbols = [f"S{i:04d}" for i in range(SYMBOLS)]
    feed._upstream = frozenset(symbols)
    rng = random.Random(1)
    engine = None
    if with_alerts:
        engine = AlertEngine(
            epoch=lambda: broker.epoch,
            route=None,
            webhook=WebhookConfig("s", False, 5.0, 1024, 60.0),
        )
        per_symbol = ALERTS // SYMBOLS
        engine.evaluator.load(
            AlertSpec(
                id=n * per_symbol + k,
                owner_id=1 + k % 50,
                symbol=symbol,
                condition="crosses_above" if k % 2 else "crosses_below",
                threshold=round(100 + rng.gauss(0, 3), 2),
                frequency="every_cross",
                hysteresis=0.5,
            )
            for n, symbol in enumerate(symbols)
            for k in range(per_symbol)
        )
        feed.register_callback(engine.on_tick)
    t0 = 1_700_000_000_000
    prices = dict.fromkeys(symbols, 100.0)
    stream = []
    for i in range(ticks):
        symbol = rng.choice(symbols)
        prices[symbol] = price = round(prices[symbol] + rng.gauss(0, step), 2)
        stream.append(
            Tick(
                symbol,
                t0 + i // 5,  # 5,000 ticks per second of exchange time
                "T",
                last_price=price,
                last_size=100 * rng.randint(1, 10),
            )
        )
    start = time.perf_counter()
    for tick in stream:
        feed.on_tick(tick)
    elapsed = (time.perf_counter() - start) / ticks * 1e6
    return elapsed, engine.fired if engine is not None else 0


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    # A cent-scale walk (what trades do), and a volatile one that fires often.
    for step in (0.01, 0.5):
        best = {False: float("inf"), True: float("inf")}
        fired = 0
        for _ in range(5):
            for with_alerts in (False, True):
                us, n = run(with_alerts=with_alerts, step=step)
                best[with_alerts] = min(best[with_alerts], us)
                fired = n or fired
        overhead = (best[True] / best[False] - 1) * 100
        print(
            f"step {step}: on_tick without alerts: {best[False]:.2f} us/tick; with "
            f"{ALERTS:,} alerts over {SYMBOLS:,} symbols: {best[True]:.2f} us/tick; "
            f"overhead {overhead:+.1f} %; firings {fired / 100_000:.4f} per tick"
        )


if __name__ == "__main__":
    main()
