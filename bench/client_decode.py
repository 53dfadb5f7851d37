"""How many price updates per second the Python client (clients/python) decodes
on one core: frame text -> orjson -> sequence checks -> typed ``PriceUpdate`` ->
the queue ``async for`` reads, i.e. everything ``PriceStream`` does per frame
after websockets hands it over. Target: >= 50,000/s (issue 27).

    .venv/bin/python -m bench.client_decode [--updates 500000] [--symbols 50]

Prints ``client_decode updates_per_s=<n>``; never passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
from fmpsite_client import PriceStream, PriceUpdate


def frames(updates: int, symbols: int) -> list[bytes]:
    """Realistic ``price_update`` frames (docs/protocol.md), seq per symbol."""
    names = [f"SYM{i:03d}" for i in range(symbols)]
    out = []
    for n in range(updates):
        out.append(
            orjson.dumps(
                {
                    "type": "price_update",
                    "symbol": names[n % symbols],
                    "timestamp": 1699564800000 + n,
                    "data_type": "T" if n % 3 else "Q",
                    "last_price": 189.45 + (n % 100) / 100,
                    "last_size": 100,
                    "ask_price": 189.46,
                    "ask_size": 5000,
                    "bid_price": 189.44,
                    "bid_size": 3000,
                    "cached_at": "2024-11-10T12:00:00.000+00:00",
                    "seq": n // symbols + 1,
                }
            )
        )
    return out


async def measure(updates: int, symbols: int) -> float:
    stream = PriceStream("ws://127.0.0.1:1/api/v2/realtime/ws/prices", max_queue=0)
    await stream.subscribe([f"SYM{i:03d}" for i in range(symbols)])
    await stream._handle(
        orjson.dumps(
            {
                "type": "subscription",
                "action": "subscribed",
                "symbols": list(stream.desired),
                "epoch": "bench",
            }
        )
    )
    data = frames(updates, symbols)
    queue = stream._queue
    handle = stream._handle
    yielded = 0
    start = time.process_time()
    for i, frame in enumerate(data):
        await handle(frame)
        if i % 1000 == 999:  # the reader drains as it goes
            while not queue.empty():
                yielded += isinstance(queue.get_nowait(), PriceUpdate)
    elapsed = time.process_time() - start
    yielded += queue.qsize()
    assert yielded == updates, f"{yielded} of {updates} updates came out"
    return updates / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=500_000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    rate = asyncio.run(measure(args.updates, args.symbols))
    print(f"client_decode updates_per_s={rate:,.0f}")


if __name__ == "__main__":
    main()
