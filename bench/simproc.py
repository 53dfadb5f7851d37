"""The FMP simulator in its own process, driven over stdin by the runner.

Prints one JSON line ``{"url": ..., "pid": ..., "impl": ...}`` once listening, then
answers commands, one per line:

- ``rate R``  set the total tick rate (ticks/s over each connection's symbols)
- ``stats``   print ``{"ticks": N}``, the ticks sent so far
- ``quit``    stop and exit

Run as ``python -m bench.simproc --rate R --seed S``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

# The server's default collector settings (fmpsite/gctune.py): a full collection
# over 500 connections' objects would otherwise stall a load client long enough
# to read as latency.
from fmpsite.gctune import DEFAULT_THRESHOLDS, tune_gc


def _ticks_sent(sim) -> int | None:
    value = getattr(sim, "ticks_sent", None)
    return value if isinstance(value, int) else None


async def main(rate: float, seed: int) -> None:
    from realtime.upstream.simulator import FmpSimulator

    sim = FmpSimulator(host="127.0.0.1", port=0, rate=rate, seed=seed)
    await sim.start()
    impl = f"{FmpSimulator.__module__}.{FmpSimulator.__name__}"
    print(json.dumps({"url": sim.url, "impl": impl}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            cmd, _, arg = line.partition(" ")
            if cmd == "rate":
                sim.set_rate(float(arg))
                print(json.dumps({"ok": True}), flush=True)
            elif cmd == "stats":
                print(json.dumps({"ticks": _ticks_sent(sim)}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {line!r}"}), flush=True)
    finally:
        await sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tune_gc(DEFAULT_THRESHOLDS)
    asyncio.run(main(args.rate, args.seed))
