"""``PriceStream``: one reconnecting, recovering price-stream connection that runs
inside the caller's event loop.

What it guarantees (docs/protocol.md is the server's side of it):

- The set of symbols asked for survives every reconnect: after each (re)connect
  the whole set is subscribed again, with ``recover`` carrying the last
  (epoch, seq) seen per symbol, split into messages below the server's size
  limit, so the server replays what was missed.
- Per symbol and epoch, updates are yielded in seq order, each at most once
  (duplicates are dropped by seq). A forward jump in seq (the server could not
  replay, or conflated a slow reader) is filled before the update that revealed
  it, by default from ``GET /api/v2/realtime/history/{symbol}?after_seq=N``; a
  new epoch yields a :class:`~fmpsite_client.messages.Reset` and the new
  sequence is filled from its start.
- Reconnects use exponential back-off with full jitter (a uniform delay in
  ``[0, min(max_delay, base_delay * 2**attempt)]``); the attempt counter resets
  only after a connection stayed up ``stable_after`` seconds, so a server that
  accepts and closes at once cannot make the client spin.
- WebSocket pings every ``ping_interval`` s; no pong within ``ping_timeout`` s
  and the connection is treated as dead and replaced (a half-open TCP
  connection is otherwise noticed by the OS minutes later).
- With ``token_provider``, a fresh token is fetched before every connect and
  when the server announces ``token_expiring``, and sent as ``refresh``.

No thread: one task of the caller's loop reads the socket and feeds a bounded
queue the ``async for`` drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from fmpsite_client.http import (
    HISTORY_PAGE_MAX,
    HistoryError,
    auth_header,
    fetch_history,
    http_base_url,
)
from fmpsite_client.messages import (
    Gap,
    Message,
    PriceUpdate,
    StreamMessage,
    decode,
    price_update,
)
from fmpsite_client.sequence import SequenceTracker

__all__ = [
    "GapHandler",
    "PriceStream",
    "TokenProvider",
    "backoff_delay",
    "subscribe_messages",
]

logger = logging.getLogger("fmpsite_client")

TokenProvider = Callable[[], Awaitable[str]]
# Given the missed range, the updates to yield in its place (decoded objects or
# PriceUpdates); None or [] yields nothing and leaves the gap reported.
GapHandler = Callable[[Gap], Awaitable[Iterable[dict[str, Any] | PriceUpdate] | None]]
StateCallback = Callable[[str, dict[str, Any]], None]

# The server refuses client messages over REALTIME_MAX_MESSAGE_BYTES (4 KiB by
# default): a resubscribe with `recover` for many symbols is split below it.
MAX_SUBSCRIBE_BYTES = 3500
_END = object()


def backoff_delay(
    attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Full-jitter back-off delay in seconds for the (0-based) attempt."""
    return rng() * min(cap, base * 2**attempt)


def subscribe_messages(
    symbols: list[str],
    recover: dict[str, dict[str, Any]],
    limit: int = MAX_SUBSCRIBE_BYTES,
) -> list[dict[str, Any]]:
    """``subscribe`` messages for ``symbols`` (with their ``recover`` entries),
    as few as fit, each encoded under ``limit`` bytes (unless one symbol alone
    is larger)."""

    def message(batch: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"action": "subscribe", "symbols": batch}
        positions = {s: recover[s] for s in batch if s in recover}
        if positions:
            out["recover"] = positions
        return out

    messages: list[dict[str, Any]] = []
    batch: list[str] = []
    for symbol in symbols:
        batch.append(symbol)
        if len(batch) > 1 and len(orjson.dumps(message(batch))) > limit:
            batch.pop()
            messages.append(message(batch))
            batch = [symbol]
    if batch:
        messages.append(message(batch))
    return messages


def _normalise(symbols: Iterable[str] | str) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    out: list[str] = []
    for s in symbols:
        s = s.strip().upper()
        if s and s not in out:
            out.append(s)
    return out


class PriceStream:
    """``async with PriceStream(url) as stream: await stream.subscribe([...]);
    async for message in stream: ...``

    ``url`` is the stream's ``ws(s)://host/api/v2/realtime/ws/prices``. ``token``
    is a DRF token key or a connection token (JWT); ``token_provider`` an async
    callable returning a fresh one (called before each connect and on
    ``token_expiring``). ``on_gap`` replaces the default gap filling (the
    history endpoint at ``http_url``, by default the stream's own host).
    ``on_state(state, info)`` is told of ``connecting``, ``connected``,
    ``reconnecting`` (info: ``code``, ``delay``, ``attempt``) and ``closed``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        on_gap: GapHandler | None = None,
        on_state: StateCallback | None = None,
        http_url: str | None = None,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 5.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        open_timeout: float = 10.0,
        max_queue: int = 10_000,
    ) -> None:
        self.url = url
        self.http_url = http_url or http_base_url(url)
        self.token = token
        self.token_provider = token_provider
        self.on_gap = on_gap
        self.on_state = on_state
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.tracker = SequenceTracker()
        self.desired: list[str] = []
        self.confirmed: set[str] = set()
        self.state = "closed"
        self.attempt = 0
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.duplicates = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> PriceStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting (in a task of the running loop); returns at once."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="fmpsite-price-stream")

    async def close(self) -> None:
        """Close the socket with 1000 and end the iteration."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "client closed"), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._background):
            task.cancel()
        self._set_state("closed", {})
        self._end()

    def _end(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)

    # --- subscriptions -----------------------------------------------------------

    async def subscribe(self, symbols: Iterable[str] | str) -> None:
        """Add symbols to the wanted set (told to the server now if connected,
        and on every reconnect)."""
        fresh = [s for s in _normalise(symbols) if s not in self.desired]
        for s in fresh:
            self.desired.append(s)
            self.tracker.want(s)
        if fresh:
            await self._send_subscribe(fresh, recover=False)

    async def unsubscribe(self, symbols: Iterable[str] | str) -> None:
        present = [s for s in _normalise(symbols) if s in self.desired]
        for s in present:
            self.desired.remove(s)
            self.tracker.forget(s)
        if present:
            await self._send({"action": "unsubscribe", "symbols": present})

    async def wait_subscribed(self, within: float = 60.0) -> set[str]:
        """Wait until the server confirms exactly the wanted set; return it."""
        async with asyncio.timeout(within):
            while self.confirmed != set(self.desired) or self._ws is None:
                self._changed.clear()
                await self._changed.wait()
        return set(self.confirmed)

    # --- iteration ----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[StreamMessage]:
        return self

    async def __anext__(self) -> StreamMessage:
        item = await self._queue.get()
        if item is _END:
            self._end()  # later calls end too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    # --- the connection loop --------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closing:
                if self.connections == 0 and self.attempt == 0:
                    self._set_state("connecting", {})
                code: int | None = None
                opened_at: float | None = None
                try:
                    if self.token_provider is not None:
                        self.token = await self.token_provider()
                    async with websockets.connect(
                        self.url,
                        additional_headers=auth_header(self.token),
                        open_timeout=self.open_timeout,
                        ping_interval=self.ping_interval,
                        ping_timeout=self.ping_timeout,
                        close_timeout=5,
                        max_size=2**22,
                    ) as ws:
                        opened_at = loop.time()
                        self._ws = ws
                        self.connections += 1
                        self._set_state("connected", {"connections": self.connections})
                        if self.desired:
                            await self._send_subscribe(list(self.desired), recover=True)
                        async for frame in ws:
                            await self._handle(frame)
                        code = ws.close_code
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd is not None else 1006
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    logger.warning("event=stream_connect_failed error=%r", exc)
                finally:
                    self._ws = None
                    self.confirmed = set()
                    self._changed.set()
                if self._closing:
                    break
                if opened_at is not None:
                    self.close_codes.append(code)
                    if loop.time() - opened_at >= self.stable_after:
                        self.attempt = 0
                delay = backoff_delay(self.attempt, self.base_delay, self.max_delay)
                self.attempt += 1
                logger.info(
                    "event=stream_reconnecting code=%s delay=%.2f attempt=%d",
                    code,
                    delay,
                    self.attempt,
                )
                self._set_state(
                    "reconnecting",
                    {"code": code, "delay": delay, "attempt": self.attempt},
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug or a failing hook: end the iteration
            logger.exception("event=stream_failed")
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(exc)
            raise

    def _set_state(self, state: str, info: dict[str, Any]) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state, info)

    async def _send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(orjson.dumps(message).decode())
        except ConnectionClosed:
            return False
        return True

    async def _send_subscribe(self, symbols: list[str], *, recover: bool) -> None:
        positions = self.tracker.recover_map(symbols) if recover else {}
        for message in subscribe_messages(symbols, positions):
            await self._send(message)

    # --- messages --------------------------------------------------------------------

    async def _put(self, item: StreamMessage) -> None:
        await self._queue.put(item)

    async def _handle(self, frame: str | bytes) -> None:
        try:
            raw = orjson.loads(frame)
        except orjson.JSONDecodeError:
            logger.warning("event=stream_bad_frame size=%d", len(frame))
            return
        if not isinstance(raw, dict):
            return
        kind = raw.get("type")
        if kind == "price_update":
            await self._price(raw)
        elif kind == "subscription":
            symbols = raw.get("symbols") or []
            if raw.get("action") == "subscribed":
                self.confirmed.update(symbols)
                for reset in self.tracker.acknowledged(raw):
                    await self._put(reset)
            elif raw.get("action") == "unsubscribed":
                self.confirmed.difference_update(symbols)
            self._changed.set()
        elif kind == "subscriptions":
            self.confirmed = set(raw.get("symbols") or [])
            self._changed.set()
        elif kind == "token_expiring":
            self._spawn(self._refresh_token())
        elif kind in ("connected", "pong", "token_refreshed"):
            pass
        else:
            await self._put(decode(raw))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_token(self) -> None:
        if self.token_provider is None:
            logger.info("event=stream_token_expiring refresh=no_provider")
            return
        try:
            token = await self.token_provider()
        except Exception:
            logger.exception("event=stream_token_provider_failed")
            return
        self.token = token
        await self._send({"action": "refresh", "token": token})

    async def _price(self, raw: dict[str, Any]) -> None:
        symbol = raw.get("symbol")
        seq = raw.get("seq")
        if not isinstance(symbol, str):
            await self._put(Message(type="price_update", raw=raw))
            return
        if type(seq) is not int or symbol not in self.tracker.positions:
            await self._put(price_update(raw))
            return
        verdict, after, reset = self.tracker.check(symbol, seq, raw.get("epoch"))
        if reset is not None:
            await self._put(reset)
        if verdict == "duplicate":
            self.duplicates += 1
            return
        if verdict == "gap":
            await self._fill(symbol, after, seq)
        self.tracker.advance(symbol, seq)
        await self._put(price_update(raw, epoch=self.tracker.epoch(symbol)))

    async def _fill(self, symbol: str, after: int, before: int) -> None:
        """Yield what was missed between ``after`` and ``before`` (exclusive)."""
        epoch = self.tracker.epoch(symbol)
        gap = Gap(
            symbol=symbol,
            epoch=epoch,
            after_seq=after,
            before_seq=before,
            missing=tuple(range(after + 1, before)),
        )
        handler = self.on_gap or self.fetch_missing
        got = await handler(gap) or ()
        last = after
        yielded: set[int] = set()
        for item in got:
            update = (
                item
                if isinstance(item, PriceUpdate)
                else price_update(item, epoch=epoch, from_history=True)
            )
            if update.seq is None or not last < update.seq < before:
                continue
            if update.epoch is not None and epoch is not None and update.epoch != epoch:
                continue
            last = update.seq
            yielded.add(last)
            self.tracker.advance(symbol, update.seq)
            await self._put(update)
        if len(yielded) < len(gap.missing):
            missing = tuple(s for s in gap.missing if s not in yielded)
            logger.warning(
                "event=stream_gap_unfilled symbol=%s after=%d before=%d missing=%d",
                symbol,
                after,
                before,
                len(missing),
            )
            await self._put(
                Gap(
                    symbol=symbol,
                    epoch=epoch,
                    after_seq=after,
                    before_seq=before,
                    missing=missing,
                )
            )

    async def fetch_missing(self, gap: Gap) -> list[dict[str, Any]]:
        """The default gap handler: the updates of ``gap`` from the server's
        history endpoint (same credentials as the socket), oldest first."""
        out: list[dict[str, Any]] = []
        after = gap.after_seq
        while after < gap.before_seq - 1:
            try:
                page = await fetch_history(
                    self.http_url, gap.symbol, after_seq=after, token=self.token
                )
            except HistoryError as exc:
                logger.warning(
                    "event=stream_history_failed symbol=%s error=%s", gap.symbol, exc
                )
                break
            if gap.epoch is not None and page.get("epoch") not in (None, gap.epoch):
                break  # the history is of another epoch: nothing of ours is in it
            updates = [
                u
                for u in page["updates"]
                if isinstance(u, dict) and isinstance(u.get("seq"), int)
            ]
            if not updates:
                break
            for u in updates:
                if u["seq"] < gap.before_seq:
                    out.append(u)
            newest = updates[-1]["seq"]
            if newest >= gap.before_seq - 1 or len(updates) < HISTORY_PAGE_MAX:
                break
            after = newest
        return out
