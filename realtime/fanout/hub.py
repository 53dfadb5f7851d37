"""FanoutHub: this process's single member of the price groups.

The tutorial design makes every consumer a member of every symbol group it needs:
each tick then costs one channel-layer message, one ``dispatch()`` (with its
``aclose_old_connections`` thread hop) and one JSON encode *per client*. Here the
process is the member instead. The hub receives one message per tick, whose text
the feed encoded once, and hands it to the local connections' outboxes; a single
flusher task writes the pending texts to the sockets.

A client that keeps up gets every update, in order. One that cannot (its socket
holds more than ``REALTIME_SEND_BUFFER_LIMIT`` unread bytes) gets conflated
updates: its outbox keeps at most one pending update per symbol (the newest), so
memory stays bounded by its subscriptions, whatever the tick rate.

The hub also aggregates its connections' symbols into one lease for the feed
(ARCHITECTURE.md, "Subscription bookkeeping"), sent on change and every ttl/3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from realtime import metrics
from realtime.events import FEED_CHANNEL, HUBS_GROUP, LeaseEvent
from realtime.fanout.backpressure import buffered_bytes
from realtime.fanout.directwrite import supports_direct_write, text_frame, write_frames
from realtime.groups import price_group

logger = logging.getLogger(__name__)

CLOSE_STALLED = 4009
# The pending-update key of ``upstream_status`` messages: no symbol is empty.
UPSTREAM_KEY = ""


class Outbox:
    """One connection's updates waiting for the next flush.

    ``queue`` holds every update in arrival order (``(symbol, data)``) and is
    emptied on each flush, one event-loop turn after the ticks arrived. When the
    connection's transport holds more than ``buffer_limit`` unread bytes (see
    realtime/fanout/backpressure.py) the connection is stalled: nothing more is written
    and updates replace each other in ``pending`` (one per symbol) until the
    client reads again (``resume``), or until it has been stalled too long and the
    hub closes it.
    """

    __slots__ = (
        "send_text",
        "close",
        "queue",
        "pending",
        "conn_id",
        "symbols",
        "conflated",
        "user_key",
        "transport",
        "protocol",
        "direct",
        "stalled_since",
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
    ) -> None:
        self.send_text = send_text
        self.close = close
        self.conn_id = conn_id
        self.user_key = user_key
        # daphne's WebSocket protocol (realtime/fanout/backpressure.py), None elsewhere.
        self.protocol = protocol
        self.transport = getattr(protocol, "transport", None)
        # Pending updates are ready-made frames (bytes) when written directly to
        # the socket (realtime/fanout/directwrite.py), texts for the ASGI send
        # otherwise.
        self.direct = (
            direct and protocol is not None and supports_direct_write(protocol)
        )
        self.queue: list[tuple[str, str | bytes]] = []
        self.pending: dict[str, str | bytes] = {}
        self.symbols: set[str] = set()
        self.conflated = 0
        self.stalled_since: float | None = None

    def backlogged(self, limit: int) -> bool:
        return self.transport is not None and buffered_bytes(self.transport) > limit

    def put(self, symbol: str, data: str | bytes) -> None:
        if self.stalled_since is None:
            self.queue.append((symbol, data))
            return
        if symbol in self.pending:
            self.conflated += 1
            metrics.MESSAGES_CONFLATED.inc()
        self.pending[symbol] = data

    def has_pending(self, symbol: str) -> bool:
        return symbol in self.pending or any(s == symbol for s, _ in self.queue)

    def discard(self, symbol: str) -> None:
        """Drop what is waiting for ``symbol`` (the client unsubscribed)."""
        self.pending.pop(symbol, None)
        if self.queue:
            self.queue = [item for item in self.queue if item[0] != symbol]

    def resume(self) -> None:
        """The client reads again: its conflated updates go out next, in order."""
        self.stalled_since = None
        self.queue.extend(self.pending.items())
        self.pending = {}

    async def flush(self) -> int:
        batch, self.queue = self.queue, []
        if self.direct:
            if not write_frames(self.protocol, b"".join([d for _, d in batch])):
                return 0
            return len(batch)
        for _, text in batch:
            await self.send_text(text)
        return len(batch)


class FanoutHub:
    def __init__(self, channel_layer: Any, *, owner: str, lease_ttl: float) -> None:
        self.channel_layer = channel_layer
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.by_symbol: dict[str, set[Outbox]] = {}
        self.outboxes: set[Outbox] = set()
        self.channel_name: str | None = None
        self._dirty: set[Outbox] = set()
        self._stalled: set[Outbox] = set()
        self.buffer_limit = settings.REALTIME_SEND_BUFFER_LIMIT
        self.stall_timeout = settings.REALTIME_STALL_TIMEOUT
        self._flush_wakeup = asyncio.Event()
        self._lease_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        # The feed's last upstream_status message, for clients that connect while
        # the upstream is down (None while it is connected).
        self.upstream_down_text: str | None = None

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="hub-flush"),
            asyncio.create_task(self._receive_loop(), name="hub-receive"),
            asyncio.create_task(self._lease_loop(), name="hub-lease"),
            asyncio.create_task(self._stall_loop(), name="hub-stalls"),
        ]

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def aclose(self) -> None:
        """Release the lease and stop; the feed drops our symbols after its grace."""
        if self.channel_layer is not None:
            try:
                await self.channel_layer.send(
                    FEED_CHANNEL, {"type": "feed.release", "owner": self.owner}
                )
            except Exception as exc:
                logger.debug("event=lease_release_failed error=%r", exc)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- connections ---------------------------------------------------------------
    def attach(self, outbox: Outbox) -> None:
        self.outboxes.add(outbox)
        if self.upstream_down_text is not None:
            self._queue(outbox, UPSTREAM_KEY, self.upstream_down_text, None)
            self._flush_wakeup.set()
        metrics.CLIENTS.set(len(self.outboxes))
        self._lease_wakeup.set()

    async def detach(self, outbox: Outbox) -> None:
        await self.remove(outbox, list(outbox.symbols))
        self.outboxes.discard(outbox)
        self._dirty.discard(outbox)
        self._stalled.discard(outbox)
        metrics.CLIENTS.set(len(self.outboxes))
        self._lease_wakeup.set()

    def connections_of(self, user_key: str) -> int:
        return sum(1 for ob in self.outboxes if ob.user_key == user_key)

    def add(self, outbox: Outbox, symbols: Iterable[str]) -> list[str]:
        """Register symbols for a connection at once (no await: no tick slips in).

        Returns the symbols this process did not need before; ``join`` them next.
        """
        joined = []
        for symbol in symbols:
            outbox.symbols.add(symbol)
            members = self.by_symbol.get(symbol)
            if members is None:
                members = self.by_symbol[symbol] = set()
                joined.append(symbol)
            members.add(outbox)
        if joined:
            self._lease_wakeup.set()
        return joined

    async def join(self, symbols: Iterable[str]) -> None:
        if self.channel_name is None:
            return  # the receive loop joins every needed group once it has a channel
        for symbol in symbols:
            await self.channel_layer.group_add(price_group(symbol), self.channel_name)

    async def remove(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        left = []
        for symbol in symbols:
            outbox.symbols.discard(symbol)
            outbox.discard(symbol)
            members = self.by_symbol.get(symbol)
            if members is None:
                continue
            members.discard(outbox)
            if not members:
                del self.by_symbol[symbol]
                left.append(symbol)
        if left:
            self._lease_wakeup.set()
            if self.channel_name is not None:
                for symbol in left:
                    try:
                        await self.channel_layer.group_discard(
                            price_group(symbol), self.channel_name
                        )
                    except Exception as exc:
                        logger.warning(
                            "event=group_discard_failed symbol=%s error=%r", symbol, exc
                        )

    # --- tick path -----------------------------------------------------------------
    def deliver(self, symbol: str, text: str, tick_ts: int) -> None:
        members = self.by_symbol.get(symbol)
        if not members:
            return
        frame: bytes | None = None
        for outbox in members:
            if outbox.direct:
                if frame is None:
                    frame = text_frame(text)  # once per tick, not per client
                outbox.put(symbol, frame)
            else:
                outbox.put(symbol, text)
        self._dirty.update(members)
        self._flush_wakeup.set()
        metrics.TICK_TO_SEND.observe(max(0.0, time.time() - tick_ts / 1000))

    def deliver_upstream(self, status: str, text: str) -> None:
        """Queue the feed's ``upstream_status`` for every client (latest wins)."""
        self.upstream_down_text = None if status == "connected" else text
        frame = text_frame(text)
        for outbox in self.outboxes:
            self._queue(outbox, UPSTREAM_KEY, text, frame)
        self._dirty.update(self.outboxes)
        self._flush_wakeup.set()

    @staticmethod
    def _queue(outbox: Outbox, key: str, text: str, frame: bytes | None) -> None:
        if outbox.direct:
            outbox.put(key, frame if frame is not None else text_frame(text))
        else:
            outbox.put(key, text)

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            dirty, self._dirty = self._dirty, set()
            sent = 0
            for outbox in dirty:
                if outbox.stalled_since is not None:
                    continue  # the stall loop resumes it once the client reads
                if outbox.backlogged(self.buffer_limit):
                    outbox.stalled_since = time.monotonic()
                    self._stalled.add(outbox)
                    logger.info("event=ws_stalled conn=%s", outbox.conn_id)
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
                    self._dirty.add(outbox)
                    self._flush_wakeup.set()
                elif now - outbox.stalled_since > self.stall_timeout:
                    self._stalled.discard(outbox)
                    logger.warning(
                        "event=ws_stalled_closed conn=%s code=%d seconds=%.1f "
                        "buffered=%d",
                        outbox.conn_id,
                        CLOSE_STALLED,
                        now - outbox.stalled_since,
                        buffered_bytes(outbox.transport),
                    )
                    if outbox.close is not None:
                        try:
                            await outbox.close(CLOSE_STALLED)
                        except Exception as exc:
                            logger.debug("event=close_failed error=%r", exc)

    # --- channel layer -------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            try:
                if self.channel_name is None:
                    await self._register()
                message = await self.channel_layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis restarting: group memberships may be gone with it, so
                # register again and re-send the lease once it is back.
                logger.warning("event=hub_receive_failed error=%r", exc)
                self.channel_name = None
                await asyncio.sleep(1.0)
                continue
            kind = message.get("type")
            if kind == "price.update":
                self.deliver(message["symbol"], message["text"], message["tick_ts"])
            elif kind == "hub.upstream":
                self.deliver_upstream(message["status"], message["text"])
            elif kind == "hub.lease_request":
                self._lease_wakeup.set()
            else:
                logger.warning("event=hub_unknown_message type=%r", kind)

    async def _register(self) -> None:
        # The layer's default prefix: channels-redis reads process-local channels
        # through one shared receive loop keyed on it, and a custom prefix made the
        # scaled benchmark deliver nothing.
        channel = await self.channel_layer.new_channel()
        # Publish the name before the awaits below, so a symbol a consumer adds
        # meanwhile is joined by ``join`` instead of slipping between the two.
        self.channel_name = channel
        await self.channel_layer.group_add(HUBS_GROUP, channel)
        for symbol in list(self.by_symbol):
            await self.channel_layer.group_add(price_group(symbol), channel)
        self._lease_wakeup.set()
        self._ready.set()
        logger.info("event=hub_registered owner=%s channel=%s", self.owner, channel)

    async def _lease_loop(self) -> None:
        interval = max(0.5, self.lease_ttl / 3)
        while True:
            # asyncio.timeout, not wait_for: cancelling wait_for's inner task
            # could leave aclose() waiting forever on 3.11 (seen in the fuzz test).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._lease_wakeup.wait()
            self._lease_wakeup.clear()
            await self.send_lease()

    async def send_lease(self) -> None:
        lease: LeaseEvent = {
            "type": "feed.lease",
            "owner": self.owner,
            "symbols": sorted(self.by_symbol),
            "clients": len(self.outboxes),
            "ttl": self.lease_ttl,
        }
        try:
            await self.channel_layer.send(FEED_CHANNEL, lease)
        except Exception as exc:  # feed absent (channel full) or Redis down
            logger.warning("event=lease_send_failed owner=%s error=%r", self.owner, exc)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FanoutHub] = (
    weakref.WeakKeyDictionary()
)


def current_hub() -> FanoutHub | None:
    """The hub of the running event loop, if one was started."""
    try:
        return _hubs.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def get_hub() -> FanoutHub:
    """The hub of the running loop (one per server process), started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        owner = f"{socket.gethostname()}:{os.getpid()}:{id(loop):x}"
        hub = FanoutHub(
            get_channel_layer(), owner=owner, lease_ttl=settings.REALTIME_LEASE_TTL
        )
        _hubs[loop] = hub
        hub.start()
    return hub


async def close_hub() -> None:
    loop = asyncio.get_running_loop()
    hub = _hubs.pop(loop, None)
    if hub is not None:
        await hub.aclose()
