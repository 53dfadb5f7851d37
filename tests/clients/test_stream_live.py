"""The Python client against the real product (daphne + simulator; scaled: feed
worker and web processes on Redis), with the server killed under it.

What the protocol promises and these tests hold the client to: per symbol and
epoch, every seq exactly once and in order, whether the server replayed it
(``recovered``), the client fetched it from the history (a gap), or it came
live; an embedded restart is a new epoch (``not_recovered``, a ``Reset``, and
the new sequence from its start); the subscription set after the reconnect is
the one asked for; 1001 (server going away) and 4009 (closed as a stalled
reader) are reconnected from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import websockets
from fmpsite_client import Gap, PriceStream, PriceUpdate, Reset

from tests.live import (
    LiveProduct,
    SimulatorThread,
    async_wait_until,
    free_port,
    server_env,
    start_scaled,
    stop_scaled,
)
from tests.realtime.wsclient import WS_PATH

SYMBOLS = ["PYCA", "PYCB", "PYCC"]


class Recorder:
    """Everything a stream yields, consumed in a task of the test's loop."""

    def __init__(self, stream: PriceStream) -> None:
        self.stream = stream
        self.messages: list[Any] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for message in self.stream:
            self.messages.append(message)

    def updates(self, symbol: str, epoch: str | None = None) -> list[PriceUpdate]:
        return [
            m
            for m in self.messages
            if isinstance(m, PriceUpdate)
            and m.symbol == symbol
            and (epoch is None or m.epoch == epoch)
        ]

    def count_after(self, mark: int, symbol: str) -> int:
        return sum(
            1
            for m in self.messages[mark:]
            if isinstance(m, PriceUpdate) and m.symbol == symbol and not m.snapshot
        )

    async def wait_each(self, count: int, mark: int = 0) -> None:
        await async_wait_until(
            lambda: all(self.count_after(mark, s) >= count for s in SYMBOLS),
            60,
            f"{count} live updates of each of {SYMBOLS}",
        )


def assert_each_seq_once_in_order(rec: Recorder, symbol: str) -> dict[str, list[int]]:
    """Per epoch, the seqs run without a hole or duplicate; returns them."""
    by_epoch: dict[str, list[int]] = defaultdict(list)
    for u in rec.updates(symbol):
        assert u.epoch is not None and u.seq is not None, u
        by_epoch[u.epoch].append(u.seq)
    for epoch, seqs in by_epoch.items():
        expected = list(range(seqs[0], seqs[0] + len(seqs)))
        assert seqs == expected, (symbol, epoch, seqs)
    assert not [m for m in rec.messages if isinstance(m, Gap)], "an unfilled gap"
    return by_epoch


@contextlib.asynccontextmanager
async def streaming(url: str, **kwargs: Any) -> AsyncIterator[Recorder]:
    kwargs.setdefault("base_delay", 0.2)
    kwargs.setdefault("max_delay", 1.0)
    async with PriceStream(url, **kwargs) as stream:
        await stream.subscribe(SYMBOLS)
        rec = Recorder(stream)
        await stream.wait_subscribed()
        yield rec
    await asyncio.wait_for(rec.task, 10)


@pytest.fixture
def embedded(migrated_sqlite: str, request) -> Iterator[dict[str, Any]]:
    """A simulator and a way to (re)start daphne on one fixed port."""
    sim = SimulatorThread(rate=150.0, seed=27, heartbeat_interval=1.0).start()
    env = server_env(
        DATABASE_URL=migrated_sqlite, FMP_API_KEY="client-key", FMP_WS_URL=sim.url
    )
    port = free_port()
    servers: list[LiveProduct] = []

    def start() -> LiveProduct:
        web = LiveProduct(f"client-web-{len(servers)}", env)
        web.port = port
        servers.append(web)
        return web.start().wait_ready()

    yield {"start": start, "port": port, "servers": servers}
    for web in servers:
        if web.proc is not None:
            print(f"--- {web.name} ---\n{web.log()}")
        web.stop()
    sim.stop()


async def test_embedded_kill_and_restart_is_a_new_epoch_filled_from_its_start(
    embedded: dict[str, Any],
) -> None:
    server = embedded["start"]()
    async with streaming(f"ws://127.0.0.1:{embedded['port']}{WS_PATH}") as rec:
        await rec.wait_each(20)
        first_epoch = rec.updates(SYMBOLS[0])[-1].epoch
        server.proc.kill(signal.SIGKILL)
        mark = len(rec.messages)
        await asyncio.to_thread(embedded["start"])
        await rec.wait_each(20, mark)
        assert await rec.stream.wait_subscribed() == set(SYMBOLS)
    for symbol in SYMBOLS:
        by_epoch = assert_each_seq_once_in_order(rec, symbol)
        assert len(by_epoch) == 2, by_epoch.keys()
        (new_epoch,) = set(by_epoch) - {first_epoch}
        # The new server's sequence, from its first update, with nothing missed.
        assert by_epoch[new_epoch][0] == 1, by_epoch[new_epoch][:5]
        resets = [
            m for m in rec.messages if isinstance(m, Reset) and m.symbol == symbol
        ]
        assert [(r.epoch, r.reason) for r in resets] == [(new_epoch, "not_recovered")]
        # The reset comes before the first update of the new epoch.
        first_new = next(
            i
            for i, m in enumerate(rec.messages)
            if isinstance(m, PriceUpdate)
            and m.symbol == symbol
            and m.epoch == new_epoch
        )
        assert rec.messages.index(resets[0]) < first_new


class Relay:
    """A WebSocket relay in front of daphne that can close its clients with any
    code (the server's own 4009 needs a client whose kernel buffers fill for
    tens of seconds; the client's handling of the code is what is tested)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = f"ws://127.0.0.1:{upstream_port}"
        self.port = free_port()
        self.clients: set[Any] = set()

    async def __aenter__(self) -> Relay:
        self.server = await websockets.serve(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, client: Any) -> None:
        self.clients.add(client)
        try:
            async with websockets.connect(self.upstream + client.request.path) as up:

                async def down() -> None:
                    async for frame in up:
                        await client.send(frame)

                async def upward() -> None:
                    async for frame in client:
                        await up.send(frame)

                tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    t.cancel()
                if up.close_code is not None:  # pass daphne's close code on
                    await client.close(up.close_code, up.close_reason or "")
        except websockets.ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(c.close(code, reason) for c in list(self.clients)))


async def test_4009_and_1001_are_reconnected_and_recovered(
    embedded: dict[str, Any],
) -> None:
    server = embedded["start"]()
    async with Relay(embedded["port"]) as relay:
        async with streaming(f"ws://127.0.0.1:{relay.port}{WS_PATH}") as rec:
            await rec.wait_each(10)
            await relay.close_all(4009, "stalled reader")
            mark = len(rec.messages)
            await rec.wait_each(10, mark)
            assert 4009 in rec.stream.close_codes
            # Same server, same epoch: recovered by the server, no reset.
            assert any(
                m.recovered for m in rec.messages[mark:] if isinstance(m, PriceUpdate)
            )
            # SIGTERM: daphne closes its clients with 1001, then a new server.
            server.proc.kill(signal.SIGTERM)
            await async_wait_until(
                lambda: 1001 in rec.stream.close_codes, 60, "a 1001 close"
            )
            mark = len(rec.messages)
            await asyncio.to_thread(embedded["start"])
            await rec.wait_each(10, mark)
            assert await rec.stream.wait_subscribed() == set(SYMBOLS)
    for symbol in SYMBOLS:
        assert len(assert_each_seq_once_in_order(rec, symbol)) == 2


@pytest.mark.redis
async def test_scaled_web_process_kill_leaves_no_seq_hole(
    migrated_postgres: str, redis_prefix: str
) -> None:
    stack = start_scaled(migrated_postgres, redis_prefix, webs=1)
    try:
        stack["sim"].run(lambda: stack["sim"].sim.set_rate(150.0))
        (port,) = stack["ports"]
        (web,) = stack["webs"]
        async with streaming(f"ws://127.0.0.1:{port}{WS_PATH}") as rec:
            await rec.wait_each(20)
            web.kill(signal.SIGKILL)  # the feed worker keeps publishing meanwhile
            mark = len(rec.messages)
            await asyncio.to_thread(lambda: web.start().wait_port(port))
            await rec.wait_each(20, mark)
            assert await rec.stream.wait_subscribed() == set(SYMBOLS)
        for symbol in SYMBOLS:
            by_epoch = assert_each_seq_once_in_order(rec, symbol)
            assert len(by_epoch) == 1, "a web process restart keeps the epoch"
        assert not [m for m in rec.messages if isinstance(m, Reset)]
        after = [m for m in rec.messages[mark:] if isinstance(m, PriceUpdate)]
        assert any(m.recovered or m.from_history for m in after)
    except BaseException:
        stop_scaled(stack, show_logs=True)
        raise
    stop_scaled(stack)


async def test_cli_prints_prices_again_after_a_server_restart(
    embedded: dict[str, Any],
) -> None:
    server = embedded["start"]()
    url = f"ws://127.0.0.1:{embedded['port']}{WS_PATH}"
    cli = os.path.join(os.path.dirname(sys.executable), "fmpsite-stream")
    json_proc = await asyncio.create_subprocess_exec(
        cli,
        "PYCA",
        "PYCB",
        "--url",
        url,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    table_proc = await asyncio.create_subprocess_exec(
        cli,
        "PYCA",
        "--url",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def price_line(proc: Any) -> bytes:
            async with asyncio.timeout(60):
                while True:
                    line = await proc.stdout.readline()
                    assert line, "the CLI exited"
                    if b"PYCA" in line:
                        return line

        first = json.loads(await price_line(json_proc))
        assert first["type"] == "price_update", first
        assert (await price_line(table_proc)).split()[0] == b"PYCA"
        server.proc.kill(signal.SIGKILL)
        await asyncio.to_thread(embedded["start"])
        while True:  # read on until an update of the new server's epoch
            line = json.loads(await price_line(json_proc))
            if line.get("epoch") not in (None, first["epoch"]):
                break
        row = await price_line(table_proc)
        assert row.split()[0] == b"PYCA"
    finally:
        for proc in (json_proc, table_proc):
            proc.terminate()
            await proc.wait()
