"""``FmpClient``: the one upstream WebSocket connection to FMP (FMP_UPSTREAM.md).

One run task owns the connection: connect, log in, subscribe the whole desired set,
read frames, and after any disconnect reconnect with exponential backoff and full
jitter, log in and resubscribe by itself. Callers only say which symbols they want
(``set_symbols``/``add``/``remove``); a single sender task per connection turns the
difference between wanted and sent into batched subscribe/unsubscribe frames, so
frames are never interleaved.

The API key never appears in a log line or in ``last_error``: every text that
leaves this module goes through ``_redact``, websockets' own debug log included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import certifi
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from realtime.upstream import protocol
from realtime.upstream.protocol import (
    Heartbeat,
    LoginResult,
    ParseError,
    SubscriptionAck,
    Tick,
    UpstreamError,
)

logger = logging.getLogger(__name__)

State = Literal["connecting", "connected", "reconnecting", "disconnected", "stopped"]

_URL_KEY = re.compile(r"(?i)(api_?key=)[^&\s\"']+")


class _Fatal(Exception):
    """The server refused this key (or kicked it): retry only after a long wait."""


class _Reconnect(Exception):
    """The connection must be replaced (idle, server error); normal backoff."""


class _RedactingLogger(logging.LoggerAdapter):
    """Hands websockets a logger whose every line is redacted.

    websockets logs sent frames at DEBUG, and the login frame carries the key.
    """

    def __init__(self, target: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(target, {})
        self._redact = redact

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except Exception:
            text = f"{msg} {args!r}"
        kwargs.pop("extra", None)
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            # Tracebacks could quote the key: keep the exception type and message.
            exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
            if exc is not None:
                text = f"{text} error={type(exc).__name__}: {exc}"
        kwargs.pop("stack_info", None)
        self.logger.log(level, "%s", self._redact(text), **kwargs)


class FmpClient:
    """Keeps one logged-in FMP connection subscribed to the desired symbols.

    ``on_tick`` is called synchronously for every tick from the read loop; an
    exception in it is logged and the stream goes on. ``on_state_change`` gets the
    new state name; ``on_event`` every control event (login results, acks,
    heartbeats, errors, parse errors) for status reporting.
    """

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        on_tick: Callable[[Tick], None],
        protocol: Literal["legacy", "stream"] = "legacy",
        streams: Sequence[str] = ("fmp-us-equities-stream",),
        login_timeout: float = 5.0,
        reconnect_base: float = 1.0,
        reconnect_cap: float = 60.0,
        max_attempts: int = 0,
        fatal_backoff: float = 300.0,
        stable_after: float = 30.0,
        idle_timeout: float = 90.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        subscribe_batch: int = 100,
        on_state_change: Callable[[str], None] | None = None,
        on_event: Callable[[object], None] | None = None,
    ) -> None:
        if protocol not in ("legacy", "stream"):
            raise ValueError(f"protocol={protocol!r}: use 'legacy' or 'stream'")
        if subscribe_batch < 1:
            raise ValueError(f"subscribe_batch={subscribe_batch}: must be >= 1")
        self.url = url
        self._api_key = api_key
        self.on_tick = on_tick
        self.protocol = protocol
        self.streams = tuple(streams)
        self.login_timeout = login_timeout
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.max_attempts = max_attempts
        self.fatal_backoff = fatal_backoff
        self.stable_after = stable_after
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.subscribe_batch = subscribe_batch
        self.on_state_change = on_state_change
        self.on_event = on_event

        self._state: State = "disconnected"
        self.reconnect_attempts = 0
        self.last_error: str | None = None
        self.last_frame_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self._last_frame_mono = 0.0
        self._desired: frozenset[str] = frozenset()
        self._subscribed: frozenset[str] = frozenset()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._last_quote: dict[str, tuple[float | None, int]] = {}
        self._ssl = (
            ssl.create_default_context(cafile=certifi.where())
            if url.lower().startswith("wss://")
            else None
        )
        self._ws_logger = _RedactingLogger(
            logging.getLogger(f"{__name__}.websockets"), self._redact
        )

    # --- public API -----------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def desired_symbols(self) -> frozenset[str]:
        return self._desired

    @property
    def subscribed_symbols(self) -> frozenset[str]:
        """What the current connection has been sent (empty when not connected).

        With ``protocol="stream"`` nothing per symbol is sent upstream; this is
        the set the stream is being filtered to.
        """
        return self._subscribed

    async def start(self) -> None:
        """Spawn the run task and return at once."""
        if self._task is not None and not self._task.done():
            return
        self._set_state("connecting")
        self._task = asyncio.create_task(self._run(), name="fmp-client")

    async def stop(self) -> None:
        """Close the socket and end every task of this client."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._subscribed = frozenset()
        self._set_state("stopped")
        logger.info("event=upstream_stopped url=%s", self._redact(self.url))

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Make ``symbols`` (upper-case product symbols) the desired set."""
        desired = frozenset(s.strip().upper() for s in symbols if s and s.strip())
        if desired != self._desired:
            self._desired = desired
            self._wake.set()

    def add(self, symbols: Iterable[str]) -> None:
        self.set_symbols(self._desired | {s.strip().upper() for s in symbols if s})

    def remove(self, symbols: Iterable[str]) -> None:
        self.set_symbols(self._desired - {s.strip().upper() for s in symbols if s})

    # --- helpers --------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _URL_KEY.sub(r"\1***", text)

    def _log_exception(self, text: str) -> None:
        """``logger.exception`` with the traceback redacted too."""
        logger.error("%s\n%s", text, self._redact(traceback.format_exc().rstrip()))

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._redact(f"TLS verification failed: {exc}")
        if isinstance(exc, ssl.SSLError):
            return self._redact(f"TLS error: {exc}")
        text = str(exc) or type(exc).__name__
        return self._redact(f"{type(exc).__name__}: {text}")

    def _set_state(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        if self.on_state_change is not None:
            try:
                self.on_state_change(state)
            except Exception:
                self._log_exception(f"event=state_callback_failed state={state}")

    def _backoff(self) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        ceiling = min(
            self.reconnect_cap, self.reconnect_base * 2**self.reconnect_attempts
        )
        return random.uniform(0, ceiling)

    # --- the run loop ---------------------------------------------------------------
    async def _run(self) -> None:
        first = True
        while True:
            self._set_state("connecting" if first else "reconnecting")
            first = False
            fatal = False
            logged_in_at: list[float] = []
            try:
                await self._connection(logged_in_at)
                self.last_error = "connection closed by server"
                logger.warning("event=upstream_disconnected reason=%s", self.last_error)
            except _Fatal as exc:
                fatal = True
                self.last_error = self._redact(str(exc))
            except _Reconnect as exc:
                self.last_error = self._redact(str(exc))
                logger.warning("event=upstream_disconnected reason=%s", self.last_error)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.last_error = self._describe(exc)
                level = (
                    logging.ERROR if isinstance(exc, ssl.SSLError) else logging.WARNING
                )
                logger.log(
                    level,
                    "event=upstream_connection_failed url=%s attempt=%d error=%s",
                    self._redact(self.url),
                    self.reconnect_attempts,
                    self.last_error,
                )
            except Exception as exc:  # a bug must not end the reconnect loop
                self.last_error = self._describe(exc)
                self._log_exception("event=upstream_unexpected_error")
            finally:
                self._ws = None
                self._subscribed = frozenset()
            if logged_in_at and time.monotonic() - logged_in_at[0] >= self.stable_after:
                self.reconnect_attempts = 0
            if self.max_attempts and self.reconnect_attempts >= self.max_attempts:
                self._set_state("disconnected")
                logger.error(
                    "event=upstream_gave_up attempts=%d last_error=%s",
                    self.reconnect_attempts,
                    self.last_error,
                )
                return
            if fatal:
                delay = self.fatal_backoff
                self._set_state("disconnected")
            else:
                delay = self._backoff()
                self._set_state("reconnecting")
            self.reconnect_attempts += 1
            logger.info(
                "event=upstream_reconnect_scheduled delay=%.2f attempt=%d fatal=%s",
                delay,
                self.reconnect_attempts,
                fatal,
            )
            await asyncio.sleep(delay)

    async def _connection(self, logged_in_at: list[float]) -> None:
        """One connection, from connect to its end (returns or raises)."""
        url = self._redact(self.url)
        ws = await connect(
            self.url,
            ssl=self._ssl,
            open_timeout=max(self.login_timeout, 5.0),
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=2.0,
            max_size=2**22,
            logger=self._ws_logger,
        )
        self._ws = ws
        self._last_frame_mono = time.monotonic()
        logger.info(
            "event=upstream_connected url=%s attempt=%d", url, self.reconnect_attempts
        )
        logged_in = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            await ws.send(protocol.login_frame(self._api_key))
            reader = asyncio.create_task(self._reader(ws, logged_in), name="fmp-read")
            tasks.append(reader)
            waiter = asyncio.create_task(logged_in.wait(), name="fmp-login")
            tasks.append(waiter)
            done, _ = await asyncio.wait(
                {reader, waiter},
                timeout=self.login_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            if reader in done:
                reader.result()  # raises why the connection ended
                return
            if not logged_in.is_set():
                # Legacy sockets may never acknowledge a login (FMP_UPSTREAM.md).
                logger.info(
                    "event=upstream_login_unacknowledged timeout=%.1f",
                    self.login_timeout,
                )
            logged_in_at.append(time.monotonic())
            self.last_error = None
            self._set_state("connected")
            self._wake.set()  # subscribe the whole desired set
            running = [
                reader,
                asyncio.create_task(self._sender(ws), name="fmp-send"),
                asyncio.create_task(self._watchdog(logged_in_at[0]), name="fmp-idle"),
            ]
            tasks.extend(running[1:])
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close(ws)

    @staticmethod
    async def _close(ws: ClientConnection) -> None:
        """Close, discarding what is still arriving.

        websockets stops reading the socket when its message queue is full, so a
        busy feed would hide the server's close frame until ``close_timeout``.
        """

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass

        drainer = asyncio.create_task(drain(), name="fmp-drain")
        try:
            await ws.close()
        finally:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer

    async def _reader(self, ws: ClientConnection, logged_in: asyncio.Event) -> None:
        try:
            async for raw in ws:
                self._last_frame_mono = time.monotonic()
                self.last_frame_at = time.time()
                for event in protocol.parse_frame(raw):
                    if isinstance(event, Tick):
                        self._deliver(event)
                    else:
                        self._control(event, logged_in)
        except ConnectionClosed as exc:
            raise _Reconnect(
                f"connection closed: code={exc.rcvd.code if exc.rcvd else 1006}"
                f" reason={exc.rcvd.reason if exc.rcvd else ''}"
            ) from None

    def _deliver(self, tick: Tick) -> None:
        if self.protocol == "stream":
            # The stream has no server-side filter and re-broadcasts unchanged
            # quotes (FMP_UPSTREAM.md): keep desired symbols, drop repeats.
            if tick.symbol not in self._desired:
                return
            key = (tick.last_price, tick.timestamp)
            if self._last_quote.get(tick.symbol) == key:
                return
            self._last_quote[tick.symbol] = key
        try:
            self.on_tick(tick)
        except Exception:
            self._log_exception(f"event=on_tick_failed symbol={tick.symbol}")

    def _control(self, event: object, logged_in: asyncio.Event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                self._log_exception(
                    f"event=on_event_failed kind={type(event).__name__}"
                )
        if isinstance(event, Heartbeat):
            self.last_heartbeat_at = time.time()
        elif isinstance(event, LoginResult):
            self._login_result(event, logged_in)
        elif isinstance(event, SubscriptionAck):
            if event.ok:
                logger.debug(
                    "event=upstream_%s_ack status=%s", event.event, event.status
                )
            else:
                logger.warning(
                    "event=upstream_%s_rejected status=%s message=%s symbols=%s",
                    event.event,
                    event.status,
                    self._redact(event.message),
                    ",".join(sorted(self._subscribed)) or "-",
                )
        elif isinstance(event, UpstreamError):
            logger.warning(
                "event=upstream_error status=%s message=%s",
                event.status,
                self._redact(event.message),
            )
        elif isinstance(event, ParseError):
            logger.warning(
                "event=upstream_malformed reason=%s frame=%s",
                event.reason,
                self._redact(event.frame),
            )

    def _login_result(self, event: LoginResult, logged_in: asyncio.Event) -> None:
        message = self._redact(event.message)
        lowered = message.lower()
        if event.ok:
            logger.info("event=upstream_logged_in status=%s", event.status)
            logged_in.set()
            return
        if protocol.KICKED_TEXT in lowered:
            logger.error(
                "event=upstream_kicked status=%s message=%s backoff=%.0f "
                "hint=another_instance_uses_the_same_api_key "
                "(FMP allows one connection per key)",
                event.status,
                message,
                self.fatal_backoff,
            )
            raise _Fatal(f"kicked: {message} (another instance uses the same key)")
        if protocol.MAX_CONNECTIONS_TEXT in lowered:
            logger.error(
                "event=upstream_max_connections status=%s message=%s backoff=%.0f",
                event.status,
                message,
                self.fatal_backoff,
            )
            raise _Fatal(f"connection slot taken: {message}")
        if (event.status is not None and 400 <= event.status < 500) or any(
            text in lowered for text in protocol.UNAUTHORIZED_TEXTS
        ):
            logger.error(
                "event=upstream_login_refused status=%s message=%s backoff=%.0f",
                event.status,
                message,
                self.fatal_backoff,
            )
            raise _Fatal(f"login refused: {message or 'Unauthorized'}")
        logger.warning(
            "event=upstream_login_failed status=%s message=%s", event.status, message
        )
        raise _Reconnect(f"login failed: status={event.status} {message}")

    async def _sender(self, ws: ClientConnection) -> None:
        """The only writer after login: sends the desired-vs-sent difference."""
        if self.protocol == "stream":
            for stream in self.streams:
                await ws.send(protocol.stream_subscribe_frame(stream))
            logger.info(
                "event=upstream_streams_subscribed streams=%s", ",".join(self.streams)
            )
        while True:
            await self._wake.wait()
            self._wake.clear()
            desired = self._desired
            if self.protocol == "stream":
                self._subscribed = desired
                continue
            removed = self._subscribed - desired
            added = desired - self._subscribed
            for frame in protocol.unsubscribe_frames(removed, self.subscribe_batch):
                await ws.send(frame)
            self._subscribed -= removed
            for frame in protocol.subscribe_frames(added, self.subscribe_batch):
                await ws.send(frame)
            self._subscribed |= added
            if added or removed:
                logger.info(
                    "event=upstream_subscriptions added=%d removed=%d total=%d",
                    len(added),
                    len(removed),
                    len(self._subscribed),
                )

    async def _watchdog(self, logged_in_at: float) -> None:
        """Replace a silent connection; reset the backoff once it proved stable."""
        interval = max(0.01, min(1.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if self.reconnect_attempts and now - logged_in_at >= self.stable_after:
                self.reconnect_attempts = 0
            idle = now - self._last_frame_mono
            if idle > self.idle_timeout:
                logger.warning(
                    "event=upstream_idle idle=%.1f timeout=%.1f",
                    idle,
                    self.idle_timeout,
                )
                raise _Reconnect(f"no frame for {idle:.1f}s")
