"""FMP's REST quote endpoints, served by the simulator on a loopback port.

``/stable/quote?symbol=``, ``/stable/batch-quote?symbols=``,
``/api/v3/quote/<symbols>`` and ``/stable/search-symbol|search-name?query=``, with
FMP's JSON shapes, the same ``apikey`` rule as the WebSocket login, ``[]`` for
unknown symbols, and 429 over a configurable rate limit.

The HTTP layer is the ``websockets`` server the simulator already runs: its
``process_request`` hook answers a plain GET with a response instead of upgrading
it, so no second HTTP stack is needed. Each answer closes its connection (the
library serves one request per connection; clients reconnect, and the product's
client opens one connection per request anyway).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from realtime.upstream.simulator import universe
from realtime.upstream.simulator.market import Faults, Market

SEARCH_LIMIT = 50
MAX_RECORDED_REQUESTS = 10_000
INVALID_KEY_MESSAGE = (
    "Invalid API KEY. Feel free to create a Free API Key or visit "
    "https://site.financialmodelingprep.com/faqs?search=why-is-my-api-key-invalid "
    "for more information."
)
LIMIT_MESSAGE = (
    "Limit Reach . Please upgrade your plan or visit our documentation for more "
    "details at https://site.financialmodelingprep.com/"
)
PREMIUM_MESSAGE = (
    "Premium Query Parameter: this endpoint is not available under your current "
    "subscription."
)


class RestApi:
    """Answers FMP's REST requests from the market; records them, key redacted."""

    def __init__(
        self,
        market: Market,
        faults: Faults,
        *,
        api_keys: Collection[str] | None,
        rate_limit: int | None,
        rate_window: float,
    ) -> None:
        """``rate_limit`` requests per ``rate_window`` seconds are served, the rest
        get 429 (both may change while serving)."""
        self.market = market
        self.faults = faults
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.requests: list[str] = []  # path?query of each request, key redacted
        self._times: deque[float] = deque()
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``port`` (0: a free one); the port listened on."""
        self._server = await serve(
            _never_upgraded,
            host,
            port,
            process_request=self._process_request,
            compression=None,
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response:
        status, body = self.answer(request.method, request.path)
        payload = orjson.dumps(body)
        headers = Headers(
            [
                ("Content-Type", "application/json;charset=utf-8"),
                ("Content-Length", str(len(payload))),
                ("Connection", "close"),
                ("X-Simulated", "true"),
            ]
        )
        return Response(status, HTTPStatus(status).phrase, headers, payload)

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        """Status and JSON body of one REST request (FMP's shapes and errors)."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        shown = parts.path + ("?" if parts.query else "")
        shown += "&".join(
            f"{k}={'***' if k == 'apikey' else v}" for k, v in sorted(query.items())
        )
        self.requests.append(shown)
        if len(self.requests) > MAX_RECORDED_REQUESTS:
            del self.requests[: MAX_RECORDED_REQUESTS // 2]
        if method != "GET":
            return 405, {"Error Message": f"Method {method} not allowed."}
        key = query.get("apikey", "")
        if not key or (self.api_keys is not None and key not in self.api_keys):
            return 401, {"Error Message": INVALID_KEY_MESSAGE}
        if self._over_limit():
            return 429, {"Error Message": LIMIT_MESSAGE}
        path = parts.path.rstrip("/")
        if path == "/stable/quote":
            quote = self.market.quote(query.get("symbol", ""))
            return 200, [quote] if quote else []
        if path == "/stable/batch-quote" or path.startswith("/api/v3/quote/"):
            if path == "/stable/batch-quote":
                if self.faults.rest_batch_status is not None:
                    return self.faults.rest_batch_status, {
                        "Error Message": PREMIUM_MESSAGE
                    }
                raw = query.get("symbols", "")
            else:
                raw = unquote(path.rsplit("/", 1)[1])
            quotes = (self.market.quote(s) for s in raw.split(",") if s.strip())
            return 200, [q for q in quotes if q]
        if path in ("/stable/search-symbol", "/stable/search-name"):
            return 200, search(by_name=path.endswith("name"), query=query)
        return 404, {"Error Message": f"Unknown endpoint {parts.path}"}

    def _over_limit(self) -> bool:
        """Count the request in the sliding window; True when it is one too many."""
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        while self._times and now - self._times[0] >= self.rate_window:
            self._times.popleft()
        if len(self._times) >= self.rate_limit:
            return True
        self._times.append(now)
        return False


def search(*, by_name: bool, query: dict[str, str]) -> list[dict[str, Any]]:
    """FMP's search-symbol / search-name answer over the universe."""
    needle = query.get("query", "").strip().lower()
    try:
        limit = max(1, min(int(query.get("limit", SEARCH_LIMIT)), 1000))
    except ValueError:
        limit = SEARCH_LIMIT
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


async def _never_upgraded(connection: ServerConnection) -> None:
    """Every request is answered in ``process_request``; nothing is upgraded."""
    await connection.close()
