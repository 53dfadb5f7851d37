"""Faults of ARCHITECTURE.md's table, each against the real product (daphne, embedded
feed) and a simulator this test controls, over loopback sockets.

Each test starts its own simulator and server on a private copy of the database, so
a fault injected here (refused logins, silence) cannot leak into other tests. The
scaled-mode faults (worker kill -9, Redis restart, web process kill) are in
test_scaled.py. docs/reliability.md maps every fault to its test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest
import websockets

from tests.live import (
    async_wait_until,
    start_product,
)
from tests.realtime.httpprobe import http_json, metric
from tests.realtime.wsclient import (
    collect_updates,
    next_message,
    next_update,
    open_client,
    request,
    subscribe,
    subscriptions,
)


@pytest.fixture
def product(migrated_sqlite, tmp_path):
    """Start ``product(**env)``: a fresh simulator and an embedded server fed by it."""
    source = Path(migrated_sqlite.removeprefix("sqlite:///"))
    count = itertools.count()
    with ExitStack() as started:

        def start(rate: float = 40.0, **env: str) -> SimpleNamespace:
            index = next(count)
            db = tmp_path / f"db-{index}.sqlite3"
            shutil.copyfile(source, db)
            live = started.enter_context(
                start_product(
                    f"daphne-reliability-{index}",
                    simulator={"rate": rate, "seed": 5, "heartbeat_interval": 1.0},
                    simulator_rest=False,
                    DATABASE_URL=f"sqlite:///{db}",
                    FMP_API_KEY="reliability-key",
                    **env,
                )
            )
            return SimpleNamespace(port=live.port, sim=live.sim, server=live.proc)

        yield start


def upstream(p) -> frozenset[str]:
    return p.sim.run(p.sim.sim.subscribed_symbols)


def sim_value(p, attribute: str):
    return p.sim.run(lambda: getattr(p.sim.sim, attribute))


async def assert_upstream_exactly(p, symbols: set[str], within: float = 60) -> None:
    await async_wait_until(
        lambda: upstream(p) == symbols and sim_value(p, "open_connections") == 1,
        within,
        f"upstream subscription to be exactly {sorted(symbols)} on one connection",
    )


async def test_fmp_restart_clients_keep_sockets_and_upstream_is_rebuilt(product):
    p = product()
    ws = await open_client(p.port)
    await subscribe(ws, ["RSTA", "RSTB"])
    await next_update(ws, "RSTA", 60)
    await assert_upstream_exactly(p, {"RSTA", "RSTB"})
    p.sim.call(p.sim.sim.restart())
    assert upstream(p) == frozenset()  # the restarted server knows no one
    await next_update(ws, "RSTA", 60)
    await next_update(ws, "RSTB", 60)
    assert await subscriptions(ws) == ["RSTA", "RSTB"]
    await assert_upstream_exactly(p, {"RSTA", "RSTB"})
    assert sim_value(p, "max_open_connections") == 1
    await ws.close()


async def test_refused_login_is_reported_retried_slowly_and_recovers(product):
    p = product(FMP_FATAL_BACKOFF="3")
    ws = await open_client(p.port)
    await subscribe(ws, ["LGNA"])
    await next_update(ws, "LGNA", 60)
    p.sim.run(p.sim.sim.refuse_logins)
    p.sim.call(p.sim.sim.drop_connections())
    down = await next_message(ws, "upstream_status", 60, status="disconnected")
    assert down["timestamp"] > 0  # clients are told, not left guessing
    late = await open_client(p.port)  # and so is one that connects meanwhile
    await next_message(late, "upstream_status", 60, status="disconnected")
    await late.close()
    health = await async_wait_until(
        lambda: (
            (h := http_json(p.port, "/api/v2/realtime/health"))["status"]
            == "disconnected"
            and h
        ),
        60,
        "health to report the refused login",
    )
    assert "unauthorized" in health["last_error"].lower(), health
    attempts = sim_value(p, "login_attempts")
    await asyncio.sleep(4)
    # The fatal backoff (3 s here, 300 s by default) spaces the retries: no loop.
    assert sim_value(p, "login_attempts") - attempts <= 2
    await request(ws, {"action": "ping"}, "pong")  # the client's socket is untouched
    p.sim.run(lambda: p.sim.sim.refuse_logins(False))
    await next_message(ws, "upstream_status", 60, status="connected")
    await next_update(ws, "LGNA", 60)
    await assert_upstream_exactly(p, {"LGNA"})
    assert http_json(p.port, "/api/v2/realtime/health")["status"] == "connected"
    await ws.close()


async def test_malformed_upstream_frames_are_logged_skipped_and_counted(product):
    p = product()
    ws = await open_client(p.port)
    await subscribe(ws, ["MALA"])
    await next_update(ws, "MALA", 60)
    logins = sim_value(p, "logins")

    async def push():
        await p.sim.sim.send_malformed()

    p.sim.call(push())
    await async_wait_until(
        lambda: metric(p.port, "fmpsite_upstream_malformed_total") >= 8,
        60,
        "the eight malformed frames to be counted",
    )
    await next_update(ws, "MALA", 60)
    assert sim_value(p, "logins") == logins, "a bad frame must not cost the connection"
    assert "event=upstream_malformed" in p.server.log()
    await ws.close()


async def test_silent_upstream_is_detected_and_replaced(product):
    p = product(FMP_IDLE_TIMEOUT="2")
    ws = await open_client(p.port)
    await subscribe(ws, ["SILA"])
    await next_update(ws, "SILA", 60)
    attempts = sim_value(p, "login_attempts")
    p.sim.run(p.sim.sim.silence)
    await async_wait_until(
        lambda: sim_value(p, "login_attempts") > attempts,
        60,
        "the idle watchdog to replace the silent connection",
    )
    p.sim.run(lambda: p.sim.sim.silence(False))
    await next_update(ws, "SILA", 60)
    await assert_upstream_exactly(p, {"SILA"})
    await ws.close()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def small_receive_socket(port: int) -> socket.socket:
    """A connected socket with a 4 KiB receive buffer, so a client that stops
    reading stalls the server's writes within seconds, not after megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def timed_updates(ws, seconds: float) -> list[float]:
    """Latency (ms, receipt minus the tick's upstream timestamp) of each update."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        at = time.time()
        message = json.loads(raw)
        if message["type"] == "price_update" and not message.get("snapshot"):
            out.append(at * 1000 - message["timestamp"])
    return out


STALLED_CLIENTS = 4
STALL_TIMEOUT = 10
RSS_SETTLE_SECONDS = 5
RSS_GROWTH_BOUND = 4 * 1024 * 1024


async def test_stalled_readers_cost_bounded_memory_and_are_closed_4009(product):
    """Four clients stop reading while the simulator sends 1000 ticks/s, until the
    server closes them 4009 (their kernel buffers fill in ~10 s, then the 10 s
    stall deadline runs).

    Unbounded, each would queue ~270 KB/s in the server once the kernel holds no
    more (~1 MiB/s together: > 10 MiB by the deadline, and more every second
    without one); bounded, each costs at most the 256 KiB send-buffer limit plus
    one pending update per symbol, so RSS stays within 4 MiB of where it settled
    (measured: +0.9 MiB; a server writing everything out: +10 MiB in the same
    run). The per-symbol history is kept at 50 entries so it fills during the
    warm-up: the default 1000 grow ~6 MiB over the first 20 s at this rate. A
    normal client's median latency stays within 2x its baseline (plus 2 ms, the
    tick timestamp's resolution).
    """
    symbols = [f"STL{chr(65 + i)}" for i in range(20)]
    p = product(
        rate=1000.0,
        REALTIME_STALL_TIMEOUT=str(STALL_TIMEOUT),
        REALTIME_HISTORY_SIZE="50",
    )
    normal = await open_client(p.port)
    await subscribe(normal, symbols[:5])
    await collect_updates(normal, 2)  # warm up: the upstream set settles
    baseline = await timed_updates(normal, 5)
    assert len(baseline) > 500, "the simulator did not reach the offered rate"
    pid = p.server.proc.pid
    rss_before = rss_bytes(pid)

    stalled = []
    for _ in range(STALLED_CLIENTS):
        # max_queue=1: websockets stops reading the socket once one message waits,
        # so the kernel buffers fill and the server sees a client that never reads.
        ws = await open_client(p.port, max_queue=1, sock=small_receive_socket(p.port))
        await subscribe(ws, symbols)
        stalled.append(ws)
    conflated_before = metric(p.port, "fmpsite_messages_conflated_total")

    def all_closed() -> bool:
        return p.server.log().count("event=ws_stalled_closed conn=") >= STALLED_CLIENTS

    during: list[float] = []
    rss: list[int] = []  # one sample a second, until the stalled clients are closed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        len(rss) <= RSS_SETTLE_SECONDS or not all_closed()
    ):
        during += await timed_updates(normal, 1)
        rss.append(rss_bytes(pid))
    # The first seconds raise the allocator's high-water mark for five times the
    # fan-out (before any kernel buffer can have filled); after that, a stall that
    # queued would grow by ~1 MB/s here. Flat means bounded.
    settled = rss[RSS_SETTLE_SECONDS]
    growth = max(rss[RSS_SETTLE_SECONDS:]) - settled
    mib = [round((r - rss_before) / 2**20, 1) for r in rss]
    assert growth < RSS_GROWTH_BOUND, f"RSS kept growing (MiB over start): {mib}"
    assert metric(p.port, "fmpsite_messages_conflated_total") > conflated_before
    base_p50 = statistics.median(baseline)
    stall_p50 = statistics.median(during)
    assert stall_p50 <= 2 * base_p50 + 2, (
        f"normal client p50 {stall_p50:.1f} ms vs baseline {base_p50:.1f} ms"
    )
    await async_wait_until(
        lambda: (
            p.server.log().count("event=ws_stalled_closed conn=") == STALLED_CLIENTS
            and p.server.log().count("code=4009") == STALLED_CLIENTS
        ),
        60,
        "the stalled clients to be closed after the deadline",
    )
    for ws in stalled:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(60):
                while True:
                    await ws.recv()
        # The unsent backlog is dropped before the close frame, and the client
        # has REALTIME_CLOSE_GRACE (10 s) to read it: it sees the code.
        received = closed.value.rcvd
        assert received is not None and received.code == 4009, received
    await request(normal, {"action": "ping"}, "pong")
    await normal.close()
