"""``FmpClient``: the one upstream WebSocket connection to FMP (FMP_UPSTREAM.md).

One run task owns the connection: connect, log in, subscribe the whole upstream
set, read frames, and after any disconnect reconnect with exponential backoff and
full jitter, log in and resubscribe by itself. Callers only say which symbols they
want (``set_symbols``/``add``/``remove``); a single sender task per connection turns
the difference between wanted and sent into batched subscribe/unsubscribe frames,
so frames are never interleaved.

Three kinds of refusal get three waits: a refused key (``Unauthorized``) waits
``fatal_backoff``; a taken connection slot ("Maximum number of connections
reached", "Connected from another location", in a login reply or only as a close
reason) waits ``slot_backoff`` doubling up to ``fatal_backoff`` (FMP frees a dead
session's slot in about 20 s); anything else is an ordinary drop. ``problem`` says
in an operator's words what is wrong right now.

The API key never appears in a log line or in ``last_error``/``problem``: every text
that leaves this module goes through ``realtime.upstream.redaction``, websockets'
own debug log included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame, Opcode

from realtime.events import UpstreamState
from realtime.tasks import cancel_all, until_first_done
from realtime.upstream import protocol
from realtime.upstream.config import LEGACY_CLUSTERS, STREAM_URL, FmpConfig
from realtime.upstream.protocol import (
    Heartbeat,
    LoginResult,
    ParseError,
    SubscriptionAck,
    Tick,
    UpstreamError,
)
from realtime.upstream.redaction import RedactingLogger, Redactor

logger = logging.getLogger(__name__)

PING_TIMEOUT_REASON = "keepalive ping timeout"  # websockets' close reason (1011)
MAX_PENDING_ACKS = 256
RefusedCallback = Callable[[frozenset[str], str], None]


class _Fatal(Exception):
    """The server refused this key: retry only after ``fatal_backoff``."""


class _SlotTaken(Exception):
    """The account's one connection slot is held elsewhere: escalating wait."""


class _Reconnect(Exception):
    """The connection must be replaced (idle, server error); normal backoff."""


def _slot_text(text: str) -> bool:
    lowered = text.lower()
    return protocol.KICKED_TEXT in lowered or protocol.MAX_CONNECTIONS_TEXT in lowered


class FmpClient:
    """Keeps one logged-in FMP connection subscribed to the upstream symbols.

    ``on_tick`` is called synchronously for every tick from the read loop; an
    exception in it is logged and the stream goes on. ``on_state_change`` gets the
    new ``UpstreamState``; ``on_event`` every control event (login results, acks,
    heartbeats, errors, parse errors); ``on_refused`` the symbols FMP refused (or
    the configured legacy cluster cannot serve) with a message naming why.
    ``asset_class`` tells a symbol's asset class (``stocks``/``crypto``/``forex``);
    reference data can replace the default guess by shape.
    """

    def __init__(
        self,
        config: FmpConfig,
        *,
        on_tick: Callable[[Tick], None],
        on_state_change: Callable[[str], None] | None = None,
        on_event: Callable[[object], None] | None = None,
        on_refused: RefusedCallback | None = None,
        asset_class: Callable[[str], str | None] = protocol.guess_asset_class,
    ) -> None:
        self.config = config
        self.on_tick = on_tick
        self.on_state_change = on_state_change
        self.on_event = on_event
        self.on_refused = on_refused
        self.asset_class = asset_class
        self.redact = Redactor(config.api_key)

        self._state = UpstreamState.DISCONNECTED
        self.reconnect_attempts = 0
        self.slot_attempts = 0
        self.last_error: str | None = None
        self.problem: str | None = None
        self.last_frame_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self.logged_in_at: float | None = None  # monotonic; this session's login
        self.refused: dict[str, str] = {}  # symbol -> FMP's message
        self.refused_streams: dict[str, str] = {}
        self.unservable: dict[str, str] = {}  # symbol -> why the cluster can't
        self._last_alive = 0.0  # monotonic: last frame or pong
        self._upstream: frozenset[str] = frozenset()
        self._subscribed: frozenset[str] = frozenset()
        self._pending: deque[tuple[str, str, frozenset[str]]] = deque(
            maxlen=MAX_PENDING_ACKS
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._last_quote: dict[str, tuple[float | None, int]] = {}
        self._ssl = config.ssl_context()
        self._ws_logger = RedactingLogger(
            logging.getLogger(f"{__name__}.websockets"), self.redact
        )

    # --- public API -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.config.url

    @property
    def state(self) -> str:
        return self._state

    @property
    def upstream_symbols(self) -> frozenset[str]:
        """The symbols wanted upstream (the feed's upstream set)."""
        return self._upstream

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
        self._set_state(UpstreamState.CONNECTING)
        self._task = asyncio.create_task(self._run(), name="fmp-client")

    async def stop(self) -> None:
        """Close the socket with a close frame (FMP frees the slot at once) and end
        every task of this client."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._subscribed = frozenset()
        self._set_state(UpstreamState.STOPPED)
        logger.info("event=upstream_stopped url=%s", self.redact(self.url))

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Make ``symbols`` (upper-case product symbols) the upstream set."""
        wanted = frozenset(s.strip().upper() for s in symbols if s and s.strip())
        if wanted == self._upstream:
            return
        added = wanted - self._upstream
        self._upstream = wanted
        for gone in [s for s in self.refused if s not in wanted]:
            del self.refused[gone]
        for gone in [s for s in self.unservable if s not in wanted]:
            del self.unservable[gone]
        self._check_cluster(added)
        if (
            self.config.protocol == "stream"
            and self.refused_streams
            and set(self.refused_streams) >= set(self.config.streams)
        ):
            self._refuse(added, "; ".join(self.refused_streams.values()))
        self._wake.set()

    def add(self, symbols: Iterable[str]) -> None:
        self.set_symbols(self._upstream | {s.strip().upper() for s in symbols if s})

    def remove(self, symbols: Iterable[str]) -> None:
        self.set_symbols(self._upstream - {s.strip().upper() for s in symbols if s})

    # --- helpers --------------------------------------------------------------------
    def _log_exception(self, text: str) -> None:
        """``logger.exception`` with the traceback redacted too."""
        logger.error("%s\n%s", text, self.redact(traceback.format_exc().rstrip()))

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self.redact(f"TLS verification failed: {exc}")
        if isinstance(exc, ssl.SSLError):
            return self.redact(f"TLS error: {exc}")
        text = str(exc) or type(exc).__name__
        return self.redact(f"{type(exc).__name__}: {text}")

    def _set_state(self, state: UpstreamState) -> None:
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
            self.config.reconnect_cap,
            self.config.reconnect_base * 2**self.reconnect_attempts,
        )
        return random.uniform(0, ceiling)

    def _slot_backoff(self) -> float:
        """15 s, 30 s, 60 s ... up to ``fatal_backoff`` (no jitter: one client)."""
        return min(
            self.config.fatal_backoff,
            self.config.slot_backoff * 2**self.slot_attempts,
        )

    def _refuse(self, symbols: Iterable[str], message: str) -> None:
        names = frozenset(symbols)
        if not names:
            return
        for symbol in names:
            self.refused[symbol] = message
        if self.on_refused is not None:
            try:
                self.on_refused(names, message)
            except Exception:
                self._log_exception("event=on_refused_failed")

    def _check_cluster(self, symbols: Iterable[str]) -> None:
        """Legacy sockets serve one asset class each: say so for the others."""
        cluster = self.config.cluster
        if cluster is None:
            return
        wrong: dict[str, str] = {}
        for symbol in symbols:
            kind = self.asset_class(symbol)
            if kind is not None and kind != cluster:
                wrong[symbol] = kind
        for symbol, kind in sorted(wrong.items()):
            hint = next(
                (
                    f"wss://{host}"
                    for host, served in LEGACY_CLUSTERS.items()
                    if served == kind
                ),
                STREAM_URL,
            )
            message = (
                f"{symbol} looks like {kind}, but FMP_WS_URL is FMP's {cluster} "
                f"socket, which serves {cluster} only: use {hint} for {kind}, or "
                f"FMP_PROTOCOL=stream with {STREAM_URL}"
            )
            self.unservable[symbol] = message
            logger.warning(
                "event=upstream_cluster_mismatch symbol=%s asset_class=%s cluster=%s",
                symbol,
                kind,
                cluster,
            )
            if self.on_refused is not None:
                try:
                    self.on_refused(frozenset({symbol}), message)
                except Exception:
                    self._log_exception("event=on_refused_failed")

    # --- the run loop ---------------------------------------------------------------
    async def _run(self) -> None:
        first = True
        while True:
            self._set_state(
                UpstreamState.CONNECTING if first else UpstreamState.RECONNECTING
            )
            first = False
            kind = "drop"
            self.logged_in_at = None
            try:
                await self._connection()
                self.last_error = "connection closed by server"
                logger.warning("event=upstream_disconnected reason=%s", self.last_error)
            except _Fatal as exc:
                kind = "fatal"
                self.last_error = self.redact(str(exc))
            except _SlotTaken as exc:
                kind = "slot"
                self.last_error = self.redact(str(exc))
            except _Reconnect as exc:
                self.last_error = self.redact(str(exc))
                logger.warning("event=upstream_disconnected reason=%s", self.last_error)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.last_error = self._describe(exc)
                tls = isinstance(exc, ssl.SSLError)
                if tls:
                    self.problem = (
                        f"{self.last_error}. If FMP serves an incomplete certificate "
                        "chain, put the missing intermediate/CA certificates in a PEM "
                        "file and set FMP_CA_BUNDLE to its path."
                    )
                logger.log(
                    logging.ERROR if tls else logging.WARNING,
                    "event=upstream_connection_failed url=%s attempt=%d error=%s",
                    self.redact(self.url),
                    self.reconnect_attempts,
                    self.last_error,
                )
            except Exception as exc:  # a bug must not end the reconnect loop
                self.last_error = self._describe(exc)
                self._log_exception("event=upstream_unexpected_error")
            finally:
                self._ws = None
                self._subscribed = frozenset()
                self._pending.clear()
            self._reset_if_stable()
            if self.config.max_attempts and (
                self.reconnect_attempts >= self.config.max_attempts
            ):
                self._set_state(UpstreamState.DISCONNECTED)
                logger.error(
                    "event=upstream_gave_up attempts=%d last_error=%s",
                    self.reconnect_attempts,
                    self.last_error,
                )
                return
            if kind == "fatal":
                delay = self.config.fatal_backoff
                self._set_state(UpstreamState.DISCONNECTED)
            elif kind == "slot":
                delay = self._slot_backoff()
                self.slot_attempts += 1
                self.problem = (
                    f"FMP refused the connection: the account's one connection slot "
                    f"is taken ({self.last_error}). Retrying in {delay:.0f} s "
                    f"(attempt {self.slot_attempts}). A slot held by a dropped "
                    "session frees within about a minute; if this persists, another "
                    "instance uses the same FMP_API_KEY."
                )
                self._set_state(UpstreamState.DISCONNECTED)
            else:
                delay = self._backoff()
                self._set_state(UpstreamState.RECONNECTING)
            self.reconnect_attempts += 1
            logger.info(
                "event=upstream_reconnect_scheduled delay=%.2f attempt=%d kind=%s",
                delay,
                self.reconnect_attempts,
                kind,
            )
            await asyncio.sleep(delay)

    def _reset_if_stable(self) -> None:
        if (
            self.logged_in_at is not None
            and time.monotonic() - self.logged_in_at >= self.config.stable_after
        ):
            self.reconnect_attempts = 0
            self.slot_attempts = 0

    async def _connection(self) -> None:
        """One connection, from connect to its end (returns or raises)."""
        config = self.config
        url = self.redact(config.url)
        ws = await connect(
            config.url,
            ssl=self._ssl,
            open_timeout=max(config.login_timeout, 5.0),
            ping_interval=config.ping_interval if config.pings_enabled else None,
            ping_timeout=config.ping_timeout if config.pings_enabled else None,
            close_timeout=2.0,
            max_size=2**22,
            logger=self._ws_logger,
            create_connection=_PongAwareConnection,
        )
        self._ws = ws
        self._last_alive = time.monotonic()
        logger.info(
            "event=upstream_connected url=%s attempt=%d", url, self.reconnect_attempts
        )
        logged_in = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            await ws.send(protocol.login_frame(config.api_key))
            reader = asyncio.create_task(self._reader(ws, logged_in), name="fmp-read")
            tasks.append(reader)
            waiter = asyncio.create_task(logged_in.wait(), name="fmp-login")
            tasks.append(waiter)
            done, _ = await asyncio.wait(
                {reader, waiter},
                timeout=config.login_timeout,
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
                    config.login_timeout,
                )
            self.logged_in_at = time.monotonic()
            self.last_error = None
            self.problem = None
            self._set_state(UpstreamState.CONNECTED)
            self._wake.set()  # subscribe the whole upstream set
            running = [
                reader,
                asyncio.create_task(self._sender(ws), name="fmp-send"),
                asyncio.create_task(self._watchdog(ws), name="fmp-idle"),
            ]
            tasks.extend(running[1:])
            await until_first_done(running)
        finally:
            await cancel_all(tasks)
            await self._close(ws)

    @staticmethod
    async def _close(ws: ClientConnection) -> None:
        """Close with a close frame, discarding what is still arriving.

        websockets stops reading the socket when its message queue is full, so a
        busy feed would hide the server's close frame until ``close_timeout``.
        Runs to its end even when the run task is being cancelled (shutdown): the
        close frame is what frees FMP's connection slot at once.
        """

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass

        async def close() -> None:
            drainer = asyncio.create_task(drain(), name="fmp-drain")
            try:
                await ws.close()
            finally:
                drainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drainer

        closing = asyncio.ensure_future(close())
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await closing
            raise

    async def _reader(self, ws: ClientConnection, logged_in: asyncio.Event) -> None:
        try:
            async for raw in ws:
                self._last_alive = time.monotonic()
                self.last_frame_at = time.time()
                for event in protocol.parse_frame(raw):
                    if isinstance(event, Tick):
                        self._deliver(event)
                    else:
                        self._control(event, logged_in)
        except ConnectionClosed as exc:
            self._closed(exc)

    def _closed(self, exc: ConnectionClosed) -> None:
        """Name why the connection ended; a kick in the close reason is a slot."""
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = self.redact(exc.rcvd.reason if exc.rcvd else "")
        if exc.rcvd is None and exc.sent is not None:
            if PING_TIMEOUT_REASON in exc.sent.reason:
                logger.warning(
                    "event=upstream_ping_timeout ping_interval=%.1f ping_timeout=%.1f",
                    self.config.ping_interval,
                    self.config.ping_timeout,
                )
                raise _Reconnect(
                    f"ping timeout: no pong within {self.config.ping_timeout:.0f}s"
                ) from None
        if _slot_text(reason):
            logger.error(
                "event=upstream_kicked_by_close code=%s reason=%s backoff=%.0f "
                "hint=another_session_holds_the_api_key's_connection_slot",
                code,
                reason,
                self._slot_backoff(),
            )
            raise _SlotTaken(f"closed by FMP: {reason}") from None
        raise _Reconnect(f"connection closed: code={code} reason={reason}") from None

    def _deliver(self, tick: Tick) -> None:
        if self.config.protocol == "stream":
            # The stream has no server-side filter and re-broadcasts unchanged
            # quotes (FMP_UPSTREAM.md): keep wanted symbols, drop repeats.
            if tick.symbol not in self._upstream:
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
            self._ack(event)
        elif isinstance(event, UpstreamError):
            logger.warning(
                "event=upstream_error status=%s message=%s",
                event.status,
                self.redact(event.message),
            )
        elif isinstance(event, ParseError):
            logger.warning(
                "event=upstream_malformed reason=%s frame=%s",
                event.reason,
                self.redact(event.frame),
            )

    def _ack(self, event: SubscriptionAck) -> None:
        """Match the reply to the oldest request of its kind; record refusals."""
        pending = next((p for p in self._pending if p[0] == event.event), None)
        if pending is not None:
            self._pending.remove(pending)
        _, target, names = pending if pending is not None else ("", "", frozenset())
        if event.ok:
            logger.debug("event=upstream_%s_ack status=%s", event.event, event.status)
            if event.event == "subscribe":
                for name in names:
                    self.refused.pop(name, None)
                    self.refused_streams.pop(name, None)
            return
        message = self.redact(event.message) or f"status {event.status}"
        if event.event != "subscribe":
            logger.warning(
                "event=upstream_%s_rejected status=%s message=%s",
                event.event,
                event.status,
                message,
            )
            return
        if self.config.protocol == "stream":
            streams = protocol.named_in(message, self.config.streams) or names
            for stream in streams:
                self.refused_streams[stream] = message
            logger.error(
                "event=upstream_stream_refused status=%s streams=%s message=%s "
                "hint=ask_FMP_to_enable_the_stream_for_this_plan",
                event.status,
                ",".join(sorted(streams)) or "-",
                message,
            )
            if set(self.refused_streams) >= set(self.config.streams):
                self._refuse(self._upstream, message)
            return
        symbols = protocol.named_in(message, self._upstream) or names
        logger.error(
            "event=upstream_subscribe_refused status=%s symbols=%s message=%s",
            event.status,
            ",".join(sorted(symbols)) or "-",
            message,
        )
        self._refuse(symbols & self._upstream, message)

    def _login_result(self, event: LoginResult, logged_in: asyncio.Event) -> None:
        message = self.redact(event.message)
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
                self._slot_backoff(),
            )
            raise _SlotTaken(f"kicked: {message} (another session uses the same key)")
        if protocol.MAX_CONNECTIONS_TEXT in lowered:
            logger.error(
                "event=upstream_max_connections status=%s message=%s backoff=%.0f",
                event.status,
                message,
                self._slot_backoff(),
            )
            raise _SlotTaken(f"connection slot taken: {message}")
        if (event.status is not None and 400 <= event.status < 500) or any(
            text in lowered for text in protocol.UNAUTHORIZED_TEXTS
        ):
            legacy = self.config.protocol == "legacy"
            hint = (
                f" Plans bought after 2025-08-31 use the standard socket: set "
                f"FMP_PROTOCOL=stream and FMP_WS_URL={STREAM_URL}."
                if legacy
                else " Check FMP_API_KEY and that the plan includes WebSockets."
            )
            self.problem = f"FMP refused the login ({message or 'Unauthorized'}).{hint}"
            logger.error(
                "event=upstream_login_refused status=%s message=%s backoff=%.0f%s",
                event.status,
                message,
                self.config.fatal_backoff,
                f" hint=FMP_PROTOCOL=stream FMP_WS_URL={STREAM_URL}" if legacy else "",
            )
            raise _Fatal(f"login refused: {message or 'Unauthorized'}")
        logger.warning(
            "event=upstream_login_failed status=%s message=%s", event.status, message
        )
        raise _Reconnect(f"login failed: status={event.status} {message}")

    async def _sender(self, ws: ClientConnection) -> None:
        """The only writer after login: sends the wanted-vs-sent difference."""
        config = self.config
        if config.protocol == "stream":
            for stream in config.streams:
                self._pending.append(("subscribe", stream, frozenset({stream})))
                await ws.send(protocol.stream_subscribe_frame(stream))
            logger.info(
                "event=upstream_streams_subscribed streams=%s", ",".join(config.streams)
            )
        while True:
            await self._wake.wait()
            self._wake.clear()
            wanted = self._upstream
            if config.protocol == "stream":
                self._subscribed = wanted
                continue
            removed = self._subscribed - wanted
            added = wanted - self._subscribed
            for event, symbols in (("unsubscribe", removed), ("subscribe", added)):
                ordered = sorted(symbols)
                batch = config.subscribe_batch
                for i in range(0, len(ordered), batch):
                    chunk = ordered[i : i + batch]
                    self._pending.append((event, "", frozenset(chunk)))
                    build = (
                        protocol.subscribe_frames
                        if event == "subscribe"
                        else protocol.unsubscribe_frames
                    )
                    for frame in build(chunk, batch):
                        await ws.send(frame)
                if event == "unsubscribe":
                    self._subscribed -= removed
                else:
                    self._subscribed |= added
            if added or removed:
                logger.info(
                    "event=upstream_subscriptions added=%d removed=%d total=%d",
                    len(added),
                    len(removed),
                    len(self._subscribed),
                )

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Replace a silent connection; reset the backoff once it proved stable.

        Frames (ticks, heartbeats, acks) and the pongs answering the keepalive
        pings (``ping_interval``, below ``idle_timeout``) count as signs of life,
        so a quiet-but-alive connection (a closed market) is kept.
        """
        timeout = self.config.idle_timeout
        interval = max(0.01, min(1.0, timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._reset_if_stable()
            alive = max(self._last_alive, getattr(ws, "last_pong", 0.0))
            idle = now - alive
            if idle > timeout:
                logger.warning(
                    "event=upstream_idle idle=%.1f timeout=%.1f", idle, timeout
                )
                raise _Reconnect(f"no frame or pong for {idle:.1f}s")


class _PongAwareConnection(ClientConnection):
    """Notes when the last pong arrived, so the idle watchdog counts it as life
    (``process_event`` is websockets' documented override point)."""

    last_pong = 0.0

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode is Opcode.PONG:
            self.last_pong = time.monotonic()
