"""``FmpSimulator``: a local server speaking FMP's WebSocket protocol.

Used by tests, the benchmarks and embedded mode without an API key. It follows
FMP_UPSTREAM.md: login first (one connection per key: a newer login kicks the
older connection), ticker subscriptions answered with legacy compact ticks whose
``t`` is the real current time in nanoseconds, stream subscriptions answered with
standard-socket quote objects (re-broadcast duplicates included), heartbeats, and
fault injection (drop, refuse logins, malformed frames, silence, restart).

Like FMP it knows a fixed universe of symbols (realtime/upstream/universe.py) and
sends nothing for any other; ``any_symbol=True`` (the constructor's default, for
tests and benchmarks that invent symbols) gives every symbol a synthetic
instrument. The product passes ``REALTIME_SIMULATOR_ANY_SYMBOL`` (off by default).

Prices are a mean-reverting random walk per symbol on the instrument's price grid
(cents, pips), around the day's opening price. The levels, the previous close and
the open come from the symbol and the trading day alone, so prices are plausible
(AAPL near 190, EURUSD near 1.08) and the same kind of number after a restart;
with a ``seed`` the sequence of prices of each symbol is deterministic too.

It also serves FMP's REST quote endpoints on a second loopback port
(``rest_url``): ``/stable/quote?symbol=``, ``/stable/batch-quote?symbols=``,
``/api/v3/quote/<symbols>`` and ``/stable/search-symbol|search-name?query=``,
with FMP's JSON shapes, the same ``apikey`` rule as the WebSocket login, ``[]``
for unknown symbols, and 429 over a configurable rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from realtime.upstream import protocol, universe
from realtime.upstream.universe import DayReference, Instrument

# Reference prices are a pure function of (instrument, day): compute each once.
_day_reference = functools.lru_cache(maxsize=8192)(universe.day_reference)

logger = logging.getLogger(__name__)

SLICE = 0.01  # seconds between sends: rate * SLICE ticks per slice, fractions carried
MAX_BACKLOG = 0.05  # seconds of ticks owed at most after a late wake-up
MAX_BURST = 500  # frames built per wake-up at most (~20 ms of work), any rate
MAX_RECEIVED_FRAMES = 10_000
STREAM_DUPLICATE_PROBABILITY = 0.2
# Walk: each step moves by a share of the price (per asset class) and is pulled
# back toward the day's open, so prices wander about half a percent and never
# run away from their level however long the simulator runs.
VOLATILITY = {"forex": 0.0001, "index": 0.0002}
DEFAULT_VOLATILITY = 0.0004
REVERSION = 0.003
SPREAD = 0.00003  # of the price, per spread step (1-5 steps)
REST_SEARCH_LIMIT = 50
INVALID_KEY_MESSAGE = (
    "Invalid API KEY. Feel free to create a Free API Key or visit "
    "https://site.financialmodelingprep.com/faqs?search=why-is-my-api-key-invalid "
    "for more information."
)
LIMIT_MESSAGE = (
    "Limit Reach . Please upgrade your plan or visit our documentation for more "
    "details at https://site.financialmodelingprep.com/"
)

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

    def __init__(
        self,
        symbol: str,
        seed: int | None,
        inst: Instrument,
        day: date,
        ref: DayReference,
    ) -> None:
        self.rng = random.Random(f"{seed}:{symbol}" if seed is not None else None)
        self.inst = inst
        self.tick = inst.tick_size
        self.decimals = inst.decimals
        self.trades: list[tuple[float, float]] = []
        self.last_trade: tuple[float, float] | None = None
        self.last_quote: dict[str, Any] | None = None
        self.volume = 0
        self.anchor(day, ref)
        self.units = self.open_units
        self.day_low = self.day_high = self.open

    def anchor(self, day: date, ref: DayReference) -> None:
        """Take a (new) trading day's reference prices; the walk drifts to them."""
        self.day = day
        self.ref = ref
        self.open = ref.open
        self.previous_close = ref.previous_close
        self.open_units = max(1, round(ref.open / self.tick))
        share = VOLATILITY.get(self.inst.asset_class, DEFAULT_VOLATILITY)
        self.sigma = max(1.0, self.open_units * share)

    @property
    def price(self) -> float:
        return round(self.units * self.tick, self.decimals)

    def step(self) -> None:
        pull = -REVERSION * (self.units - self.open_units)
        self.units = max(1, self.units + round(self.rng.gauss(pull, self.sigma)))

    def size(self) -> float:
        """A trade or quote size in the asset class's usual lots."""
        rng = self.rng
        asset_class = self.inst.asset_class
        if asset_class == "crypto":
            return round(rng.uniform(0.0005, 2.0), 8)
        if asset_class == "forex":
            return 1_000_000 * rng.randint(1, 5)
        return 100 * rng.randint(1, 10)

    def trade(self) -> tuple[float, float]:
        price = self.price
        self.day_low = min(self.day_low, price)
        self.day_high = max(self.day_high, price)
        trade = (price, self.size())
        self.volume += trade[1]
        return trade

    def legacy_frame(
        self, symbol: str, t_ns: int, quote_ratio: float, break_probability: float
    ) -> str:
        rng = self.rng
        self.step()
        exchange = "binance" if self.inst.asset_class == "crypto" else None
        if self.trades and rng.random() < break_probability:
            lp, ls = rng.choice(self.trades)
            return protocol.encode_tick_legacy(symbol, "B", t_ns, lp=lp, ls=ls)
        # A symbol's first tick is a trade, so a client (the guide's example prints
        # ``last_price`` of every update) never shows a quote-only "None" price.
        if self.last_trade is not None and rng.random() < quote_ratio:
            spread = max(1, round(self.open_units * SPREAD * rng.randint(1, 5)))
            bid = max(1, self.units - spread // 2 - 1)
            ask = bid + spread
            lp, ls = self.last_trade
            return protocol.encode_tick_legacy(
                symbol,
                "Q",
                t_ns,
                ap=round(ask * self.tick, self.decimals),
                as_=self.size(),
                bp=round(bid * self.tick, self.decimals),
                bs=self.size(),
                lp=lp,
                ls=ls,
                e=exchange,
            )
        trade = self.trade()
        self.last_trade = trade
        self.trades.append(trade)
        if len(self.trades) > 5:
            del self.trades[0]
        return protocol.encode_tick_legacy(
            symbol, "T", t_ns, lp=trade[0], ls=trade[1], e=exchange
        )

    def stream_frame(self, symbol: str, now_s: int) -> str:
        if self.last_quote is not None and (
            self.rng.random() < STREAM_DUPLICATE_PROBABILITY
        ):
            return protocol.encode_quote_object(self.last_quote)  # re-broadcast
        self.step()
        price, _ = self.trade()
        change = round(price - self.previous_close, self.decimals)
        self.last_quote = {
            "symbol": symbol,
            "name": self.inst.name,
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

    def rest_quote(self, now_s: int) -> dict[str, Any]:
        """FMP's ``/stable/quote`` object for this symbol right now."""
        inst, ref = self.inst, self.ref
        price = self.price if self.last_trade is not None else self.open
        change = round(price - self.previous_close, self.decimals)
        return {
            "symbol": inst.symbol,
            "name": inst.name,
            "price": price,
            "changePercentage": round(100 * change / self.previous_close, 5),
            "change": change,
            "volume": round(self.volume + ref.avg_volume // 4, 8),
            "dayLow": min(self.day_low, price),
            "dayHigh": max(self.day_high, price),
            "yearHigh": max(ref.year_high, self.day_high, price),
            "yearLow": min(ref.year_low, self.day_low, price),
            "marketCap": round(price * ref.shares),
            "priceAvg50": ref.price_avg50,
            "priceAvg200": ref.price_avg200,
            "exchange": inst.exchange,
            "open": self.open,
            "previousClose": self.previous_close,
            "timestamp": now_s,
        }


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    id: int
    rng: random.Random
    api_key: str | None = None
    logged_in: bool = False
    symbols: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
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
        any_symbol: bool = True,
        serve_rest: bool = True,
        rest_port: int = 0,
        rest_rate_limit: int | None = None,
        rest_rate_window: float = 60.0,
        trading_day: date | None = None,
    ) -> None:
        """``any_symbol=False`` is FMP's behaviour: ticks and REST quotes only for
        the universe's symbols. ``rest_rate_limit`` requests per
        ``rest_rate_window`` seconds are served, the rest get 429. ``trading_day``
        pins the day the reference prices belong to (default: the current one).
        """
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
        self.any_symbol = any_symbol
        self.serve_rest = serve_rest
        self._rest_port = rest_port
        self.rest_rate_limit = rest_rate_limit
        self.rest_rate_window = rest_rate_window
        self._fixed_day = trading_day
        self._day: tuple[float, date] | None = None
        self._walks: dict[str, _Walk] = {}
        # REST inspection and fault injection.
        self.rest_requests: list[str] = []  # path?query of each request, key redacted
        self.rest_batch_status: int | None = None  # e.g. 402: batch is "Premium"
        self._rest_times: deque[float] = deque()
        self._rest_server: asyncio.Server | None = None
        self._rest_writers: set[asyncio.StreamWriter] = set()

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

    @property
    def rest_port(self) -> int:
        return self._rest_port

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API (FMP's ``https://financialmodelingprep.com``)."""
        return f"http://{self.host}:{self._rest_port}"

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
        if self.serve_rest:
            self._rest_server = await asyncio.start_server(
                self._http, self.host, self._rest_port
            )
            self._rest_port = self._rest_server.sockets[0].getsockname()[1]
        logger.info(
            "event=simulator_listening url=%s rest_url=%s rate=%s any_symbol=%s",
            self.url,
            self.rest_url if self.serve_rest else None,
            self.rate,
            self.any_symbol,
        )

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
        if self._rest_server is not None:
            self._rest_server.close()
            for writer in list(self._rest_writers):
                writer.close()
            await self._rest_server.wait_closed()
            self._rest_server = None
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

    # --- the market -----------------------------------------------------------------
    def knows(self, symbol: str) -> bool:
        """Whether FMP (this simulator) lists ``symbol`` (upper case)."""
        return self.any_symbol or symbol in universe.SYMBOLS

    def instrument(self, symbol: str) -> Instrument | None:
        if self.any_symbol:
            return universe.synthetic_instrument(symbol)
        return universe.instrument(symbol)

    def trading_day(self) -> date:
        """The trading day of the reference prices (recomputed once a second)."""
        if self._fixed_day is not None:
            return self._fixed_day
        now = time.monotonic()
        if self._day is None or now - self._day[0] > 1.0:
            self._day = (now, universe.trading_day())
        return self._day[1]

    def reference(self, symbol: str) -> DayReference | None:
        """The day's previous close, open, ... of a known symbol."""
        inst = self.instrument(symbol)
        return None if inst is None else _day_reference(inst, self.trading_day())

    def _walk(self, key: str, symbol: str) -> _Walk | None:
        """The shared walk of ``symbol`` (``key`` separates the stream's walks).

        Walks live as long as the simulator, so a reconnecting feed sees prices
        carry on where they were instead of jumping.
        """
        walk = self._walks.get(key)
        day = self.trading_day()
        if walk is None:
            inst = self.instrument(symbol)
            if inst is None:
                return None
            walk = self._walks[key] = _Walk(
                key, self.seed, inst, day, _day_reference(inst, day)
            )
        elif walk.day != day:
            walk.anchor(day, _day_reference(walk.inst, day))
        return walk

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

    # --- REST API (FMP's quote endpoints) --------------------------------------------
    def rest_quote(self, symbol: str) -> dict[str, Any] | None:
        """FMP's quote object for ``symbol`` now, or None when FMP would not know it."""
        symbol = symbol.strip().upper()
        if not symbol or not self.knows(symbol):
            return None
        walk = self._walks.get(symbol) or self._walks.get(f"stream:{symbol}")
        if walk is None:  # not streamed yet: the day's open, without keeping a walk
            inst = self.instrument(symbol)
            if inst is None:
                return None
            day = self.trading_day()
            walk = _Walk(symbol, self.seed, inst, day, _day_reference(inst, day))
        return walk.rest_quote(int(time.time()))

    def _rest_answer(self, method: str, target: str) -> tuple[int, Any]:
        """Status and JSON body of one REST request (FMP's shapes and errors)."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        shown = parts.path + ("?" if parts.query else "")
        shown += "&".join(
            f"{k}={'***' if k == 'apikey' else v}" for k, v in sorted(query.items())
        )
        self.rest_requests.append(shown)
        if len(self.rest_requests) > MAX_RECEIVED_FRAMES:
            del self.rest_requests[: MAX_RECEIVED_FRAMES // 2]
        if method != "GET":
            return 405, {"Error Message": f"Method {method} not allowed."}
        key = query.get("apikey", "")
        if not key or (self.api_keys is not None and key not in self.api_keys):
            return 401, {"Error Message": INVALID_KEY_MESSAGE}
        if self.rest_rate_limit is not None:
            now = time.monotonic()
            while self._rest_times and now - self._rest_times[0] >= (
                self.rest_rate_window
            ):
                self._rest_times.popleft()
            if len(self._rest_times) >= self.rest_rate_limit:
                return 429, {"Error Message": LIMIT_MESSAGE}
            self._rest_times.append(now)
        path = parts.path.rstrip("/")
        if path == "/stable/quote":
            quote = self.rest_quote(query.get("symbol", ""))
            return 200, [quote] if quote else []
        if path == "/stable/batch-quote" or path.startswith("/api/v3/quote/"):
            if path == "/stable/batch-quote":
                if self.rest_batch_status is not None:
                    return self.rest_batch_status, {
                        "Error Message": "Premium Query Parameter: this endpoint "
                        "is not available under your current subscription."
                    }
                raw = query.get("symbols", "")
            else:
                raw = unquote(path.rsplit("/", 1)[1])
            quotes = (self.rest_quote(s) for s in raw.split(",") if s.strip())
            return 200, [q for q in quotes if q]
        if path in ("/stable/search-symbol", "/stable/search-name"):
            return 200, self._search(path.endswith("name"), query)
        return 404, {"Error Message": f"Unknown endpoint {parts.path}"}

    def _search(self, by_name: bool, query: dict[str, str]) -> list[dict[str, Any]]:
        needle = query.get("query", "").strip().lower()
        try:
            limit = max(1, min(int(query.get("limit", REST_SEARCH_LIMIT)), 1000))
        except ValueError:
            limit = REST_SEARCH_LIMIT
        if not needle:
            return []
        found = [
            inst
            for inst in universe.INSTRUMENTS.values()
            if needle in (inst.name.lower() if by_name else inst.symbol.lower())
        ]
        found.sort(key=lambda i: (not i.symbol.lower().startswith(needle), i.symbol))
        return [
            {
                "symbol": inst.symbol,
                "name": inst.name,
                "currency": "USD",
                "exchangeFullName": inst.exchange,
                "exchange": inst.exchange,
            }
            for inst in found[:limit]
        ]

    async def _http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A minimal HTTP/1.1 server: GET requests, keep-alive, JSON answers."""
        self._rest_writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line.strip():
                    break
                request = line.decode("latin-1").split()
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if len(request) != 3 or not request[2].startswith("HTTP/"):
                    status, body = 400, {"Error Message": "Bad request"}
                    keep_alive = False
                else:
                    method, target, version = request
                    status, body = self._rest_answer(method, target)
                    keep_alive = (
                        version == "HTTP/1.1"
                        and headers.get("connection", "").lower() != "close"
                    )
                payload = orjson.dumps(body)
                head = (
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                    "Content-Type: application/json;charset=utf-8\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
                    "X-Simulated: true\r\n\r\n"
                )
                writer.write(head.encode("latin-1") + payload)
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, ValueError, asyncio.IncompleteReadError) as exc:
            logger.debug("event=simulator_rest_error error=%r", exc)
        finally:
            self._rest_writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

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
                if self._silent or not conn.logged_in:
                    owed_legacy = owed_stream = 0.0
                    continue
                symbols = sorted(conn.symbols)
                if not self.any_symbol:
                    symbols = [s for s in symbols if s in universe.SYMBOLS]
                owed_legacy = min(owed_legacy + owed, MAX_BURST) if symbols else 0.0
                owed_stream = (
                    min(owed_stream + owed, MAX_BURST) if conn.streams else 0.0
                )
                frames: list[str] = []
                walks, day = self._walks, self.trading_day()
                if owed_legacy >= 1.0:
                    count = int(owed_legacy)
                    owed_legacy -= count
                    for _ in range(count):
                        symbol = symbols[rng.randrange(len(symbols))]
                        walk = walks.get(symbol)
                        if walk is None or walk.day != day:
                            walk = self._walk(symbol, symbol)
                            assert walk is not None  # known symbols only
                        frames.append(
                            walk.legacy_frame(
                                symbol,
                                time.time_ns(),
                                self.quote_ratio,
                                self.break_probability,
                            )
                        )
                streamed = [s for s in self.stream_symbols if self.knows(s)]
                if owed_stream >= 1.0 and streamed:
                    count = int(owed_stream)
                    owed_stream -= count
                    now_s = int(time.time())
                    for _ in range(count):
                        symbol = streamed[rng.randrange(len(streamed))]
                        walk = self._walk(f"stream:{symbol}", symbol)
                        assert walk is not None
                        frames.append(walk.stream_frame(symbol, now_s))
                for frame in frames:
                    await conn.ws.send(frame)
                self.ticks_sent += len(frames)
                # Never more than half the loop's time: when building the frames
                # took longer than a slice, rest as long, so a reader sharing the
                # loop (tests, embedded mode) keeps up instead of starving.
                pause = max(SLICE, loop.time() - now)
        except ConnectionClosed:
            return
