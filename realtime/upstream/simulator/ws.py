"""FMP's WebSocket, as the simulator serves it (FMP_UPSTREAM.md).

Login first (one connection per key: a newer login kicks the older connection),
ticker subscriptions answered with legacy compact ticks whose ``t`` is the real
current time in nanoseconds, stream subscriptions answered with standard-socket
quote objects (re-broadcast duplicates included), heartbeats, and the faults the
tests switch on (drop, refuse logins, malformed frames, silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from realtime.upstream import protocol
from realtime.upstream.simulator import universe
from realtime.upstream.simulator.market import Faults, Market

logger = logging.getLogger(__name__)

SLICE = 0.01  # seconds between sends: rate * SLICE ticks per slice, fractions carried
MAX_BACKLOG = 0.05  # seconds of ticks owed at most after a late wake-up
MAX_BURST = 500  # frames built per wake-up at most (~20 ms of work), any rate
MAX_RECEIVED_FRAMES = 10_000

DEFAULT_MALFORMED: tuple[str | bytes, ...] = (
    "this is not json",
    '{"s": "aapl", "t": ',
    b"\xff\xfe\x00\x01binary garbage",
    '{"s": 42, "type": "T", "lp": 1.0}',
    '{"s": "aapl", "type": "Z", "t": 1645216790788174600}',
    "[1, 2, 3]",
    "{}",
    "null",
)


@dataclass(eq=False)
class Conn:
    """One client connection and what it logged in with and subscribed to."""

    ws: ServerConnection
    id: int
    rng: random.Random
    api_key: str | None = None
    logged_in: bool = False
    symbols: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    pump: asyncio.Task[None] | None = None


class WebSocketApi:
    """FMP's WebSocket over the market: logins, subscriptions, ticks, faults."""

    def __init__(
        self,
        market: Market,
        faults: Faults,
        *,
        rate: float,
        api_keys: Collection[str] | None,
        heartbeat_interval: float,
        send_login_ack: bool,
        break_probability: float,
        quote_ratio: float,
        stream_symbols: Sequence[str],
        late_trade_probability: float = 0.0,
    ) -> None:
        self.market = market
        self.faults = faults
        self.rate = rate
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.heartbeat_interval = heartbeat_interval
        self.send_login_ack = send_login_ack
        self.break_probability = break_probability
        self.late_trade_probability = late_trade_probability
        self.quote_ratio = quote_ratio
        self.stream_symbols = tuple(s.upper() for s in stream_symbols)

        self.logins = 0  # accepted logins
        self.login_attempts = 0
        self.max_open_connections = 0
        self.ticks_sent = 0
        self.received_frames: list[Any] = []
        self.conns: set[Conn] = set()
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        """Listen on ``port`` (0: a free one); the port listened on."""
        self._server = await serve(
            self._handle,
            host,
            port,
            compression=None,
            max_queue=None,
            ping_interval=None,
            close_timeout=1.0,
        )
        self._heartbeat = asyncio.create_task(
            self._heartbeats(), name="fmp-simulator-heartbeat"
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- fault injection ------------------------------------------------------------
    async def drop_connections(self) -> None:
        """Close every connection abruptly (no close frame)."""
        for conn in list(self.conns):
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()
        logger.info("event=simulator_dropped connections=%d", len(self.conns))

    def send_malformed(
        self, frames: Sequence[str | bytes] | None = None
    ) -> asyncio.Task[None]:
        """Push malformed frames to every connection; await the result to wait."""
        frames = tuple(frames) if frames is not None else DEFAULT_MALFORMED

        async def push() -> None:
            for conn in list(self.conns):
                for frame in frames:
                    with contextlib.suppress(ConnectionClosed):
                        await conn.ws.send(frame)

        return self._spawn(push(), "fmp-simulator-malformed")

    # --- connection handling --------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, conn: Conn, frame: str) -> None:
        if not self.faults.silent:
            await conn.ws.send(frame)

    async def _handle(self, ws: ServerConnection) -> None:
        seed = None if self.market.seed is None else f"{self.market.seed}:connection"
        conn = Conn(ws=ws, id=next(self._ids), rng=random.Random(seed))
        self.conns.add(conn)
        self.max_open_connections = max(self.max_open_connections, len(self.conns))
        logger.debug("event=simulator_connection_opened conn=%d", conn.id)
        try:
            async for raw in ws:
                await self._request(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            if conn.pump is not None:
                conn.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.pump
            logger.debug("event=simulator_connection_closed conn=%d", conn.id)

    async def _request(self, conn: Conn, raw: str | bytes) -> None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = raw
        self.received_frames.append(parsed)
        if len(self.received_frames) > MAX_RECEIVED_FRAMES:
            del self.received_frames[: MAX_RECEIVED_FRAMES // 2]
        request = protocol.parse_client_frame(raw)
        if request is None:
            return
        if request.event == "login":
            await self._login(conn, request.api_key)
            return
        if request.event not in ("subscribe", "unsubscribe"):
            return
        if not conn.logged_in:
            await self._send(
                conn,
                protocol.subscription_ack_frame(request.event, 401, "Not logged in"),
            )
            return
        subscribe = request.event == "subscribe"
        if request.stream:
            (conn.streams.add if subscribe else conn.streams.discard)(request.stream)
            what = request.stream
        else:
            if subscribe:
                conn.symbols.update(request.tickers)
            else:
                conn.symbols.difference_update(request.tickers)
            what = ",".join(t.lower() for t in request.tickers)
        verb = "Subscribed to" if subscribe else "Unsubscribed from"
        await self._send(
            conn, protocol.subscription_ack_frame(request.event, 200, f"{verb} {what}")
        )
        if conn.pump is None and (conn.symbols or conn.streams):
            conn.pump = asyncio.create_task(
                self._pump(conn), name=f"fmp-simulator-pump-{conn.id}"
            )

    async def _login(self, conn: Conn, api_key: str | None) -> None:
        self.login_attempts += 1
        accepted = (
            not self.faults.refuse_logins
            and bool(api_key)
            and (self.api_keys is None or api_key in self.api_keys)
        )
        if not accepted:
            logger.info("event=simulator_login_refused conn=%d", conn.id)
            await self._send(conn, protocol.login_result_frame(401, "Unauthorized"))
            await conn.ws.close(1008, "Unauthorized")
            return
        # One connection per key: the newer login kicks the older connection.
        for other in list(self.conns):
            if other is not conn and other.logged_in and other.api_key == api_key:
                other.logged_in = False
                logger.info("event=simulator_kicked conn=%d by=%d", other.id, conn.id)
                self._spawn(self._kick(other), "fmp-simulator-kick")
        conn.api_key = api_key
        conn.logged_in = True
        self.logins += 1
        if self.send_login_ack:
            await self._send(conn, protocol.login_result_frame(200, "Authenticated"))

    async def _kick(self, conn: Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(
                protocol.login_result_frame(401, "Connected from another location")
            )
            await conn.ws.close(1008, "Connected from another location")

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self.faults.silent:
                continue
            frame = protocol.heartbeat_frame(time.time_ns() // 1_000_000)
            for conn in list(self.conns):
                if conn.logged_in:
                    with contextlib.suppress(ConnectionClosed):
                        await conn.ws.send(frame)

    async def _pump(self, conn: Conn) -> None:
        """Send ``rate`` ticks/s over the connection's symbols, in 10 ms slices."""
        loop = asyncio.get_running_loop()
        owed_legacy = owed_stream = 0.0
        last = loop.time()
        rng = conn.rng
        market = self.market
        pause = SLICE
        try:
            while True:
                await asyncio.sleep(pause)
                now = loop.time()
                elapsed, last = now - last, now
                # A stalled loop must not produce a burst of backlog: a second's
                # worth of frames built in one go starved every other task of the
                # loop (a reader in the same process got one frame per burst).
                owed = min(elapsed, MAX_BACKLOG) * self.rate
                if self.faults.silent or not conn.logged_in:
                    owed_legacy = owed_stream = 0.0
                    continue
                symbols = sorted(conn.symbols)
                if not market.any_symbol:
                    symbols = [s for s in symbols if s in universe.SYMBOLS]
                owed_legacy = min(owed_legacy + owed, MAX_BURST) if symbols else 0.0
                owed_stream = (
                    min(owed_stream + owed, MAX_BURST) if conn.streams else 0.0
                )
                frames: list[str] = []
                if owed_legacy >= 1.0:
                    count = int(owed_legacy)
                    owed_legacy -= count
                    frames += market.legacy_frames(
                        symbols,
                        count,
                        rng,
                        self.quote_ratio,
                        self.break_probability,
                        late_probability=self.late_trade_probability,
                    )
                streamed = [s for s in self.stream_symbols if market.knows(s)]
                if owed_stream >= 1.0 and streamed:
                    count = int(owed_stream)
                    owed_stream -= count
                    frames += market.stream_frames(streamed, count, rng)
                for frame in frames:
                    await conn.ws.send(frame)
                self.ticks_sent += len(frames)
                # Never more than half the loop's time: when building the frames
                # took longer than a slice, rest as long, so a reader sharing the
                # loop (tests, embedded mode) keeps up instead of starving.
                pause = max(SLICE, loop.time() - now)
        except ConnectionClosed:
            return
