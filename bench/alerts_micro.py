"""Microbenchmark: FeedService.on_tick per tick, with and without price alerts.

The feed's tick path (embedded broker and history, no hub) over a stream of
5,000 ticks/s worth of trades across 1,000 symbols, once with no callback and
once with the alert engine registered as the leader wires it, holding 100,000
active alerts (100 per symbol: crossings above and below, every_cross with a
hysteresis, thresholds spread around the price so some are crossed). Firings
only go onto the engine's queue, as in production (the writer is not run).
Prints CPU microseconds per tick (``time.process_time``), the overhead, the
firings per tick, and the part of each time spent in the cyclic garbage
collector (``gc.callbacks``): the alerts held must not make its collections
slower (realtime/alerts/evaluator.py keeps them out of its sight).
``python -m bench.alerts_micro`` (DJANGO_SETTINGS_MODULE=fmpsite.settings.test).

CPU times move with whatever else the machine runs. ``python -m
bench.alerts_micro --once feed|alerts|feed-setup|alerts-setup [ticks [step]]``
runs one pass and prints nothing: under ``valgrind --tool=callgrind`` the
instruction counts are load-independent. ``*-setup`` builds the same services,
alerts and stream and stops, so the stream's instructions are ``feed -
feed-setup`` without alerts and ``alerts - alerts-setup`` with them; their
ratio is the overhead, the collector's passes included (in ``feed`` no alert is
held, so what holding 100,000 of them costs the collector counts too).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from typing import Any

import django

SYMBOLS = 1_000
ALERTS = 100_000


def loaded_engine(symbols: list[str], rng: random.Random, epoch: Any) -> Any:
    """An AlertEngine holding ALERTS active alerts, ALERTS // SYMBOLS per symbol:
    above and below, every_cross with a hysteresis, thresholds around 100."""
    from realtime.alerts.engine import AlertEngine
    from realtime.alerts.evaluator import AlertSpec
    from realtime.alerts.webhook import WebhookConfig

    engine = AlertEngine(
        epoch=epoch, route=None, webhook=WebhookConfig("s", False, 5.0, 1024, 60.0)
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
    return engine


class GcClock:
    """CPU time spent in the cyclic garbage collector while in the ``with``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds += time.process_time() - self._start

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def run(
    ticks: int = 100_000,
    with_alerts: bool = False,
    step: float = 0.01,
    loop: bool = True,
) -> tuple[float, int, float]:
    """``step``: the standard deviation of a symbol's move per tick (its price is
    a random walk from 100, as a stock's trades move a cent or a few). Returns
    CPU microseconds per tick, firings, and the collector's share of the time.
    ``loop=False`` builds the services, the alerts and the stream, and stops:
    the baseline an instruction count subtracts (``--once *-setup``)."""
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
        engine = loaded_engine(symbols, rng, epoch=lambda: broker.epoch)
        feed.register_callback(engine.on_tick, sync=True)
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
    # CPU time of this process, not wall time: on a shared machine the wall clock
    # also counts the time other processes hold the core.
    # The writer task takes firings off the engine's deque as they come; here
    # they are dropped every 100 ticks, so they die young as in production (left
    # to pile up, they would make the garbage collector rescan the 100,000 alerts).
    pending = engine._pending if engine is not None else None
    if not loop:
        return 0.0, 0, 0.0
    with GcClock() as collector:
        start = time.process_time()
        for i, tick in enumerate(stream):
            feed.on_tick(tick)
            if pending and not i % 100:
                pending.clear()
        elapsed = (time.process_time() - start) / ticks * 1e6
    fired = engine.fired if engine is not None else 0
    return elapsed, fired, collector.seconds / ticks * 1e6


def engine_only(ticks: int = 100_000, step: float = 0.01) -> float:
    """CPU microseconds per tick of the alert engine's callback alone, over the
    same walk (the states carry what the engine reads: symbol, price, seq)."""
    from collections import namedtuple

    from realtime.upstream.protocol import Tick

    State = namedtuple("State", "symbol last_price seq")
    symbols = [f"S{i:04d}" for i in range(SYMBOLS)]
    rng = random.Random(1)
    engine = loaded_engine(symbols, rng, epoch=lambda: "e")
    prices = dict.fromkeys(symbols, 100.0)
    pairs = []
    for i in range(ticks):
        symbol = rng.choice(symbols)
        prices[symbol] = price = round(prices[symbol] + rng.gauss(0, step), 2)
        rng.randint(1, 10)  # the size draw of ``run``: the same walk
        tick = Tick(symbol, 1_700_000_000_000 + i // 5, "T", last_price=price)
        pairs.append((tick, State(symbol, price, i + 1)))
    on_tick, pending = engine.on_tick, engine._pending
    start = time.process_time()
    for i, (tick, state) in enumerate(pairs):
        on_tick(tick, state)
        if pending and not i % 100:
            pending.clear()
    return (time.process_time() - start) / ticks * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    args = sys.argv[1:]
    if "--once" in args:  # one pass for an instruction count (docstring)
        mode, *rest = args[args.index("--once") + 1 :]
        ticks = int(rest[0]) if rest else 40_000
        step = float(rest[1]) if len(rest) > 1 else 0.01
        run(
            ticks,
            with_alerts=mode.startswith("alerts"),
            step=step,
            loop=not mode.endswith("-setup"),
        )
        return
    # A cent-scale walk (what trades do), and a volatile one that fires often.
    for step in (0.01, 0.5):
        best = {False: (float("inf"), 0.0), True: (float("inf"), 0.0)}
        fired = 0
        for _ in range(5):
            for with_alerts in (False, True):
                us, n, in_gc = run(with_alerts=with_alerts, step=step)
                best[with_alerts] = min(best[with_alerts], (us, in_gc))
                fired = n or fired
        alone = min(engine_only(step=step) for _ in range(5))
        (without, gc_without), (with_, gc_with) = best[False], best[True]
        overhead = (with_ / without - 1) * 100
        print(
            f"step {step}: on_tick without alerts: {without:.2f} us/tick "
            f"(gc {gc_without:.2f}); with {ALERTS:,} alerts over {SYMBOLS:,} "
            f"symbols: {with_:.2f} us/tick (gc {gc_with:.2f}); "
            f"overhead {overhead:+.1f} %; firings {fired / 100_000:.4f} per tick; "
            f"engine callback alone {alone:.2f} us/tick "
            f"({alone / without * 100:.1f} % of the tick without alerts)"
        )


if __name__ == "__main__":
    main()
