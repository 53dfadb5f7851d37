"""Benchmark: what a new feed leader spends continuing the open bars.

At a takeover (realtime/bars/takeover.py) the new leader reads the recent tick
history from Redis and replays it into its aggregator before its first tick, so
this time adds to the takeover. The worst case the history allows is every
symbol's stream full (``REALTIME_HISTORY_SIZE`` updates, 1,000 by default) and
inside the lookback. This writes that into a private prefix of the real Redis
(``REDIS_URL``, default 127.0.0.1:6379), then times the read
(``RedisHistory.recent``) and the replay (``rebuild``) separately, best of 3.
``python -m bench.bars_takeover [symbols] [per_symbol] [intervals]`` (default
200 1000 1s,1m; DJANGO_SETTINGS_MODULE=fmpsite.settings.test).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid

import django


async def measure(symbols: int, per_symbol: int, intervals: str) -> dict[str, float]:
    import redis

    from realtime.bars.aggregate import BarAggregator
    from realtime.bars.keys import parse_intervals
    from realtime.bars.takeover import Emitted, rebuild
    from realtime.events import Update
    from realtime.feed.history import RedisHistory
    from realtime.feed.state import encode_price_update, merge_tick
    from realtime.upstream.protocol import Tick

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    prefix = f"bench-takeover-{uuid.uuid4().hex[:8]}"
    history = RedisHistory(url, prefix, per_symbol, 600)
    await history.start()
    rng = random.Random(5)
    now = int(time.time() * 1000)
    try:
        for s in range(symbols):
            symbol = f"S{s:03d}"
            state, batch = None, []
            for i in range(per_symbol):
                ts = now - 50_000 + i * 50_000 // per_symbol
                price = round(100 + rng.random(), 2)
                tick = Tick(symbol, ts, "T", price, rng.randint(1, 500))
                seq = history.next_seq(symbol)
                state = merge_tick(state, tick, "2026-01-01T00:00:00Z", seq)
                text = encode_price_update(state)
                batch.append(Update(symbol, seq, history.epoch, text, ts))
            await history.write(batch)
        reads, replays = [], []
        for _ in range(3):
            began = time.perf_counter()
            tapes = await history.recent(now - 180_000)
            reads.append(time.perf_counter() - began)
            aggregator = BarAggregator(parse_intervals(intervals))
            began = time.perf_counter()
            rebuild(aggregator, tapes, Emitted(), now)
            replays.append(time.perf_counter() - began)
        entries = sum(len(t.texts) for t in tapes.values())
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        await history.aclose()
    return {"entries": entries, "read_s": min(reads), "replay_s": min(replays)}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    django.setup()
    symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    per_symbol = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    intervals = sys.argv[3] if len(sys.argv) > 3 else "1s,1m"
    got = asyncio.run(measure(symbols, per_symbol, intervals))
    n = got["entries"]
    print(
        f"takeover rebuild, {symbols} symbols x {per_symbol} updates ({n} entries),"
        f" intervals {intervals}:"
    )
    print(f"  read from Redis  {got['read_s'] * 1000:8.1f} ms")
    print(
        f"  replay (rebuild) {got['replay_s'] * 1000:8.1f} ms"
        f"  ({got['replay_s'] / n * 1e6:.2f} us per update)"
    )


if __name__ == "__main__":
    main()
