"""Outbox and OutboxWriter: what waits for each client, and the one task that
writes it.

Every message to a client goes through its outbox (the consumer's replies and
snapshots too), so one bound covers them all. A client that keeps up gets every
message, in order. One that cannot (its socket holds more than
``REALTIME_SEND_BUFFER_LIMIT`` unread bytes) gets conflated updates: its outbox
keeps at most one pending update per symbol (the newest) and at most
``MAX_HELD_REPLIES`` replies, so memory stays bounded whatever the tick rate and
whatever the client sends. Past that, or past ``REALTIME_STALL_TIMEOUT``, it is
closed with 4009.

The buffer and its writer live apart from the hub because they are the part that
touches sockets: the hub decides who gets what, the writer decides when and
whether it can be written, and owns the stall state that decision needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from realtime import metrics
from realtime.fanout import daphne_io, deflate
from realtime.fanout.closecodes import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_STALLED
from realtime.tasks import cancel_all, start_watched

logger = logging.getLogger(__name__)

# Replies (acks, errors, pongs, subscription lists) held for a client whose socket
# is backed up. Past this many the client is a stalled reader and is closed 4009:
# replies cannot be conflated, so they must not queue without bound.
MAX_HELD_REPLIES = 64


class Outbox:
    """One connection's messages waiting for the next flush: queueing, conflation.

    ``queue`` holds every message in order as ``(symbol, data)`` (``symbol`` is
    None for replies and upstream status) and is emptied on each flush, one
    event-loop turn after the messages arrived. While the connection's socket
    holds more than ``REALTIME_SEND_BUFFER_LIMIT`` unread bytes it is stalled:
    nothing more is written; price updates and snapshots replace each other in
    ``pending`` (one per symbol), the upstream status keeps only the latest in
    ``upstream``, and replies queue in ``pending`` too, at most
    ``MAX_HELD_REPLIES`` of them (``put_reply`` says when that is exceeded).
    """

    __slots__ = (
        "send_text",
        "close",
        "queue",
        "pending",
        "upstream",
        "held_replies",
        "conn_id",
        "symbols",
        "conflated",
        "user_key",
        "transport",
        "protocol",
        "direct",
        "deflate",
        "stalled_since",
        "closed",
    )

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        conn_id: str,
        user_key: str | None = None,
        *,
        close: Callable[[int], Awaitable[None]] | None = None,
        protocol: Any = None,
        direct: bool = False,
        compression: bool = False,
    ) -> None:
        self.send_text = send_text
        self.close = close
        self.conn_id = conn_id
        self.user_key = user_key
        # daphne's WebSocket protocol when daphne_io may use it, None elsewhere.
        self.protocol = protocol
        self.transport = getattr(protocol, "transport", None)
        # Messages are ready-made frames (bytes) when written directly to the
        # socket (daphne_io.write_frames), texts for the ASGI send otherwise.
        self.direct = (
            direct
            and protocol is not None
            and daphne_io.supports_direct_write(protocol)
        )
        # The process's shared permessage-deflate encoder once the handshake
        # negotiated the extension (``accepted``); None: plain frames.
        self.deflate: deflate.DeflateFrames | None = None
        if compression and self.direct:
            # Only where fmpsite writes the frames: on the ASGI path autobahn
            # would compress per connection, keeping ~256 KB of zlib state each.
            daphne_io.accept_deflate(protocol)  # decided when the app accepts
        self.queue: list[tuple[str | None, str | bytes]] = []
        # Keys: symbols for updates and snapshots, ints for held replies.
        self.pending: dict[str | int, str | bytes] = {}
        self.upstream: str | bytes | None = None
        self.held_replies = 0
        self.symbols: set[str] = set()
        self.conflated = 0
        self.stalled_since: float | None = None
        self.closed = False

    def backlogged(self, limit: int) -> bool:
        return (
            self.transport is not None
            and daphne_io.buffered_bytes(self.transport) > limit
        )

    def accepted(self) -> None:
        """The handshake completed: write the frames of what it negotiated.

        permessage-deflate: compressed frames from the shared encoder (the hub
        compresses each update once for all such clients). Any other extension
        (none is enabled): the ASGI path, where autobahn frames for it.
        """
        if not self.direct:
            return
        if daphne_io.deflate_in_use(self.protocol):
            self.deflate = deflate.shared(settings.REALTIME_WS_COMPRESSION_MIN_SIZE)
        elif daphne_io.foreign_extension_in_use(self.protocol):
            self.direct = False

    def encode(self, text: str) -> str | bytes:
        if self.deflate is not None:
            return self.deflate.frame(text)
        return daphne_io.text_frame(text) if self.direct else text

    def put(self, symbol: str, data: str | bytes) -> None:
        """A price update or snapshot of ``symbol`` (encoded for this outbox)."""
        if self.stalled_since is None:
            self.queue.append((symbol, data))
            return
        if symbol in self.pending:
            self.conflated += 1
            metrics.MESSAGES_CONFLATED.inc()
        self.pending[symbol] = data

    def put_upstream(self, data: str | bytes) -> None:
        if self.stalled_since is None:
            self.queue.append((None, data))
        else:
            self.upstream = data  # latest wins

    def put_reply(self, data: str | bytes) -> bool:
        """Queue a reply; False when a stalled client has too many held already."""
        if self.stalled_since is None:
            self.queue.append((None, data))
            return True
        self.held_replies += 1
        self.pending[-self.held_replies] = data
        return self.held_replies <= MAX_HELD_REPLIES

    def has_pending(self, symbol: str) -> bool:
        return symbol in self.pending or any(s == symbol for s, _ in self.queue)

    def discard(self, symbol: str) -> None:
        """Drop what is waiting for ``symbol`` (the client unsubscribed)."""
        self.pending.pop(symbol, None)
        if self.queue:
            self.queue = [item for item in self.queue if item[0] != symbol]

    def resume(self) -> None:
        """The client reads again: what was held goes out next, in order."""
        self.stalled_since = None
        if self.upstream is not None:
            self.queue.append((None, self.upstream))
            self.upstream = None
        self.queue.extend(
            (key if isinstance(key, str) else None, data)
            for key, data in self.pending.items()
        )
        self.pending = {}
        self.held_replies = 0

    def drop_all(self) -> None:
        """Closing: nothing waiting is sent any more."""
        self.closed = True
        self.queue = []
        self.pending = {}
        self.upstream = None

    def prepare_server_close(self, grace: float, *, drop_unsent: bool) -> int:
        """The server decided to close this client (4008, 4009): from now on
        nothing more is sent or read, and the close frame must reach the client.

        Returns the unsent bytes dropped (``drop_unsent``: a stalled reader).
        Under any other server than daphne (or a daphne the probe refused) the
        consumer drops the input itself (``closed``) and the close is ASGI's.
        """
        self.drop_all()
        if self.protocol is None:
            return 0
        try:
            return daphne_io.prepare_close(
                self.protocol,
                grace,
                metrics.WS_DROPPED_AFTER_CLOSE.inc,
                drop_unsent=drop_unsent,
            )
        except Exception as exc:  # never let this stop the close itself
            logger.warning(
                "event=close_prepare_failed conn=%s error=%r", self.conn_id, exc
            )
            return 0

    async def close_with(self, code: int) -> None:
        """Send the close frame (after ``prepare_server_close``)."""
        if self.close is None:
            return
        try:
            await self.close(code)
        except Exception as exc:
            logger.debug("event=close_failed conn=%s error=%r", self.conn_id, exc)

    async def go_away(self) -> None:
        """The server is stopping: drop what waits and close with 1001."""
        self.drop_all()
        try:
            if self.protocol is not None:
                daphne_io.close_going_away(self.protocol)
            elif self.close is not None:
                # ASGI allows no 1001 (daphne_io.close_going_away): normal close.
                await self.close(CLOSE_NORMAL)
        except Exception as exc:
            logger.warning(
                "event=close_failed conn=%s code=%d error=%r",
                self.conn_id,
                CLOSE_GOING_AWAY,
                exc,
            )

    async def flush(self) -> int:
        batch, self.queue = self.queue, []
        if self.closed:
            return 0
        if self.direct:
            if not daphne_io.write_frames(
                self.protocol, b"".join([d for _, d in batch])
            ):
                return 0
            return len(batch)
        for _, text in batch:
            await self.send_text(text)
        return len(batch)


class OutboxWriter:
    """The flush task, the stall watch and the 4009 close of one hub's outboxes.

    ``dirty`` holds the outboxes with something new since the last flush and
    ``wakeup`` (never rebound) starts the next one. ``wake`` does both for one
    outbox; the hub's tick path updates them inline (``FanoutHub.deliver``), one
    set update per tick instead of one call per outbox. Each flush writes every
    dirty outbox one event-loop turn after its messages arrived, unless its
    socket is backed up: then the outbox is stalled, held and conflated until
    the client reads again (resumed) or ``REALTIME_STALL_TIMEOUT`` passes
    (closed 4009).
    """

    def __init__(self) -> None:
        self.dirty: set[Outbox] = set()
        self.wakeup = asyncio.Event()
        self._stalled: set[Outbox] = set()
        self.buffer_limit: int = settings.REALTIME_SEND_BUFFER_LIMIT
        self.stall_timeout: float = settings.REALTIME_STALL_TIMEOUT
        self.close_grace: float = settings.REALTIME_CLOSE_GRACE
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, on_done: Callable[[asyncio.Task[None]], Any]) -> None:
        """Start the flush and stall tasks; ``on_done`` hears if one ends."""
        loops = {"hub-flush": self._flush_loop(), "hub-stalls": self._stall_loop()}
        self._tasks = start_watched(loops, on_done)

    async def aclose(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []

    def wake(self, outbox: Outbox) -> None:
        """``outbox`` has something new: write it on the next flush."""
        self.dirty.add(outbox)
        self.wakeup.set()

    def forget(self, outbox: Outbox) -> None:
        """The connection is gone: neither flush nor watch it any more."""
        self.dirty.discard(outbox)
        self._stalled.discard(outbox)

    def close_stalled(self, outbox: Outbox, reason: str) -> None:
        """Close ``outbox``'s client with 4009 soon (``reason`` is logged)."""
        self._stalled.discard(outbox)
        asyncio.get_running_loop().create_task(self._close_stalled(outbox, reason))

    async def _flush_loop(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            dirty, self.dirty = self.dirty, set()
            sent = 0
            for outbox in dirty:
                if outbox.stalled_since is not None:
                    continue  # the stall loop resumes it once the client reads
                if outbox.backlogged(self.buffer_limit):
                    outbox.stalled_since = time.monotonic()
                    self._stalled.add(outbox)
                    logger.info("event=ws_stalled conn=%s", outbox.conn_id)
                    # What this turn queued is held (and conflated) from now on.
                    batch, outbox.queue = outbox.queue, []
                    for symbol, data in batch:
                        if symbol is None:
                            outbox.put_reply(data)
                        else:
                            outbox.put(symbol, data)
                    continue
                try:
                    sent += await outbox.flush()
                except Exception as exc:  # the socket went away mid-send
                    logger.debug(
                        "event=send_failed conn=%s error=%r", outbox.conn_id, exc
                    )
            if sent:
                metrics.MESSAGES_DELIVERED.inc(sent)

    async def _stall_loop(self) -> None:
        """Resume stalled connections that read again; close the ones that don't."""
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            for outbox in list(self._stalled):
                if not outbox.backlogged(self.buffer_limit):
                    outbox.resume()
                    self._stalled.discard(outbox)
                    self.wake(outbox)
                elif now - outbox.stalled_since > self.stall_timeout:
                    self._stalled.discard(outbox)
                    await self._close_stalled(outbox, "deadline")

    async def _close_stalled(self, outbox: Outbox, reason: str) -> None:
        """Close a client that does not read with 4009, so that it can see why.

        The unsent frames Twisted holds are dropped first, the client's further
        messages are dropped unread, and it gets ``REALTIME_CLOSE_GRACE`` s to
        read the close frame (``Outbox.prepare_server_close``). Logged once: a
        closed outbox is never closed again.
        """
        if outbox.closed:
            return
        stalled_since = outbox.stalled_since or time.monotonic()
        buffered = daphne_io.buffered_bytes(outbox.transport) if outbox.transport else 0
        dropped = outbox.prepare_server_close(self.close_grace, drop_unsent=True)
        logger.warning(
            "event=ws_stalled_closed conn=%s code=%d reason=%s seconds=%.1f "
            "buffered=%d dropped=%d",
            outbox.conn_id,
            CLOSE_STALLED,
            reason,
            time.monotonic() - stalled_since,
            buffered,
            dropped,
        )
        await outbox.close_with(CLOSE_STALLED)
