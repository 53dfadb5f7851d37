"""``FmpRestClient``: FMP's REST quote endpoints (FMP_UPSTREAM.md, "FMP REST API"),
and the mapping of FMP's quote objects to ``Reference`` entries.

Requests are rare (one batch per new symbol per trading day), so they use the
standard library's HTTP client on a small private thread pool instead of adding an
async HTTP dependency; the event loop only awaits the result. TLS trusts certifi's
bundle plus ``SSL_CERT_FILE``/``SSL_CERT_DIR`` and ``FMP_CA_BUNDLE``, like the
stream. The API key travels as FMP wants it (``apikey=`` in the query) and never
appears in a log line or an exception message. FMP's quote fields are loose
(numbers sometimes as strings, ``exchange`` or ``exchangeShortName``), so the
mapping accepts both and leaves a field it cannot read as None.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

import orjson

from realtime.reference.cache import UNKNOWN, Entry, Reference
from realtime.upstream.config import trust_context

logger = logging.getLogger(__name__)

# A few threads are plenty (requests are batched and rare); a private pool keeps a
# hanging DNS lookup from occupying threads other code relies on.
_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fmp-rest")
USER_AGENT = "fmpsite-reference/1"
ASSET_CLASS_BY_EXCHANGE = {
    "CRYPTO": "crypto",
    "FOREX": "forex",
    "INDEX": "index",
    "COMMODITY": "commodity",
}


class RestError(Exception):
    """A failed REST call; the message never contains the API key."""

    status: int | None = None


class RestUnavailable(RestError):
    """Network error, timeout, 5xx or a body that is not FMP's JSON."""


class RateLimited(RestError):
    """429: over the plan's request rate; ``retry_after`` seconds if FMP said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = 429
        self.retry_after = retry_after


class RestRefused(RestError):
    """401/402/403: the key is invalid or the plan does not include the endpoint."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class QuoteBatch:
    """Quote objects of one answer, and whether the simulator produced them."""

    quotes: list[dict[str, Any]]
    simulated: bool


def rest_ssl_context() -> ssl.SSLContext:
    """The same trust as the upstream socket's (realtime/upstream/config.py)."""
    from django.conf import settings

    return trust_context(getattr(settings, "FMP_CA_BUNDLE", ""))


def _error_message(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed, dict):
        return str(parsed.get("Error Message") or parsed.get("message") or parsed)[:200]
    return str(parsed)[:200]


class FmpRestClient:
    """Calls ``<base_url>/stable/...`` with ``apikey``; raises RestError subclasses."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self._ssl = ssl_context
        if self._ssl is None and self.base_url.lower().startswith("https://"):
            self._ssl = rest_ssl_context()

    def __repr__(self) -> str:  # never the key
        return f"FmpRestClient({self.base_url!r})"

    async def batch_quote(self, symbols: Sequence[str]) -> QuoteBatch:
        """``/stable/batch-quote?symbols=A,B``: quote objects of the known ones."""
        return await self._get("/stable/batch-quote", {"symbols": ",".join(symbols)})

    async def quote(self, symbol: str) -> QuoteBatch:
        """``/stable/quote?symbol=A``: a list of zero or one quote object."""
        return await self._get("/stable/quote", {"symbol": symbol})

    async def _get(self, path: str, params: dict[str, str]) -> QuoteBatch:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(_EXECUTOR, self._get_blocking, path, params)
        try:
            # urlopen's timeout does not cover the DNS lookup: bound the wait here.
            return await asyncio.wait_for(call, self.timeout + 1.0)
        except TimeoutError as exc:
            raise RestUnavailable(f"{path}: no answer in {self.timeout:.0f}s") from exc

    def _get_blocking(self, path: str, params: dict[str, str]) -> QuoteBatch:
        query = urlencode({**params, "apikey": self._api_key})
        request = urllib.request.Request(
            f"{self.base_url}{path}?{query}",
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._ssl
            ) as response:
                body = response.read()
                simulated = response.headers.get("X-Simulated", "") == "true"
        except urllib.error.HTTPError as exc:
            body = exc.read() if exc.fp is not None else b""
            message = f"{path}: HTTP {exc.code}: {_error_message(body)}"
            if exc.code == 429:
                retry_after = exc.headers.get("Retry-After", "")
                raise RateLimited(
                    message,
                    float(retry_after) if retry_after.isdigit() else None,
                ) from None
            if exc.code in (401, 402, 403):
                raise RestRefused(message, exc.code) from None
            error = RestUnavailable(message)
            error.status = exc.code
            raise error from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # URLError's text may quote the URL: name only the path and the reason.
            reason = getattr(exc, "reason", exc)
            raise RestUnavailable(f"{path}: {type(exc).__name__}: {reason}") from None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RestUnavailable(f"{path}: the answer is not JSON") from None
        if not isinstance(parsed, list):
            # FMP answers some errors with 200 and {"Error Message": ...}.
            raise RestUnavailable(f"{path}: unexpected answer: {_error_message(body)}")
        return QuoteBatch(
            quotes=[q for q in parsed if isinstance(q, dict)], simulated=simulated
        )


# --- Quote object -> Reference ------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def asset_class_of(symbol: str, exchange: str | None) -> str:
    """FMP's ``exchange`` decides (CRYPTO, FOREX, INDEX, COMMODITY), else stock."""
    if exchange and exchange.upper() in ASSET_CLASS_BY_EXCHANGE:
        return ASSET_CLASS_BY_EXCHANGE[exchange.upper()]
    if symbol.startswith("^"):
        return "index"
    return "stock" if exchange else "unknown"


def reference_from_quote(
    symbol: str, quote: dict[str, Any], day: date, simulated: bool
) -> Reference:
    name = quote.get("name")
    exchange = quote.get("exchange") or quote.get("exchangeShortName")
    exchange = exchange if isinstance(exchange, str) else None
    return Reference(
        symbol=symbol,
        name=name if isinstance(name, str) and name else None,
        exchange=exchange,
        asset_class=asset_class_of(symbol, exchange),
        previous_close=_number(quote.get("previousClose")),
        open=_number(quote.get("open")),
        day_high=_number(quote.get("dayHigh")),
        day_low=_number(quote.get("dayLow")),
        simulated=simulated,
        trading_day=day.isoformat(),
    )


def entries_from_quotes(
    batch: QuoteBatch, answered: Sequence[str], day: date, simulated: bool
) -> dict[str, Entry]:
    """An entry per symbol the answer covers: its Reference, or UNKNOWN when FMP
    listed no quote for it (FMP leaves unknown symbols out of a batch)."""
    simulated = simulated or batch.simulated
    by_symbol = {
        q["symbol"].upper(): q for q in batch.quotes if isinstance(q.get("symbol"), str)
    }
    return {
        symbol: UNKNOWN
        if (quote := by_symbol.get(symbol)) is None
        else reference_from_quote(symbol, quote, day, simulated)
        for symbol in answered
    }
