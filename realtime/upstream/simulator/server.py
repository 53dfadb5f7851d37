"""``FmpSimulator``: the market, FMP's WebSocket and its REST API, on loopback.

Used by tests, the benchmarks and embedded mode without an API key. Like FMP it
knows a fixed universe of symbols (realtime/universe.py) and sends nothing for
any other; ``any_symbol=True`` (the constructor's default, for tests and
benchmarks that invent symbols) gives every symbol a synthetic instrument. The
product passes ``REALTIME_SIMULATOR_ANY_SYMBOL`` (off by default).

The WebSocket listens on ``url`` (ws.py), the REST API on a second port,
``rest_url`` (rest.py); both read one market (market.py) and obey one set of
faults, and keep their ports across ``restart``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

from realtime.upstream.simulator.market import Faults, Market
from realtime.upstream.simulator.rest import RestApi
from realtime.upstream.simulator.universe import DayReference, Instrument
from realtime.upstream.simulator.ws import WebSocketApi

logger = logging.getLogger(__name__)

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
        late_trade_probability: float = 0.0,
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
        ``late_trade_probability``: the share of trades sent late, stamped 0.2 to
        1.5 s before they are sent (reported after newer trades, as a late print
        is), so the bars' revision rules run offline (docs/protocol.md, "Bars").
        """
        self.host = host
        self._port = port
        self.serve_rest = serve_rest
        self._rest_port = rest_port
        self.market = Market(seed=seed, any_symbol=any_symbol, trading_day=trading_day)
        self.faults = Faults()
        self.ws = WebSocketApi(
            self.market,
            self.faults,
            rate=rate,
            api_keys=api_keys,
            heartbeat_interval=heartbeat_interval,
            send_login_ack=send_login_ack,
            break_probability=break_probability,
            late_trade_probability=late_trade_probability,
            quote_ratio=quote_ratio,
            stream_symbols=stream_symbols,
        )
        self.rest = RestApi(
            self.market,
            self.faults,
            api_keys=api_keys,
            rate_limit=rest_rate_limit,
            rate_window=rest_rate_window,
        )

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
        self._port = await self.ws.start(self.host, self._port)
        if self.serve_rest:
            self._rest_port = await self.rest.start(self.host, self._rest_port)
        logger.info(
            "event=simulator_listening url=%s rest_url=%s rate=%s any_symbol=%s",
            self.url,
            self.rest_url if self.serve_rest else None,
            self.rate,
            self.any_symbol,
        )

    async def stop(self) -> None:
        await self.ws.stop()
        await self.rest.stop()
        logger.info("event=simulator_stopped url=%s", self.url)

    async def restart(self) -> None:
        """Stop and listen again on the same ports (an FMP server restart)."""
        await self.stop()
        await self.start()

    # --- settings that may change while running -------------------------------------
    @property
    def rate(self) -> float:
        """Ticks per second per connection."""
        return self.ws.rate

    def set_rate(self, rate: float) -> None:
        self.ws.rate = max(0.0, float(rate))

    @property
    def seed(self) -> int | None:
        return self.market.seed

    @property
    def any_symbol(self) -> bool:
        return self.market.any_symbol

    @property
    def send_login_ack(self) -> bool:
        return self.ws.send_login_ack

    @send_login_ack.setter
    def send_login_ack(self, on: bool) -> None:
        self.ws.send_login_ack = on

    @property
    def rest_rate_limit(self) -> int | None:
        return self.rest.rate_limit

    @rest_rate_limit.setter
    def rest_rate_limit(self, limit: int | None) -> None:
        self.rest.rate_limit = limit

    @property
    def rest_batch_status(self) -> int | None:
        """Status of every batch-quote answer when set (e.g. 402: "Premium")."""
        return self.faults.rest_batch_status

    @rest_batch_status.setter
    def rest_batch_status(self, status: int | None) -> None:
        self.faults.rest_batch_status = status

    # --- inspection -----------------------------------------------------------------
    @property
    def logins(self) -> int:
        """Accepted logins."""
        return self.ws.logins

    @property
    def login_attempts(self) -> int:
        return self.ws.login_attempts

    @property
    def max_open_connections(self) -> int:
        return self.ws.max_open_connections

    @property
    def ticks_sent(self) -> int:
        return self.ws.ticks_sent

    @property
    def received_frames(self) -> list[Any]:
        """Frames clients sent, parsed when JSON (the latest 10,000 or so)."""
        return self.ws.received_frames

    @property
    def rest_requests(self) -> list[str]:
        """``path?query`` of each REST request, the API key redacted."""
        return self.rest.requests

    @property
    def open_connections(self) -> int:
        return len(self.ws.conns)

    def connection_subscriptions(self) -> list[frozenset[str]]:
        """Upper-case ticker subscriptions of each open connection."""
        conns = sorted(self.ws.conns, key=lambda c: c.id)
        return [frozenset(c.symbols) for c in conns]

    def subscribed_symbols(self) -> frozenset[str]:
        return frozenset().union(*(c.symbols for c in self.ws.conns))

    # --- the market -----------------------------------------------------------------
    def knows(self, symbol: str) -> bool:
        """Whether FMP (this simulator) lists ``symbol`` (upper case)."""
        return self.market.knows(symbol)

    def instrument(self, symbol: str) -> Instrument | None:
        return self.market.instrument(symbol)

    def trading_day(self) -> date:
        """The trading day of the reference prices."""
        return self.market.trading_day()

    def reference(self, symbol: str) -> DayReference | None:
        """The day's previous close, open, ... of a known symbol."""
        return self.market.reference(symbol)

    def rest_quote(self, symbol: str) -> dict[str, Any] | None:
        """FMP's quote object for ``symbol`` now, or None when FMP would not know it."""
        return self.market.quote(symbol)

    # --- fault injection ------------------------------------------------------------
    async def drop_connections(self) -> None:
        """Close every WebSocket connection abruptly (no close frame)."""
        await self.ws.drop_connections()

    def refuse_logins(self, on: bool = True) -> None:
        """Answer logins with 401 Unauthorized and close."""
        self.faults.refuse_logins = on

    def silence(self, on: bool = True) -> None:
        """Send nothing at all (no ticks, no heartbeats, no acks); keep sockets open."""
        self.faults.silent = on

    def send_malformed(
        self, frames: Sequence[str | bytes] | None = None
    ) -> asyncio.Task[None]:
        """Push malformed frames to every connection; await the result to wait."""
        return self.ws.send_malformed(frames)
