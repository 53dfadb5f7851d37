"""What a Redis failover looks like from outside: many price-stream clients that
record every seq, a watch on the FMP sessions at the simulator and a watch on
``/health`` (issue 23).

Shared by tests/realtime/test_sentinel_failover.py (asserts) and
bench/failover.py (prints the numbers): both must judge a run the same way.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.live import SimulatorThread
from tests.realtime.wsclient import open_client, subscribe


@dataclass
class Received:
    """One ``price_update`` as a client saw it (``at``: monotonic receive time)."""

    seq: int
    epoch: str | None
    recovered: bool
    snapshot: bool
    at: float


@dataclass
class StreamClient:
    """One WebSocket client: its symbols and every update it received per symbol."""

    port: int
    symbols: list[str]
    updates: dict[str, list[Received]] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set; a lost connection is recorded as an error
        (a Redis failover must not cost a client its socket)."""
        try:
            ws = await open_client(self.port, max_queue=None)
        except Exception as exc:  # noqa: BLE001 - recorded, judged by the caller
            self.error = f"connect: {exc!r}"
            self.ready.set()
            return
        try:
            ack = await subscribe(ws, self.symbols)
            epoch = ack.get("epoch")
            for symbol in self.symbols:
                self.updates[symbol] = []
                if epoch:
                    self.epochs[symbol] = epoch
            self.ready.set()
            stopped = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                receive = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait(
                    {receive, stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                if receive not in done:
                    receive.cancel()
                    break
                self._record(json.loads(receive.result()))
        except ConnectionClosed as exc:
            self.error = f"connection closed: {exc!r}"
        except Exception as exc:  # noqa: BLE001 - recorded, judged by the caller
            self.error = f"{exc!r}"
        finally:
            self.ready.set()
            await ws.close()

    def _record(self, message: dict[str, Any]) -> None:
        if message.get("type") != "price_update":
            return
        symbol = message["symbol"]
        self.updates.setdefault(symbol, []).append(
            Received(
                seq=message["seq"],
                epoch=message.get("epoch"),
                recovered=bool(message.get("recovered")),
                snapshot=bool(message.get("snapshot")),
                at=time.monotonic(),
            )
        )

    def problems(self) -> list[str]:
        """Holes, duplicates and epoch changes: after a client's first update of
        a symbol every next one must be exactly seq + 1 in the same epoch."""
        found = []
        if self.error:
            found.append(f"client on {self.port}: {self.error}")
        for symbol, updates in self.updates.items():
            if not updates:
                found.append(f"{symbol}: no update at all")
                continue
            for before, after in zip(updates, updates[1:], strict=False):
                if after.epoch and after.epoch != self.epochs.get(symbol, after.epoch):
                    found.append(f"{symbol}: epoch changed to {after.epoch}")
                    self.epochs[symbol] = after.epoch
                if after.seq != before.seq + 1:
                    kind = "hole" if after.seq > before.seq + 1 else "duplicate"
                    found.append(
                        f"{symbol}: {kind} {before.seq} -> {after.seq}"
                        f" ({flags(before)} -> {flags(after)}, update"
                        f" {updates.index(after)} of the client on {self.port})"
                    )
        return found

    def longest_gap(self, since: float) -> float:
        """The longest time a symbol went without an update across ``since``:
        from its last update before ``since`` (or ``since`` itself) through
        every later one. A recovered update ends a gap like a live one: it is
        what the client was missing."""
        longest = 0.0
        for updates in self.updates.values():
            before = [u.at for u in updates if u.at < since]
            last = before[-1] if before else since
            for update in updates:
                if update.at < since:
                    continue
                longest = max(longest, update.at - last)
                last = update.at
        return longest

    def longest_gap_between(self, start: float, end: float) -> float:
        """The longest time between consecutive updates of one symbol received
        in [start, end): the load's own noise, to read ``longest_gap`` against."""
        longest = 0.0
        for updates in self.updates.values():
            times = [u.at for u in updates if start <= u.at < end]
            for before, after in zip(times, times[1:], strict=False):
                longest = max(longest, after - before)
        return longest

    def counts(self) -> tuple[int, int]:
        """(updates received, of which recovered)."""
        total = sum(len(u) for u in self.updates.values())
        recovered = sum(r.recovered for u in self.updates.values() for r in u)
        return total, recovered


def flags(update: Received) -> str:
    """How an update came: live, snapshot or recovered."""
    return (
        "snapshot" if update.snapshot else ("recovered" if update.recovered else "live")
    )


def lost_updates(clients: list[StreamClient]) -> int:
    """Seqs a client never received between its first and last of a symbol."""
    lost = 0
    for client in clients:
        for updates in client.updates.values():
            if len(updates) < 2:
                continue
            seen = {u.seq for u in updates}
            lost += (updates[-1].seq - updates[0].seq + 1) - len(seen)
    return lost


class Poller(threading.Thread):
    """A daemon thread that calls ``sample`` every ``interval`` s until stopped."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._stopped = threading.Event()

    def sample(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        self._stopped.set()
        self.join(30)


class SessionWatch(Poller):
    """How many FMP sessions the simulator has open, sampled every 20 ms. The
    simulator's own high-water mark (``max_open_connections``, kept at every
    accept) is the exact answer; the samples show when sessions came and went."""

    def __init__(self, sim: SimulatorThread) -> None:
        super().__init__("session-watch", 0.02)
        self.sim = sim
        self.samples: list[tuple[float, int]] = []

    def sample(self) -> None:
        try:
            open_now = self.sim.run(lambda: self.sim.sim.open_connections)
        except Exception:  # noqa: BLE001 - the simulator is stopping
            return
        self.samples.append((time.monotonic(), open_now))

    @property
    def most_at_once(self) -> int:
        return self.sim.run(lambda: self.sim.sim.max_open_connections)

    @property
    def logins(self) -> int:
        return self.sim.run(lambda: self.sim.sim.logins)


class HealthWatch(Poller):
    """``GET /health`` on one web process every 200 ms: (time, HTTP status,
    body's ``status``)."""

    def __init__(self, port: int) -> None:
        super().__init__("health-watch", 0.2)
        self.url = f"http://127.0.0.1:{port}/api/v2/realtime/health"
        self.samples: list[tuple[float, int, str | None]] = []

    def sample(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                code, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            code, raw = exc.code, exc.read()
        except OSError:
            self.samples.append((time.monotonic(), 0, None))
            return
        try:
            status = json.loads(raw).get("status")
        except ValueError:
            status = None
        self.samples.append((time.monotonic(), code, status))

    def outage_and_recovery(self, since: float) -> tuple[float | None, float | None]:
        """When (after ``since``) /health first said unhealthy, and when it was
        healthy again after that; None where it did not happen."""
        down = up = None
        for at, code, _ in self.samples:
            if at < since:
                continue
            if down is None and code != 200:
                down = at
            elif down is not None and code == 200:
                up = at
                break
        return down, up


@dataclass
class FailoverRun:
    """What one failover under load showed (times in s after the kill)."""

    clients: list[StreamClient]
    sessions_at_once: int
    logins: int
    health_down: float | None
    health_up: float | None
    promoted: float
    longest_gap: float
    longest_gap_before: float
    lost: int

    @property
    def problems(self) -> list[str]:
        return [p for c in self.clients for p in c.problems()]

    @property
    def received(self) -> int:
        return sum(c.counts()[0] for c in self.clients)

    @property
    def recovered(self) -> int:
        return sum(c.counts()[1] for c in self.clients)


async def fail_over_under_load(
    stack: dict[str, Any],
    group: Any,
    *,
    clients: int,
    symbols: list[str],
    per_client: int,
    steady: float = 3.0,
) -> FailoverRun:
    """Stream ``clients`` clients (``per_client`` of ``symbols`` each, spread
    over the stack's web processes), SIGKILL the Sentinel group's master after
    ``steady`` s of streaming, and stream on until every client's every symbol
    ticked 5 more times; every wait fails after 60 s with what it waited for."""
    from tests.live import async_wait_until, wait_until

    ports = stack["ports"]
    sessions = SessionWatch(stack["sim"])
    health = HealthWatch(ports[0])
    sessions.start()
    health.start()
    stop = asyncio.Event()
    streams = [
        StreamClient(
            ports[i % len(ports)],
            [symbols[(i + k) % len(symbols)] for k in range(per_client)],
        )
        for i in range(clients)
    ]
    tasks = [asyncio.create_task(c.run(stop)) for c in streams]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in streams)), 120)
        errors = [c.error for c in streams if c.error]
        assert not errors, f"{len(errors)} clients failed, first: {errors[:3]}"
        await async_wait_until(
            lambda: all(
                len(c.updates.get(s, [])) >= 2 for c in streams for s in c.symbols
            ),
            60,
            "every client to stream all its symbols",
            interval=0.2,
        )
        await async_wait_until(
            lambda: health.samples and health.samples[-1][1] == 200,
            60,
            "/health to be healthy before the failover",
        )
        steady_from = time.monotonic()
        await asyncio.sleep(steady)  # the load itself: no event to wait for
        # The replica has the feed's writes up to now (replication is async).
        await asyncio.to_thread(
            wait_until, group.replica_caught_up, 60, "the replica to catch up"
        )
        killed_at = time.monotonic()
        group.kill_master()
        await asyncio.to_thread(
            wait_until,
            lambda: group.master() == group.replica_port,
            60,
            "Sentinel to promote the replica",
        )
        promoted = time.monotonic() - killed_at
        counts = {id(c): {s: len(c.updates[s]) for s in c.symbols} for c in streams}
        await async_wait_until(
            lambda: all(
                len(c.updates[s]) >= counts[id(c)][s] + 5
                for c in streams
                for s in c.symbols
            ),
            60,
            "every client's symbols to tick again after the failover",
            interval=0.2,
        )
        await async_wait_until(
            lambda: health.outage_and_recovery(killed_at)[1] is not None,
            60,
            "/health to report an outage and then the recovery",
            interval=0.2,
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        sessions.stop()
        health.stop()
    down, up = health.outage_and_recovery(killed_at)
    return FailoverRun(
        clients=streams,
        sessions_at_once=sessions.most_at_once,
        logins=sessions.logins,
        health_down=None if down is None else down - killed_at,
        health_up=None if up is None else up - killed_at,
        promoted=promoted,
        longest_gap=max(c.longest_gap(killed_at) for c in streams),
        longest_gap_before=max(
            c.longest_gap_between(steady_from, killed_at) for c in streams
        ),
        lost=lost_updates(streams),
    )
