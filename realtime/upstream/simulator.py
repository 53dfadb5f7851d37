"""``FmpSimulator``: a local server speaking FMP's WebSocket protocol.

Used by tests, the benchmarks and embedded mode without an API key. It follows
FMP_UPSTREAM.md: login first (one connection per key: a newer login kicks the
older connection), ticker subscriptions answered with legacy compact ticks whose
``t`` is the real current time in nanoseconds, stream subscriptions answered with
standard-socket quote objects (re-broadcast duplicates included), heartbeats, and
fault injection (drop, refuse logins, malformed frames, silence, restart).

Prices are a random walk per symbol on a cent grid; with a ``seed`` the sequence
of prices of each symbol on a connection is deterministic.
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

logger = logging.getLogger(__name__)

SLICE = 0.01  # seconds between sends: rate * SLICE ticks per slice, fractions carried
MAX_RECEIVED_FRAMES = 10_000
STREAM_DUPLICATE_PROBABILITY = 0.2

DEFAULT_STREAM_SYMBOLS: tuple[str, ...] = (
    "AAPL",
    "MSFT",
    "GOOGL",
    "AMZN",
    "NVDA",
    "META",
    "TSLA",
    "BRK.B",
    "JPM",
    "V",
    "JNJ",
    "WMT",
    "PG",
    "XOM",
    "MA",
    "HD",
    "KO",
    "PEP",
    "NFLX",
    "AMD",
)

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


class _Walk:
    """Random walk of one symbol; all its randomness comes from its own RNG."""

    def __init__(self, symbol: str, seed: int | None) -> None:
        self.rng = random.Random(f"{seed}:{symbol}" if seed is not None else None)
        self.cents = self.rng.randint(2_000, 50_000)
        self.trades: list[tuple[float, int]] = []
        self.last_trade: tuple[float, int] | None = None
        # Standard-socket quote state.
        self.open = self.cents / 100
        self.previous_close = round(self.open * (1 + self.rng.uniform(-0.02, 0.02)), 2)
        self.day_low = self.day_high = self.open
        self.volume = 0
        self.last_quote: dict[str, Any] | None = None

    def step(self) -> None:
        move = round(self.rng.gauss(0, max(1.0, self.cents * 0.0005)))
        self.cents = max(1, self.cents + move)

    def legacy_frame(
        self, symbol: str, t_ns: int, quote_ratio: float, break_probability: float
    ) -> str:
        rng = self.rng
        self.step()
        if self.trades and rng.random() < break_probability:
            lp, ls = rng.choice(self.trades)
            return protocol.encode_tick_legacy(symbol, "B", t_ns, lp=lp, ls=ls)
        # A symbol's first tick is a trade, so a client (the guide's example prints
        # ``last_price`` of every update) never shows a quote-only "None" price.
        if self.last_trade is not None and rng.random() < quote_ratio:
            spread = rng.randint(1, 5)
            bid = max(1, self.cents - spread // 2 - 1)
            ask = bid + spread
            lp, ls = self.last_trade if self.last_trade else (None, None)
            return protocol.encode_tick_legacy(
                symbol,
                "Q",
                t_ns,
                ap=ask / 100,
                as_=100 * rng.randint(1, 10),
                bp=bid / 100,
                bs=100 * rng.randint(1, 10),
                lp=lp,
                ls=ls,
            )
        trade = (self.cents / 100, 100 * rng.randint(1, 10))
        self.last_trade = trade
        self.trades.append(trade)
        if len(self.trades) > 5:
            del self.trades[0]
        return protocol.encode_tick_legacy(symbol, "T", t_ns, lp=trade[0], ls=trade[1])

    def stream_frame(self, symbol: str, now_s: int) -> str:
        if self.last_quote is not None and (
            self.rng.random() < STREAM_DUPLICATE_PROBABILITY
        ):
            return protocol.encode_quote_object(self.last_quote)  # re-broadcast
        self.step()
        price = self.cents / 100
        self.day_low = min(self.day_low, price)
        self.day_high = max(self.day_high, price)
        self.volume += 100 * self.rng.randint(1, 50)
        change = round(price - self.previous_close, 2)
        self.last_quote = {
            "symbol": symbol,
            "name": f"{symbol} Inc.",
            "price": price,
            "changesPercentage": round(100 * change / self.previous_close, 4),
            "change": change,
            "dayLow": self.day_low,
            "dayHigh": self.day_high,
            "open": self.open,
            "previousClose": self.previous_close,
            "volume": self.volume,
            "timestamp": now_s,
        }
        return protocol.encode_quote_object(self.last_quote)


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    id: int
    rng: random.Random
    api_key: str | None = None
    logged_in: bool = False
    symbols: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    walks: dict[str, _Walk] = field(default_factory=dict)
    pump: asyncio.Task[None] | None = None


class FmpSimulator:
    """A loopback FMP server with a random-walk market and fault injection."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 50.0,
        seed: int | None = None,
        api_keys: Collection[str] | None = None,
        heartbeat_interval: float = 30.0,
        send_login_ack: bool = True,
        break_probability: float = 0.01,
        quote_ratio: float = 0.5,
        stream_symbols: Sequence[str] = DEFAULT_STREAM_SYMBOLS,
    ) -> None:
        self.host = host
        self._port = port
        self.rate = rate
        self.seed = seed
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.heartbeat_interval = heartbeat_interval
        self.send_login_ack = send_login_ack
        self.break_probability = break_probability
        self.quote_ratio = quote_ratio
        self.stream_symbols = tuple(s.upper() for s in stream_symbols)

        self.logins = 0  # accepted logins
        self.login_attempts = 0
        self.max_open_connections = 0
        self.ticks_sent = 0
        self.received_frames: list[Any] = []
        self._conns: set[_Conn] = set()
        self._ids = itertools.count(1)
        self._refuse_logins = False
        self._silent = False
        self._server: Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self._port,
            compression=None,
            max_queue=None,
            ping_interval=None,
            close_timeout=1.0,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._heartbeat = asyncio.create_task(
            self._heartbeats(), name="fmp-simulator-heartbeat"
        )
        logger.info("event=simulator_listening url=%s rate=%s", self.url, self.rate)

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
        logger.info("event=simulator_stopped url=%s", self.url)

    async def restart(self) -> None:
        """Stop and listen again on the same port (an FMP server restart)."""
        await self.stop()
        await self.start()

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, float(rate))

    # --- inspection -----------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def connection_subscriptions(self) -> list[frozenset[str]]:
        """Upper-case ticker subscriptions of each open connection."""
        return [frozenset(c.symbols) for c in sorted(self._conns, key=lambda c: c.id)]

    def subscribed_symbols(self) -> frozenset[str]:
        return frozenset().union(*(c.symbols for c in self._conns))

    # --- fault injection ------------------------------------------------------------
    async def drop_connections(self) -> None:
        """Close every connection abruptly (no close frame)."""
        for conn in list(self._conns):
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()
        logger.info("event=simulator_dropped connections=%d", len(self._conns))

    def refuse_logins(self, on: bool = True) -> None:
        """Answer logins with 401 Unauthorized and close."""
        self._refuse_logins = on

    def silence(self, on: bool = True) -> None:
        """Send nothing at all (no ticks, no heartbeats, no acks); keep sockets open."""
        self._silent = on

    def send_malformed(
        self, frames: Sequence[str | bytes] | None = None
    ) -> asyncio.Task[None]:
        """Push malformed frames to every connection; await the result to wait."""
        frames = tuple(frames) if frames is not None else DEFAULT_MALFORMED

        async def push() -> None:
            for conn in list(self._conns):
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

    async def _send(self, conn: _Conn, frame: str) -> None:
        if not self._silent:
            await conn.ws.send(frame)

    async def _handle(self, ws: ServerConnection) -> None:
        seed = None if self.seed is None else f"{self.seed}:connection"
        conn = _Conn(ws=ws, id=next(self._ids), rng=random.Random(seed))
        self._conns.add(conn)
        self.max_open_connections = max(self.max_open_connections, len(self._conns))
        logger.debug("event=simulator_connection_opened conn=%d", conn.id)
        try:
            async for raw in ws:
                await self._request(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            if conn.pump is not None:
                conn.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.pump
            logger.debug("event=simulator_connection_closed conn=%d", conn.id)

    async def _request(self, conn: _Conn, raw: str | bytes) -> None:
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

    async def _login(self, conn: _Conn, api_key: str | None) -> None:
        self.login_attempts += 1
        accepted = (
            not self._refuse_logins
            and bool(api_key)
            and (self.api_keys is None or api_key in self.api_keys)
        )
        if not accepted:
            logger.info("event=simulator_login_refused conn=%d", conn.id)
            await self._send(conn, protocol.login_result_frame(401, "Unauthorized"))
            await conn.ws.close(1008, "Unauthorized")
            return
        # One connection per key: the newer login kicks the older connection.
        for other in list(self._conns):
            if other is not conn and other.logged_in and other.api_key == api_key:
                other.logged_in = False
                logger.info("event=simulator_kicked conn=%d by=%d", other.id, conn.id)
                self._spawn(self._kick(other), "fmp-simulator-kick")
        conn.api_key = api_key
        conn.logged_in = True
        self.logins += 1
        if self.send_login_ack:
            await self._send(conn, protocol.login_result_frame(200, "Authenticated"))

    async def _kick(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(
                protocol.login_result_frame(401, "Connected from another location")
            )
            await conn.ws.close(1008, "Connected from another location")

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self._silent:
                continue
            frame = protocol.heartbeat_frame(time.time_ns() // 1_000_000)
            for conn in list(self._conns):
                if conn.logged_in:
                    with contextlib.suppress(ConnectionClosed):
                        await conn.ws.send(frame)

    async def _pump(self, conn: _Conn) -> None:
        """Send ``rate`` ticks/s over the connection's symbols, in 10 ms slices."""
        loop = asyncio.get_running_loop()
        owed_legacy = owed_stream = 0.0
        last = loop.time()
        rng = conn.rng
        try:
            while True:
                await asyncio.sleep(SLICE)
                now = loop.time()
                elapsed, last = now - last, now
                # A stalled loop must not produce a burst of backlog.
                owed = min(elapsed, 1.0) * self.rate
                if self._silent or not conn.logged_in:
                    owed_legacy = owed_stream = 0.0
                    continue
                symbols = sorted(conn.symbols) if conn.symbols else []
                owed_legacy = owed_legacy + owed if symbols else 0.0
                owed_stream = owed_stream + owed if conn.streams else 0.0
                frames: list[str] = []
                if owed_legacy >= 1.0:
                    count = int(owed_legacy)
                    owed_legacy -= count
                    for _ in range(count):
                        symbol = symbols[rng.randrange(len(symbols))]
                        walk = conn.walks.get(symbol)
                        if walk is None:
                            walk = conn.walks[symbol] = _Walk(symbol, self.seed)
                        frames.append(
                            walk.legacy_frame(
                                symbol,
                                time.time_ns(),
                                self.quote_ratio,
                                self.break_probability,
                            )
                        )
                if owed_stream >= 1.0 and self.stream_symbols:
                    count = int(owed_stream)
                    owed_stream -= count
                    now_s = int(time.time())
                    universe = self.stream_symbols
                    for _ in range(count):
                        symbol = universe[rng.randrange(len(universe))]
                        key = f"stream:{symbol}"
                        walk = conn.walks.get(key)
                        if walk is None:
                            walk = conn.walks[key] = _Walk(key, self.seed)
                        frames.append(walk.stream_frame(symbol, now_s))
                for frame in frames:
                    await conn.ws.send(frame)
                self.ticks_sent += len(frames)
        except ConnectionClosed:
            return
