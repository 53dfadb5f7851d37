"""The FMP simulator in its own process, driven over stdin by the runner.

Prints one JSON line ``{"url": ..., "pid": ..., "impl": ...}`` once listening, then
answers commands, one per line:

- ``rate R``  set the total tick rate (ticks/s over each connection's symbols)
- ``stats``   print ``{"ticks": N}`` if the simulator counts what it sends
- ``quit``    stop and exit

Run as ``python -m bench.simproc --rate R --seed S``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def _load_simulator():
    try:
        from realtime.fmp.simulator import FmpSimulator

        return FmpSimulator, "realtime.fmp.simulator"
    except ImportError:  # not landed yet: the bench's own minimal stand-in
        from bench.minisim import MiniSimulator

        return MiniSimulator, "bench.minisim"


def _ticks_sent(sim) -> int | None:
    for name in ("ticks_sent", "sent_ticks", "ticks"):
        value = getattr(sim, name, None)
        if isinstance(value, int):
            return value
    stats = getattr(sim, "stats", None)
    if isinstance(stats, dict):
        for name in ("ticks_sent", "ticks"):
            if isinstance(stats.get(name), int):
                return stats[name]
    return None


async def main(rate: float, seed: int) -> None:
    import django

    django.setup()
    cls, impl = _load_simulator()
    kwargs = {"host": "127.0.0.1", "port": 0, "rate": rate, "seed": seed}
    try:
        sim = cls(heartbeat_interval=30.0, **kwargs)
    except TypeError:
        sim = cls(**kwargs)
    await sim.start()
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
    asyncio.run(main(args.rate, args.seed))
