"""Five thousand connections on one embedded daphne all get their symbols (issue 26).

The benchmark's connection ladder (``python -m bench --scenario connections``)
measures what many connections cost; this test keeps the behaviour in the suite:
one daphne with its embedded feed holds 5,000 WebSocket connections from this
process (RLIMIT_NOFILE raised to the hard limit first, as an operator would), each
subscribed to 2 of 50 symbols at a small rate, and every connection receives a
live update of each of its symbols within a bounded time.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator

import pytest
import websockets

from tests.live import async_wait_until, start_product

CONNECTIONS = 5000
SYMBOLS = [f"MC{i:02d}" for i in range(50)]
PER_CONNECTION = 2
# Ticks/s over all 50 symbols: each symbol ticks every 2 s on average and the
# server sends 5,000 x 2 x 25 / 50 = 5,000 msgs/s in total.
RATE = 25.0
HANDSHAKES_IN_FLIGHT = 64
DEADLINE = 60.0  # per phase: connect, subscribe, receive


@pytest.fixture
def nofile_raised() -> Iterator[int]:
    """The soft open-files limit at its hard limit while the test runs (daphne,
    started afterwards, inherits it): 5,000 client sockets need that many fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target < CONNECTIONS + 1000:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below {CONNECTIONS + 1000}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    yield target
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Client:
    """One connection's bookkeeping: the symbols it asked for and those that a
    live (non-snapshot) update has reached."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.updated: set[str] = set()
        self.subscribed = asyncio.Event()
        self.ws: websockets.ClientConnection | None = None

    @property
    def complete(self) -> bool:
        return len(self.updated) == len(self.symbols)

    async def run(self, url: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            self.ws = await websockets.connect(
                url, ping_interval=None, compression=None, open_timeout=DEADLINE
            )
            greeting = json.loads(await asyncio.wait_for(self.ws.recv(), DEADLINE))
            assert greeting["type"] == "connected", greeting

    async def subscribe_and_read(self) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"action": "subscribe", "symbols": self.symbols}))
        async for raw in self.ws:
            message = json.loads(raw)
            kind = message["type"]
            if kind == "subscription":
                self.subscribed.set()
            elif kind == "price_update" and not message.get("snapshot"):
                self.updated.add(message["symbol"])
            elif kind == "error":
                raise AssertionError(f"error reply: {message}")


@pytest.mark.live
@pytest.mark.timeout(300)
async def test_five_thousand_connections_all_receive_their_symbols(
    migrated_sqlite: str, nofile_raised: int, record_property
) -> None:
    with start_product(
        "daphne-many-connections",
        simulator={"rate": RATE, "seed": 26, "heartbeat_interval": 1.0},
        simulator_rest=False,
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="many-connections-key",
        LOG_LEVEL="WARNING",  # one log line per connection is 5,000 lines
    ) as product:
        stride = len(SYMBOLS) // PER_CONNECTION
        clients = [
            Client(
                [
                    SYMBOLS[(i + j * stride) % len(SYMBOLS)]
                    for j in range(PER_CONNECTION)
                ]
            )
            for i in range(CONNECTIONS)
        ]
        gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
        readers: list[asyncio.Task] = []
        try:
            t0 = time.monotonic()
            await asyncio.wait_for(
                asyncio.gather(*(c.run(product.ws_url, gate) for c in clients)),
                DEADLINE,
            )
            connected = time.monotonic()
            readers = [asyncio.create_task(c.subscribe_and_read()) for c in clients]

            def failed_reader() -> None:
                for task in readers:
                    if task.done() and task.exception() is not None:
                        raise task.exception()

            def all_subscribed() -> bool:
                failed_reader()
                return all(c.subscribed.is_set() for c in clients)

            def all_updated() -> bool:
                failed_reader()
                return all(c.complete for c in clients)

            await async_wait_until(
                all_subscribed, DEADLINE, "every connection's subscription ack", 0.2
            )
            subscribed = time.monotonic()
            try:
                await async_wait_until(
                    all_updated,
                    DEADLINE,
                    "an update of every symbol on every conn",
                    0.2,
                )
            except AssertionError:
                missing = sum(1 for c in clients if not c.complete)
                raise AssertionError(
                    f"{missing} of {CONNECTIONS} connections lack an update of one "
                    f"of their symbols after {DEADLINE:.0f} s"
                ) from None
            done = time.monotonic()
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await asyncio.gather(
                *(c.ws.close() for c in clients if c.ws is not None),
                return_exceptions=True,
            )
    assert all(c.updated == set(c.symbols) for c in clients)
    # Measured, not asserted (the box is shared): the suite's report shows them.
    record_property("connect_secs", round(connected - t0, 2))
    record_property("subscribe_secs", round(subscribed - connected, 2))
    record_property("all_updated_secs", round(done - subscribed, 2))
    print(
        f"{CONNECTIONS} connections: connected in {connected - t0:.1f} s, "
        f"subscribed in {subscribed - connected:.1f} s, every symbol on every "
        f"connection in {done - subscribed:.1f} s"
    )
