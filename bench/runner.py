"""The benchmark run: for each target, simulator + server + load clients, then a ramp.

Per target:
1. start a fresh simulator process (rate 0) and the server(s) under test;
2. memory: RSS of the web processes before and after C idle clients connect
   (and again once they have subscribed, still with no ticks flowing);
3. ramp: set the simulator's rate R, let it settle, count for ``step_secs``:
   offered msgs/s = R x average subscribers per symbol, delivered msgs/s counted by
   the clients, latency = client receipt - the tick's own timestamp, and the CPU
   seconds of server, client, simulator (and Redis) processes from /proc.
   R starts at ``Scenario.first_offered`` and doubles until the delivered share
   drops below ``share_floor`` (the true ceiling: ``max_offered`` is far above
   what 2 cores deliver, so the ramp ends there, not at the harness's top; a
   step whose p99 exceeds ``p99_limit_ms`` is
   followed by a drain, so its backlog does not count in the next one); then
   ``bisect`` steps between the last delivering and the first short step;
4. fmpsite embedded only: one more step at half its saturation throughput (the
   p99 the summary line reports).

Saturation throughput = the highest delivered msgs/s of any step; ``saturated``
says whether a step fell below the floor (else the ramp ran out of steps first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Proc, base_env, cpu_seconds, python, rss_bytes
from bench.targets import REDIS_URL, Target

HALF_LOAD_TARGET = "fmpsite-embedded"
CONNS_PER_CLIENT_PROC = 4000  # well under the 20,000 open files per process


def source_address(i: int, sources: int) -> str:
    """The loopback source address of connection ``i``: 127.0.0.2 onwards, each
    with its own ~28k ephemeral ports, so thousands of connections (and the
    TIME_WAIT sockets of the runs before) never run a single address out."""
    return f"127.0.0.{2 + i % sources}"


@dataclass
class Scenario:
    symbols: int = 100
    clients: int = 1000
    per_client: int = 10
    client_procs: int = 2
    step_secs: float = 10.0
    settle_secs: float = 1.5
    # A step at twice the ceiling leaves tens of seconds of backlog in the
    # server's and the kernel's buffers: 30 s did not clear it (issue 26's run).
    drain_secs: float = 120.0
    pause_secs: float = 1.0  # lets RSS settle around connect/subscribe
    sources: int = 8  # loopback source addresses the connections come from
    start_offered: float = 1000.0
    factor: float = 2.0
    max_offered: float = 6_400_000.0
    bisect: int = 2
    down_steps: int = 3
    max_steps: int = 24
    share_floor: float = 0.90
    # Ticks the simulator sends in one step, at least (see first_offered).
    min_ticks_per_step: float = 50.0
    p99_limit_ms: float = 500.0
    targets: list[str] = field(
        default_factory=lambda: [
            "plain",
            "naive-inmemory",
            "naive-redis",
            "fmpsite-embedded",
            "fmpsite-scaled",
        ]
    )

    @classmethod
    def quick(cls) -> Scenario:
        return cls(
            clients=200,
            step_secs=2.0,
            settle_secs=0.6,
            drain_secs=3.0,
            pause_secs=0.5,
            start_offered=1000.0,
            factor=4.0,
            bisect=0,
            max_steps=4,
            targets=["plain", "naive-inmemory", "fmpsite-embedded", "fmpsite-scaled"],
        )

    def symbol_names(self) -> list[str]:
        return [f"S{i:03d}" for i in range(self.symbols)]

    def assignments(self) -> list[list[str]]:
        """Symbols of each client: every symbol gets the same number of clients."""
        names = self.symbol_names()
        stride = max(1, self.symbols // self.per_client)
        return [
            [names[(i + j * stride) % self.symbols] for j in range(self.per_client)]
            for i in range(self.clients)
        ]

    def subscribers_per_symbol(self) -> float:
        return self.clients * self.per_client / self.symbols

    def first_offered(self) -> float:
        """The ramp's first offered load: ``start_offered``, or the first load of
        its grid (``start_offered`` x ``factor``^k) at which a step counts at least
        ``min_ticks_per_step`` ticks. At 10,000 clients one tick reaches 1,000 of
        them, so 1,000 msgs/s offered is one tick a second, and a step of ten
        ticks would read +-10 % share from counting alone. Staying on the grid
        keeps the offered loads of runs with other client counts comparable."""
        offered = self.start_offered
        subs = self.subscribers_per_symbol()
        while (
            offered / subs * self.step_secs < self.min_ticks_per_step
            and offered * self.factor <= self.max_offered
        ):
            offered *= self.factor
        return offered

    def load_client_procs(self) -> int:
        """``client_procs``, or more when the clients would not fit: at most
        ``CONNS_PER_CLIENT_PROC`` connections per load-client process."""
        return max(self.client_procs, math.ceil(self.clients / CONNS_PER_CLIENT_PROC))


# --- child processes driven over pipes -------------------------------------------


class Controlled:
    """A child answering one JSON line per command line."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.lock = asyncio.Lock()

    async def readline(self, wait: float) -> dict[str, Any]:
        aproc = self.proc.aproc
        assert aproc is not None and aproc.stdout is not None
        line = await asyncio.wait_for(aproc.stdout.readline(), wait)
        if not line:
            raise RuntimeError(f"{self.proc.name} exited:\n{self.proc.log_tail()}")
        return json.loads(line)

    async def send(self, text: str, wait: float = 60.0) -> dict[str, Any]:
        aproc = self.proc.aproc
        assert aproc is not None and aproc.stdin is not None
        async with self.lock:
            aproc.stdin.write(text.encode() + b"\n")
            await aproc.stdin.drain()
            return await self.readline(wait)


class Simulator(Controlled):
    @classmethod
    async def start(cls, log_dir: Path, seed: int) -> Simulator:
        env = base_env(
            DJANGO_SETTINGS_MODULE="fmpsite.settings.base", DJANGO_DEBUG="true"
        )
        proc = Proc(
            "simulator",
            [python(), "-m", "bench.simproc", "--rate", "0", "--seed", str(seed)],
            env,
            log_dir,
        )
        await proc.astart()
        sim = cls(proc)
        hello = await sim.readline(30)
        sim.url = hello["url"]
        sim.impl = hello["impl"]
        return sim

    async def set_rate(self, rate: float) -> None:
        await self.send(f"rate {rate}")

    async def ticks(self) -> int | None:
        return (await self.send("stats"))["ticks"]

    async def stop(self) -> None:
        try:
            aproc = self.proc.aproc
            if aproc is not None and aproc.stdin is not None:
                aproc.stdin.write(b"quit\n")
                await aproc.stdin.drain()
                await asyncio.wait_for(aproc.wait(), 5)
        except Exception:
            pass
        self.proc.stop()


class ClientPool:
    def __init__(self, log_dir: Path, n: int) -> None:
        self.log_dir = log_dir
        self.n = n
        self.clients: list[Controlled] = []

    async def start(self) -> None:
        for i in range(self.n):
            proc = Proc(
                f"loadclient{i}",
                [python(), "-m", "bench.loadclient"],
                base_env(),
                self.log_dir,
            )
            await proc.astart()
            self.clients.append(Controlled(proc))

    @property
    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.clients]

    async def all(self, cmd: dict[str, Any], wait: float = 60.0) -> list[dict]:
        text = json.dumps(cmd)
        return list(await asyncio.gather(*(c.send(text, wait) for c in self.clients)))

    async def connect(
        self, specs: list[dict[str, Any]], concurrency: int = 16, within: float = 180
    ) -> dict[str, Any]:
        """Contiguous blocks of connections per process (``concurrency`` handshakes
        in flight per process)."""
        per = math.ceil(len(specs) / self.n)
        replies = await asyncio.gather(
            *(
                c.send(
                    json.dumps(
                        {
                            "cmd": "connect",
                            "conns": specs[i * per : (i + 1) * per],
                            "concurrency": concurrency,
                        }
                    ),
                    within,
                )
                for i, c in enumerate(self.clients)
            )
        )
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "failures": [f for r in replies for f in r["failures"]][:5],
            "secs": max(r["secs"] for r in replies),
        }

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.all({"cmd": "close"}, 10), 15)
        except Exception:
            pass
        for c in self.clients:
            c.proc.stop(timeout=3)
        self.clients = []


# --- measurement -------------------------------------------------------------------


def percentile(hist: dict[int, int], total: int, q: float) -> float | None:
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= rank:
            return float(ms)
    return float(max(hist))


def merge_reports(reports: list[dict]) -> dict[str, Any]:
    hist: dict[int, int] = {}
    for r in reports:
        for k, v in r["hist"].items():
            hist[int(k)] = hist.get(int(k), 0) + v
    count = sum(r["count"] for r in reports)
    return {
        "count": count,
        "hist": hist,
        "max_ms": max((r["max_ms"] for r in reports), default=0.0),
        "errors": [e for r in reports for e in r["errors"]][:5],
        "closed": sum(r["closed"] for r in reports),
        "open": sum(r["open"] for r in reports),
        "starved": sum(r["starved"] for r in reports),
        "snapshots": sum(r["snapshots"] for r in reports),
    }


def redis_pid() -> int | None:
    try:
        import redis

        return int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])
    except Exception:
        return None


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def rss_of(pids: list[int]) -> int:
    return sum(rss_bytes(p) for p in pids)


@dataclass
class Step:
    rate: float
    offered: float
    delivered: float
    share: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float
    server_cpu_s: float
    server_cpu_per_10k: float | None
    server_cpu_util: float
    client_cpu_util: float
    sim_cpu_util: float
    redis_cpu_util: float | None
    secs: float
    starved: int
    open: int
    ticks_measured: float | None
    half_load: bool = False
    # The drain before it gave up: older messages may count in this step.
    after_backlog: bool = False


async def measure_step(
    sc: Scenario,
    sim: Simulator,
    pool: ClientPool,
    target: Target,
    rate: float,
    rpid: int | None,
    *,
    half_load: bool = False,
    after_backlog: bool = False,
) -> Step:
    await sim.set_rate(rate)
    await asyncio.sleep(sc.settle_secs)
    server, clients, simpid = target.server_pids(), pool.pids, [sim.proc.pid]
    ticks0 = await sim.ticks()
    await pool.all({"cmd": "reset"})
    c0 = (
        cpu_of(server),
        cpu_of(clients),
        cpu_of(simpid),
        cpu_seconds(rpid) if rpid else 0.0,
    )
    t0 = time.monotonic()
    await asyncio.sleep(sc.step_secs)
    reports = await pool.all({"cmd": "report"})
    secs = time.monotonic() - t0
    c1 = (
        cpu_of(server),
        cpu_of(clients),
        cpu_of(simpid),
        cpu_seconds(rpid) if rpid else 0.0,
    )
    ticks1 = await sim.ticks()
    m = merge_reports(reports)
    subs = sc.subscribers_per_symbol()
    offered = rate * subs
    ticks_measured = None
    if ticks0 is not None and ticks1 is not None:
        ticks_measured = (ticks1 - ticks0) / secs
    delivered = m["count"] / secs
    server_cpu = c1[0] - c0[0]
    if m["errors"]:
        print(f"    client errors: {m['errors'][:2]}", flush=True)
    return Step(
        rate=rate,
        offered=offered,
        delivered=delivered,
        share=delivered / offered if offered else 0.0,
        p50_ms=percentile(m["hist"], m["count"], 0.50),
        p99_ms=percentile(m["hist"], m["count"], 0.99),
        max_ms=round(m["max_ms"], 1),
        server_cpu_s=round(server_cpu, 3),
        server_cpu_per_10k=(server_cpu / m["count"] * 10_000) if m["count"] else None,
        server_cpu_util=server_cpu / secs,
        client_cpu_util=(c1[1] - c0[1]) / secs,
        sim_cpu_util=(c1[2] - c0[2]) / secs,
        redis_cpu_util=((c1[3] - c0[3]) / secs)
        if (rpid and target.uses_redis)
        else None,
        secs=round(secs, 3),
        starved=m["starved"],
        open=m["open"],
        ticks_measured=ticks_measured,
        half_load=half_load,
        after_backlog=after_backlog,
    )


def step_ok(sc: Scenario, step: Step) -> bool:
    """Sustained: delivered in full and in time (the summary's sustained column)."""
    return delivers(sc, step) and (
        step.p99_ms is not None and step.p99_ms <= sc.p99_limit_ms
    )


def delivers(sc: Scenario, step: Step) -> bool:
    """At or above the share floor: the ramp climbs while this holds."""
    return step.share >= sc.share_floor


def show(step: Step) -> None:
    p = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    cpu10k = (
        "-" if step.server_cpu_per_10k is None else f"{step.server_cpu_per_10k:.3f}"
    )
    print(
        f"    R={step.rate:8.1f}/s offered={step.offered:9.0f} "
        f"delivered={step.delivered:9.0f} share={step.share:5.1%} "
        f"p50={p(step.p50_ms)} p99={p(step.p99_ms)} max={step.max_ms:.0f} ms  "
        f"cpu/10k={cpu10k}s server={step.server_cpu_util:.2f} "
        f"clients={step.client_cpu_util:.2f} sim={step.sim_cpu_util:.2f} cores"
        + (
            f" redis={step.redis_cpu_util:.2f}"
            if step.redis_cpu_util is not None
            else ""
        )
        + (f" starved={step.starved}" if step.starved else "")
        + (" [half load]" if step.half_load else "")
        + (" [after an undrained backlog]" if step.after_backlog else ""),
        flush=True,
    )


async def warm_up(urls: list[str], symbols: list[str], n: int = 8) -> None:
    """Short-lived clients first, so one-off imports don't count per connection."""
    from websockets.asyncio.client import connect

    for i in range(n):
        url = urls[i % len(urls)]
        async with connect(url) as ws:
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send(json.dumps({"action": "subscribe", "symbols": symbols[:3]}))
            await asyncio.wait_for(ws.recv(), 10)


async def wait_flowing(pool: ClientPool, within: float) -> dict[str, Any]:
    """Until every connection has received at least one price update."""
    await pool.all({"cmd": "reset"})
    deadline = time.monotonic() + within
    while True:
        await asyncio.sleep(0.5)
        m = merge_reports(await pool.all({"cmd": "report"}))
        if (m["count"] and m["starved"] == 0) or time.monotonic() > deadline:
            return m


async def drain(sim: Simulator, pool: ClientPool, within: float) -> bool:
    """Stop the ticks and wait until nothing more arrives, so an overloaded step's
    backlog (unbounded in plain's buffers) does not leak into the next one.
    False if messages still arrived after ``within`` seconds."""
    await sim.set_rate(0)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await pool.all({"cmd": "reset"})
        await asyncio.sleep(0.5)
        if merge_reports(await pool.all({"cmd": "report"}))["count"] == 0:
            return True
    print(f"    warning: still draining after {within:g} s", flush=True)
    return False


async def run_target(
    sc: Scenario, target: Target, log_dir: Path, rpid: int | None
) -> dict[str, Any]:
    t_start = time.monotonic()
    sim = await Simulator.start(log_dir, seed=7)
    pool = ClientPool(log_dir, sc.load_client_procs())
    result: dict[str, Any] = {
        "label": target.label,
        "simulator": sim.impl,
        "clients": sc.clients,
        "client_procs": pool.n,
        "subscribers_per_symbol": sc.subscribers_per_symbol(),
        "cpu_counted": target.cpu_counted(),
    }
    print(f"  server CPU counted: {result['cpu_counted']}", flush=True)
    async with recorded(result, pool=pool, target=target, sim=sim, started=t_start):
        target.start(sim.url, sc.symbol_names())
        await pool.start()
        await warm_up(target.urls, sc.symbol_names())
        await asyncio.sleep(sc.pause_secs)
        web = target.web_pids()
        rss0 = rss_of(web)
        assignments = sc.assignments()
        urls = target.urls
        specs = [
            {
                "url": urls[i % len(urls)],
                "symbols": s,
                "local": source_address(i, sc.sources),
            }
            for i, s in enumerate(assignments)
        ]
        conn = await pool.connect(specs)
        print(
            f"  connected {conn['connected']}/{sc.clients} in {conn['secs']:.1f}s "
            f"from {pool.n} load-client processes, {sc.sources} source addresses"
            + (f" failures: {conn['failures']}" if conn["failed"] else ""),
            flush=True,
        )
        await asyncio.sleep(sc.pause_secs)
        rss1 = rss_of(web)
        subs = await pool.all({"cmd": "subscribe"}, 90)
        await asyncio.sleep(sc.pause_secs)
        rss2 = rss_of(web)
        n = max(1, conn["connected"])
        result["memory"] = {
            "rss_before": rss0,
            "rss_connected": rss1,
            "rss_subscribed": rss2,
            "connections": conn["connected"],
            "bytes_per_idle_connection": (rss1 - rss0) / n,
            "bytes_per_subscribed_connection": (rss2 - rss0) / n,
        }
        result["connect"] = conn
        result["subscribed"] = sum(s["subscribed"] for s in subs)
        print(
            f"  RSS {rss0 / 2**20:.1f} MiB -> {rss1 / 2**20:.1f} MiB connected "
            f"({(rss1 - rss0) / n:.0f} B/conn) -> {rss2 / 2**20:.1f} MiB subscribed "
            f"({(rss2 - rss0) / n:.0f} B/conn)",
            flush=True,
        )
        # Traffic must reach every client before measuring (leases, upstream subscribe).
        subs_per_symbol = sc.subscribers_per_symbol()
        # Gently: a backlog built here would leak into the first step.
        await sim.set_rate(max(sc.symbols / 10, sc.start_offered / subs_per_symbol / 2))
        flow = await wait_flowing(pool, 20.0)
        await drain(sim, pool, sc.drain_secs)
        if flow["starved"]:
            print(
                f"  warning: {flow['starved']} connections got no update in warm-up",
                flush=True,
            )

        steps: list[Step] = []
        backlog = False  # the last drain gave up
        offered = sc.first_offered()
        good: Step | None = None
        bad: Step | None = None
        while len(steps) < sc.max_steps and offered <= sc.max_offered:
            step = await measure_step(
                sc,
                sim,
                pool,
                target,
                offered / subs_per_symbol,
                rpid,
                after_backlog=backlog,
            )
            steps.append(step)
            show(step)
            if delivers(sc, step):
                good = step
                if bad is not None:
                    break  # found by stepping down
                offered *= sc.factor
                if not step_ok(sc, step):  # late: a backlog waits
                    backlog = not await drain(sim, pool, sc.drain_secs)
            elif good is None and len(steps) <= sc.down_steps:
                # Overloaded from the first step: step down to find a good load,
                # below what it managed to deliver (a long backlog would leak).
                bad = step
                offered = min(offered / sc.factor, step.delivered * 0.8) or (
                    offered / sc.factor
                )
                backlog = not await drain(sim, pool, sc.drain_secs)
            else:
                bad = step if good is not None else bad
                break
        if good is not None and bad is not None:
            lo, hi = good.offered, bad.offered
            for _ in range(sc.bisect):
                backlog = not await drain(sim, pool, sc.drain_secs)
                mid = math.sqrt(lo * hi)
                step = await measure_step(
                    sc,
                    sim,
                    pool,
                    target,
                    mid / subs_per_symbol,
                    rpid,
                    after_backlog=backlog,
                )
                steps.append(step)
                show(step)
                if delivers(sc, step):
                    lo = mid
                else:
                    hi = mid
        # A step counting an older backlog can read above its offered load.
        clean = [s for s in steps if not s.after_backlog] or steps
        saturation = max(s.delivered for s in clean) if clean else 0.0
        result["saturation_msgs_per_s"] = saturation
        result["saturated"] = any(not delivers(sc, s) for s in steps)
        result["last_good_offered"] = max(
            (s.offered for s in steps if step_ok(sc, s)), default=None
        )
        if target.name == HALF_LOAD_TARGET and saturation > 0:
            backlog = not await drain(sim, pool, sc.drain_secs)
            half = await measure_step(
                sc,
                sim,
                pool,
                target,
                saturation / 2 / subs_per_symbol,
                rpid,
                half_load=True,
                after_backlog=backlog,
            )
            show(half)
            result["half_load"] = asdict(half)
        result["steps"] = [asdict(s) for s in sorted(steps, key=lambda s: s.offered)]
    return result


@contextlib.asynccontextmanager
async def recorded(
    result: dict, *, pool: Any, target: Any, sim: Any, started: float
) -> AsyncIterator[None]:
    """One target's run: ``ok`` when the block ends, the failure and the
    processes' logs in ``result`` when it raises; the processes always stopped."""
    try:
        yield
        result["ok"] = True
    except Exception as exc:
        record_failure(result, exc, target)
    finally:
        await stop_run(pool, target, sim)
        result["secs"] = round(time.monotonic() - started, 1)


def record_failure(result: dict, exc: Exception, target: Any) -> None:
    """A target's run failed: say so in its result and show its processes' logs."""
    result["ok"] = False
    result["error"] = repr(exc)[:2000]
    print(f"  FAILED: {exc!r}", flush=True)
    for proc in target.procs:
        tail = proc.log_tail(1500)
        if tail:
            print(f"  --- {proc.name} log tail ---\n{tail}", flush=True)


async def stop_run(pool: Any, target: Any, sim: Any) -> None:
    """Stop a run's load clients, target and simulator; drop its Redis keys."""
    await pool.stop()
    target.stop()
    await sim.stop()
    cleanup_redis(target.redis_prefixes())


def cleanup_redis(prefixes: list[str]) -> None:
    if not prefixes:
        return
    try:
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        for prefix in prefixes:
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i : i + 500])
    except Exception as exc:
        print(f"  (redis cleanup failed: {exc!r})", flush=True)


def host_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
