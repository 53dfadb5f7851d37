"""``ReferenceService``: reference data from FMP's REST API, cached per trading day.

Why it looks like this:
- **batched and coalesced**: symbols asked for within ``batch_window`` (20 ms) by
  any number of callers (a page of 50 cards, 1,000 clients subscribing after a
  restart) become one ``/stable/batch-quote`` request per ``batch_size`` symbols,
  and a symbol already being fetched is awaited, not fetched again;
- **cached per symbol per trading day** (cache.py), unknown symbols included;
- **well under FMP's limits**: at most ``max_per_minute`` requests (a token
  bucket), and after a 429 (or an unreachable FMP, or a refused key) no request at
  all until a back-off that doubles up to ``backoff_cap`` has passed;
- **fail open**: when FMP cannot answer, a symbol is "unresolved", never
  "unknown", so a subscribe is never refused because FMP's REST API is down;
- never on the tick path: callers are snapshots, REST views and the subscribe
  check, each bounding its wait with ``wait``.

Where the REST API is (``FMP_REST_URL`` with a key, or the simulator's port
registered with ``set_rest_base``) is endpoint.py's job, the HTTP calls and the
mapping of FMP's quotes to entries client.py's; with no endpoint the service
answers "unavailable" (the REST view's 503) and the subscribe check lets every
symbol through. ``set_rest_base`` and ``rest_endpoint`` are importable from here
too, where the feed runner and the tests have always found them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from realtime.backends import backends, reset_backends
from realtime.coalesce import Coalescer
from realtime.marketday import trading_day
from realtime.ratelimit import TokenBucket
from realtime.reference.cache import (
    Entry,
    Reference,
    ReferenceCache,
    Unknown,
)
from realtime.reference.client import (
    FmpRestClient,
    QuoteBatch,
    RateLimited,
    RestError,
    RestRefused,
    RestUnavailable,
    entries_from_quotes,
)
from realtime.reference.endpoint import (
    reset_rest_base,
    rest_endpoint,
    set_rest_base,
)
from realtime.symbols import InvalidSymbol, normalize_symbol

logger = logging.getLogger(__name__)

__all__ = [
    "ReferenceService",
    "Resolution",
    "get_reference_service",
    "reset_reference_service",
    "rest_endpoint",
    "set_rest_base",
]


# --- The service --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """Per requested symbol: a Reference, known to be unknown, or unresolved."""

    references: dict[str, Reference]
    unknown: list[str]
    unresolved: list[str]


@dataclass
class _LoopState:
    """Coalescing state; futures belong to one event loop."""

    inflight: dict[str, asyncio.Future[Entry | None]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class ReferenceService:
    def __init__(
        self,
        *,
        cache: ReferenceCache,
        endpoint: Callable[[], tuple[str, str, bool] | None] = rest_endpoint,
        timeout: float = 5.0,
        batch_size: int = 50,
        max_per_minute: float = 60.0,
        backoff: float = 30.0,
        backoff_cap: float = 600.0,
        batch_window: float = 0.02,
        per_symbol_cap: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.endpoint = endpoint
        self.timeout = timeout
        self.batch_size = max(1, batch_size)
        self.max_per_minute = max_per_minute
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.batch_window = batch_window
        self.per_symbol_cap = per_symbol_cap
        self.clock = clock
        self.requests = 0  # REST requests sent (tests, /health)
        self.batch_supported = True
        self.last_error: str | None = None
        self._failures = 0
        self._blocked_until = 0.0
        # No bucket: no cap (FMP_REST_MAX_PER_MINUTE=0).
        self._budget = (
            TokenBucket(max_per_minute / 60.0, max_per_minute, clock)
            if max_per_minute > 0
            else None
        )
        self._client: FmpRestClient | None = None
        self._client_for: tuple[str, str] | None = None
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _LoopState
        ] = weakref.WeakKeyDictionary()
        # Concurrent lookups (a storm of subscribes) share one cache read per
        # round instead of a thread and a Redis round trip each (coalesce.py).
        self._cache_reads: Coalescer[tuple[date, str], Entry] = Coalescer(
            self._read_cache, name="reference-cache"
        )

    # --- public API -----------------------------------------------------------------
    async def resolve(
        self, symbols: Iterable[str], wait: float | None = None
    ) -> Resolution:
        """Look ``symbols`` up: cache first, then one coalesced FMP request.

        ``wait`` bounds the time spent waiting for FMP (None: the request's own
        timeout); what is not back by then is unresolved (the fetch carries on and
        fills the cache for the next caller).
        """
        names: list[str] = []
        for raw in symbols:
            try:
                symbol = normalize_symbol(raw)
            except InvalidSymbol:
                continue
            if symbol not in names:
                names.append(symbol)
        day = trading_day()
        entries: dict[str, Entry] = {}
        if names:
            try:
                found = await self._cache_reads.get_many((day, s) for s in names)
                entries = {s: entry for (_, s), entry in found.items()}
            except Exception as exc:  # Redis down: ask FMP, stay correct
                logger.warning("event=reference_cache_read_failed error=%r", exc)
        missing = [s for s in names if s not in entries]
        if missing:
            fetched = await self._coalesced(day, missing, wait)
            entries.update({s: e for s, e in fetched.items() if e is not None})
        references = {s: e for s in names if isinstance(e := entries.get(s), Reference)}
        unknown = [s for s in names if isinstance(entries.get(s), Unknown)]
        unresolved = [s for s in names if s not in entries]
        return Resolution(references, unknown, unresolved)

    async def get_references(
        self, symbols: Iterable[str], wait: float | None = None
    ) -> dict[str, Reference]:
        """References of the symbols FMP knows (unknown and unresolved left out)."""
        return (await self.resolve(symbols, wait)).references

    async def unknown_symbols(
        self, symbols: Iterable[str], wait: float | None = None
    ) -> list[str]:
        """Symbols FMP reports unknown. Fails open: no answer means not unknown."""
        resolution = await self.resolve(symbols, wait)
        if resolution.unresolved:
            logger.info(
                "event=reference_fail_open symbols=%d reason=%s",
                len(resolution.unresolved),
                self.last_error or "no answer yet",
            )
        return resolution.unknown

    def status(self) -> dict[str, Any]:
        """For /health: whether reference data can be fetched now, and why not."""
        endpoint = self.endpoint()
        backing_off = self.clock() < self._blocked_until
        return {
            "available": endpoint is not None and not backing_off,
            "source": None
            if endpoint is None
            else ("simulator" if endpoint[2] else "fmp"),
            "backoff_seconds": round(max(0.0, self._blocked_until - self.clock()), 1),
            "batch_supported": self.batch_supported,
            "requests": self.requests,
            "last_error": self.last_error,
        }

    # --- coalescing -----------------------------------------------------------------
    async def _read_cache(
        self, keys: list[tuple[date, str]]
    ) -> dict[tuple[date, str], Entry]:
        by_day: dict[date, list[str]] = {}
        for day, symbol in keys:
            by_day.setdefault(day, []).append(symbol)
        found: dict[tuple[date, str], Entry] = {}
        for day, names in by_day.items():
            for symbol, entry in (await self.cache.get_many(day, names)).items():
                found[(day, symbol)] = entry
        return found

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        return state

    async def _coalesced(
        self, day: date, symbols: Sequence[str], wait: float | None
    ) -> dict[str, Entry | None]:
        state = self._state()
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Entry | None]] = {}
        for symbol in symbols:
            future = state.inflight.get(symbol)
            if future is None:
                future = state.inflight[symbol] = loop.create_future()
                state.pending.append(symbol)
            futures[symbol] = future
        if state.pending and state.flusher is None:
            state.flusher = loop.create_task(
                self._flush(state, day), name="reference-fetch"
            )
        # asyncio.wait, not gather: a caller that gives up (or is cancelled) must
        # not cancel the shared futures other callers are waiting for.
        await asyncio.wait(futures.values(), timeout=wait)
        return {
            s: f.result() for s, f in futures.items() if f.done() and not f.cancelled()
        }

    async def _flush(self, state: _LoopState, day: date) -> None:
        try:
            await asyncio.sleep(self.batch_window)
            while state.pending:  # symbols asked for during a fetch: next round
                batch, state.pending = state.pending, []
                try:
                    results = await self._fetch(day, batch)
                except Exception as exc:  # a bug must not leave waiters hanging
                    logger.exception("event=reference_fetch_crashed error=%r", exc)
                    results = {}
                for symbol in batch:
                    future = state.inflight.pop(symbol, None)
                    if future is not None and not future.done():
                        future.set_result(results.get(symbol))
        finally:
            state.flusher = None
            for symbol in state.pending:
                future = state.inflight.pop(symbol, None)
                if future is not None and not future.done():
                    future.set_result(None)
            state.pending = []

    # --- fetching -------------------------------------------------------------------
    def _rest_client(self) -> tuple[FmpRestClient, bool] | None:
        endpoint = self.endpoint()
        if endpoint is None:
            self.last_error = "no FMP REST endpoint (no FMP_API_KEY and no simulator)"
            return None
        base, key, simulated = endpoint
        if self._client is None or self._client_for != (base, key):
            self._client = FmpRestClient(base, key, timeout=self.timeout)
            self._client_for = (base, key)
        return self._client, simulated

    def _take_token(self) -> bool:
        return self._budget is None or self._budget.take()

    def _back_off(self, exc: RestError, retry_after: float | None = None) -> None:
        delay = min(self.backoff_cap, self.backoff * 2**self._failures)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        self._failures += 1
        self._blocked_until = self.clock() + delay
        self.last_error = str(exc)
        logger.warning(
            "event=reference_backoff seconds=%.0f status=%s error=%s",
            delay,
            exc.status,
            exc,
        )

    async def _request(
        self, client: FmpRestClient, symbols: list[str]
    ) -> tuple[QuoteBatch, list[str]] | None:
        """One batch request, or capped per-symbol requests when batch is refused.

        Returns the quotes and the symbols the answer covers (a symbol of that
        list without a quote is unknown to FMP), or None when out of budget.
        """
        if self.batch_supported:
            if not self._take_token():
                return None
            self.requests += 1
            try:
                return await client.batch_quote(symbols), symbols
            except RestRefused as exc:
                if exc.status not in (402, 403):
                    raise
                # Some plans answer 402 "Premium" to batch endpoints.
                self.batch_supported = False
                logger.warning(
                    "event=reference_batch_refused status=%s fallback=per_symbol",
                    exc.status,
                )
        quotes: list[dict[str, Any]] = []
        simulated = False
        answered: list[str] = []
        # Symbols past the cap (or the budget) stay unresolved for a later call.
        for symbol in symbols[: self.per_symbol_cap]:
            if not self._take_token():
                break
            self.requests += 1
            batch = await client.quote(symbol)
            quotes.extend(batch.quotes)
            simulated = simulated or batch.simulated
            answered.append(symbol)
        if not answered:
            return None
        return QuoteBatch(quotes, simulated), answered

    async def _fetch(self, day: date, symbols: list[str]) -> dict[str, Entry]:
        found = self._rest_client()
        if found is None or self.clock() < self._blocked_until:
            return {}
        client, simulated = found
        entries: dict[str, Entry] = {}
        for start in range(0, len(symbols), self.batch_size):
            chunk = symbols[start : start + self.batch_size]
            try:
                answer = await self._request(client, chunk)
            except RateLimited as exc:
                self._back_off(exc, exc.retry_after)
                break
            except (RestRefused, RestUnavailable) as exc:
                self._back_off(exc)
                break
            if answer is None:
                self.last_error = "request budget exhausted (FMP_REST_MAX_PER_MINUTE)"
                logger.warning(
                    "event=reference_budget_exhausted symbols=%d", len(chunk)
                )
                break
            batch, answered = answer
            self._failures = 0
            self.last_error = None
            entries.update(entries_from_quotes(batch, answered, day, simulated))
        logger.info(
            "event=reference_fetched asked=%d known=%d unknown=%d",
            len(symbols),
            sum(isinstance(e, Reference) for e in entries.values()),
            sum(isinstance(e, Unknown) for e in entries.values()),
        )
        if entries:
            try:
                await self.cache.put_many(day, entries)
            except Exception as exc:
                logger.warning("event=reference_cache_write_failed error=%r", exc)
        return entries


def get_reference_service() -> ReferenceService:
    """The process's service (realtime/backends.py: its cache follows the mode)."""
    return backends().reference


def reset_reference_service() -> None:
    """Forget the service and the registered simulator URL (tests)."""
    reset_backends()
    reset_rest_base()
