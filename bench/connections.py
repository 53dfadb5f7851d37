"""``python -m bench --scenario connections``: the connection ladder.

Many connections that each want little, the way browsers use the product, instead
of the throughput scenario's 1,000 clients that read as fast as they can. Per
target (one embedded daphne; 2 scaled web processes) the ladder adds connections
in steps (1k, 5k, 10k, 15k; 30k over the scaled pair), each subscribed to 5 of 500
symbols, and at every step measures at one fixed, dashboard-like offered load
(20,000 msgs/s in total: 4 updates/s per card at 1k connections, one every 4 s at
15k):

- handshakes/s while the step's new connections open (``concurrency`` in flight
  per load-client process), and the time their subscribes take
  (``subscribe_in_flight`` unacknowledged per load-client process);
- server RSS per connection: (web RSS now - web RSS before the first step) / N;
- kernel TCP memory from ``/proc/net/sockstat`` (system-wide: both ends of every
  loopback connection, and whatever else runs on the machine) and the socket
  objects' own slab memory from ``/proc/slabinfo`` (root only; both ends too);
- CPU per delivered message (server and load clients), p50/p99 latency, delivered
  share, from the throughput scenario's own ``measure_step``.

Connections come from several load-client processes (the hard limit is 20,000
open files per process here) and several loopback source addresses (127.0.0.x),
each with its own ephemeral ports, so neither limit is what the ladder measures.
The connections of a step stay open for the next one: the ladder climbs, it does
not restart.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import rss_bytes, sockstat
from bench.runner import (
    CONNS_PER_CLIENT_PROC,
    ClientPool,
    Scenario,
    Simulator,
    drain,
    measure_step,
    recorded,
    show,
    source_address,
    wait_flowing,
    warm_up,
)
from bench.targets import Fmpsite


@dataclass
class Ladder:
    symbols: int = 500
    per_client: int = 5
    offered: float = 20_000.0
    embedded_steps: list[int] = field(
        default_factory=lambda: [1000, 5000, 10_000, 15_000]
    )
    scaled_steps: list[int] = field(default_factory=lambda: [30_000])
    sources: int = 8  # 127.0.0.2 ... 127.0.0.9
    concurrency: int = 32  # handshakes in flight per load-client process
    # Unacknowledged subscribes per load-client process, as browsers pace them;
    # ``--subscribe-in-flight 0`` sends them all at once (a reconnect storm,
    # which the web processes coalesce since issue 26: realtime/coalesce.py).
    subscribe_in_flight: int = 64
    client_procs: int | None = None  # default: enough for CONNS_PER_CLIENT_PROC
    step_secs: float = 10.0
    settle_secs: float = 2.0
    drain_secs: float = 20.0
    pause_secs: float = 2.0
    flow_within: float = 60.0
    targets: list[str] = field(
        default_factory=lambda: ["fmpsite-embedded", "fmpsite-scaled"]
    )

    @classmethod
    def quick(cls) -> Ladder:
        return cls(
            offered=5000.0,
            embedded_steps=[1000, 2000],
            scaled_steps=[2000],
            step_secs=3.0,
            settle_secs=1.0,
            drain_secs=3.0,
            pause_secs=0.5,
            flow_within=20.0,
            targets=["fmpsite-embedded"],
        )

    def steps_for(self, target: str) -> list[int]:
        return self.scaled_steps if target == "fmpsite-scaled" else self.embedded_steps

    def scenario(self, connections: int) -> Scenario:
        """The throughput scenario's shape at ``connections`` clients, so that its
        assignments, subscriber counts and ``measure_step`` apply unchanged."""
        return Scenario(
            symbols=self.symbols,
            clients=connections,
            per_client=self.per_client,
            step_secs=self.step_secs,
            settle_secs=self.settle_secs,
            drain_secs=self.drain_secs,
            pause_secs=self.pause_secs,
        )

    def source(self, i: int) -> str:
        return source_address(i, self.sources)


def _rss(pids: list[int]) -> int:
    return sum(rss_bytes(p) for p in pids)


async def climb(
    ladder: Ladder, target: Fmpsite, log_dir: Path, rpid: int | None
) -> dict[str, Any]:
    """Every step of one target; the connections of a step stay for the next."""
    t_start = time.monotonic()
    steps = sorted(ladder.steps_for(target.name))
    procs = ladder.client_procs or max(2, math.ceil(steps[-1] / CONNS_PER_CLIENT_PROC))
    sim = await Simulator.start(log_dir, seed=7)
    pool = ClientPool(log_dir, procs)
    result: dict[str, Any] = {
        "label": target.label,
        "client_procs": procs,
        "simulator": sim.impl,
        "steps": [],
    }
    async with recorded(result, pool=pool, target=target, sim=sim, started=t_start):
        names = ladder.scenario(1).symbol_names()
        target.start(sim.url, names)
        await pool.start()
        await warm_up(target.urls, names)
        await asyncio.sleep(ladder.pause_secs)
        web = target.web_pids()
        rss0, sock0 = _rss(web), sockstat()
        result["rss_before"] = rss0
        result["sockstat_before"] = sock0
        urls = target.urls
        have = 0
        for n in steps:
            sc = ladder.scenario(n)
            specs = [
                {
                    "url": urls[i % len(urls)],
                    "symbols": symbols,
                    "local": ladder.source(i),
                }
                for i, symbols in enumerate(sc.assignments()[have:n], start=have)
            ]
            conn = await pool.connect(specs, ladder.concurrency, within=600)
            have += conn["connected"]
            handshakes = conn["connected"] / conn["secs"] if conn["secs"] else None
            t0 = time.monotonic()
            subs = await pool.all(
                {
                    "cmd": "subscribe",
                    "within": 300,
                    "in_flight": ladder.subscribe_in_flight,
                },
                400,
            )
            subscribe_secs = time.monotonic() - t0
            await asyncio.sleep(ladder.pause_secs)
            rss, sock = _rss(web), sockstat()
            print(
                f"  {n}: connected {have} (+{conn['connected']} in "
                f"{conn['secs']:.1f}s, {handshakes or 0:.0f}/s"
                + (
                    f", {conn['failed']} failed: {conn['failures'][:2]}"
                    if conn["failed"]
                    else ""
                )
                + f"), subscribed +{sum(s['subscribed'] for s in subs)} in "
                f"{subscribe_secs:.1f}s, RSS {rss / 2**20:.0f} MiB "
                f"({(rss - rss0) / max(have, 1) / 1024:.1f} KiB/conn), "
                f"TCP mem {sock.get('mem_bytes', 0) / 2**20:.0f} MiB",
                flush=True,
            )
            rate = ladder.offered / sc.subscribers_per_symbol()
            await sim.set_rate(rate)
            flow = await wait_flowing(pool, ladder.flow_within)
            step = await measure_step(sc, sim, pool, target, rate, rpid)
            show(step)
            await drain(sim, pool, ladder.drain_secs)
            mem_delta = sock.get("mem_bytes", 0) - sock0.get("mem_bytes", 0)
            result["steps"].append(
                {
                    "connections": n,
                    "open": have,
                    "failed": conn["failed"],
                    "failures": conn["failures"],
                    "connect_secs": conn["secs"],
                    "handshakes_per_s": handshakes,
                    "subscribe_secs": round(subscribe_secs, 3),
                    "starved_in_warmup": flow["starved"],
                    "rss": rss,
                    "rss_per_connection": (rss - rss0) / max(have, 1),
                    "sockstat": sock,
                    "tcp_mem_per_connection": mem_delta / max(have, 1),
                    "socket_slab_per_connection": (
                        (sock["slab_bytes"] - sock0["slab_bytes"]) / max(have, 1)
                        if "slab_bytes" in sock and "slab_bytes" in sock0
                        else None
                    ),
                    "tcp_inuse_added": sock.get("inuse", 0) - sock0.get("inuse", 0),
                    "server_cpu_us_per_msg": (
                        (step.server_cpu_util + (step.redis_cpu_util or 0.0))
                        / step.delivered
                        * 1e6
                        if step.delivered
                        else None
                    ),
                    "client_cpu_us_per_msg": (
                        step.client_cpu_util / step.delivered * 1e6
                        if step.delivered
                        else None
                    ),
                    "msgs_per_connection_per_s": step.delivered / max(have, 1),
                    **asdict(step),
                }
            )
    return result
