"""FanoutHub: this process's single member of the price groups.

The tutorial design makes every consumer a member of every symbol group it needs:
each tick then costs one channel-layer message, one ``dispatch()`` (with its
``aclose_old_connections`` thread hop) and one JSON encode *per client*. Here the
process is the member instead. The hub receives the feed's batches (each tick's
text encoded once by the feed) and hands each text to the local connections'
outboxes; a single writer task writes the pending texts to the sockets.

The hub keeps who receives what (registry, subscribe, delivery, the layer's
messages) and the lifecycle. Each other job has its module beside it:
``outbox.py`` (the outboxes and their writer: flush, stall, 4009),
``recovery.py`` (subscribe holds, sequence guard), ``lease.py`` (lease, feed
watch, slot refresh), ``hubs.py`` (one hub per event loop), ``health.py`` (the
failure flag /health reads).

Every reach-in into daphne, Twisted and autobahn is in realtime/fanout/daphne_io.py,
every one into channels-redis (batched receives) in realtime/layer_io.py.
Each long-running task has a done-callback: a crash is logged and marks the
process unhealthy (health.py: ``fanout_failure()``, gauge
``fmpsite_fanout_healthy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from realtime import layer_io, metrics
from realtime.backends import backends
from realtime.events import HUBS_GROUP, Update
from realtime.fanout import daphne_io
from realtime.fanout.gapfill import GapFiller
from realtime.fanout.health import mark_failed
from realtime.fanout.lease import LeaseKeeper
from realtime.fanout.outbox import Outbox, OutboxWriter
from realtime.fanout.recovery import SequenceGuard, SubscribeHolds
from realtime.fanout.shaping import Shaper
from realtime.fanout.slots import ConnectionSlots
from realtime.feed.state import encode_upstream_refused
from realtime.groups import price_group

__all__ = ["FanoutHub", "Outbox"]

logger = logging.getLogger(__name__)
# Seconds between attempts to reach the layer again after a receive failed. A
# Sentinel promotion is seen within a fraction of a second of it happening, and
# every retry lost here is a gap all this process's clients see (issue 23:
# bench/failover.py); an attempt against a Redis that is down costs one
# refused connection.
RECEIVE_RETRY = 0.25

# Refusals are rare (one per refused stream or ticker); never an unbounded map.
MAX_REMEMBERED_REFUSALS = 10_000


class FanoutHub:
    """One per event loop (``get_hub``): the registry of this process's
    connections and the one path every message to them takes."""

    def __init__(
        self,
        channel_layer: Any,
        *,
        owner: str,
        lease_ttl: float,
        slots: ConnectionSlots | None = None,
    ) -> None:
        self.channel_layer = channel_layer
        self.owner = owner
        self.lease_ttl = lease_ttl
        stores = backends()
        self.slots = slots if slots is not None else stores.slots(owner, lease_ttl)
        self.by_symbol: dict[str, set[Outbox]] = {}
        self.outboxes: set[Outbox] = set()
        self.channel_name: str | None = None
        self._joining: str | None = None  # a registration that failed half-way
        self.writer = OutboxWriter()
        self.holds = SubscribeHolds()
        # Per-subscription caps and filters (realtime/fanout/shaping.py).
        self.shaper = Shaper(self.writer, self.holds)
        # Scaled mode only: a new feed leader replays, Redis may restart the
        # sequence, the layer may drop (realtime/fanout/recovery.py, gapfill.py).
        self.sequence: SequenceGuard | None = None
        if stores.scaled:
            max_gap = settings.REALTIME_GAP_FILL_MAX
            gaps = GapFiller(stores.history, self.deliver, max_gap=max_gap)
            self.sequence = SequenceGuard(gaps if max_gap > 0 else None)
        self.lease = LeaseKeeper(self)
        # deliver() reads these once per tick without going through their owners.
        self._held = self.holds.held
        self._shaped = self.shaper.by_symbol
        self._flush_wakeup = self.writer.wakeup
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        # The feed's last upstream_status message, for clients that connect while
        # the upstream is down (None while it is connected).
        self.upstream_down_text: str | None = None
        # Symbols FMP refused (or the configured socket cannot serve), with why: a
        # client subscribing to one later is told at once (``refusals_for``).
        self.refused: dict[str, str] = {}
        # Layer message type -> its handler (``_on_layer_message``).
        self._handlers: dict[str, Callable[[dict], None]] = {
            "price.batch": self._on_batch,
            "hub.upstream": self._on_upstream,
            "hub.refused": self._on_refused,
            "hub.lease_request": self._on_lease_request,
            "hub.alert": self._on_alert,
        }

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self.writer.start(self._task_done)
        self.shaper.start(self._task_done)
        self._tasks = [asyncio.create_task(self._receive_loop(), name="hub-receive")]
        self._tasks[0].add_done_callback(self._task_done)
        self.lease.start(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A hub task ending by itself means no more delivery: say so, loudly."""
        if task.cancelled() or self._closing:
            return
        error = task.exception()
        reason = f"{task.get_name()} {'crashed: ' + repr(error) if error else 'ended'}"
        logger.error(
            "event=hub_task_crashed owner=%s task=%s error=%r",
            self.owner,
            task.get_name(),
            error,
            exc_info=error,
        )
        mark_failed(reason)

    async def aclose(self) -> None:
        """Release the lease, leave every group and stop.

        The feed drops our symbols after its grace; leaving the groups at once
        stops the layer from queueing ticks for a channel nobody reads.
        """
        self._closing = True
        if self.channel_layer is not None:
            await self.lease.release()
            channel = self.channel_name
            if channel is not None:
                groups = [HUBS_GROUP, *(price_group(s) for s in self.by_symbol)]
                for group in groups:
                    try:
                        await self.channel_layer.group_discard(group, channel)
                    except Exception as exc:
                        logger.debug(
                            "event=group_discard_failed group=%s error=%r", group, exc
                        )
        for task in self._tasks:
            task.cancel()
        await self.writer.aclose()
        await self.shaper.aclose()
        await self.lease.aclose()
        if self.sequence is not None and self.sequence.gaps is not None:
            await self.sequence.gaps.aclose()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.slots.release_all()

    async def shutdown(self, wait: float = 2.0) -> None:
        """The server is stopping: close every client with 1001, then ``aclose``.

        Waits up to ``wait`` s for the clients' close handshakes, so they read
        "going away" instead of a dropped connection.
        """
        outboxes = list(self.outboxes)
        logger.info("event=hub_shutdown owner=%s clients=%d", self.owner, len(outboxes))
        for outbox in outboxes:
            await outbox.go_away()
        protocols = [ob.protocol for ob in outboxes if ob.protocol is not None]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                # Twisted's state, no asyncio event to wait on: poll, bounded.
                while any(  # noqa: ASYNC110
                    not p.transport.disconnected for p in protocols
                ):
                    await asyncio.sleep(0.05)
        await self.aclose()

    # --- connections ---------------------------------------------------------------
    async def admit(self, outbox: Outbox, principal: str | None) -> bool:
        """Take a connection slot of ``principal`` (None: anonymous, uncapped)."""
        if principal is None:
            return True
        return await self.slots.acquire(
            principal, outbox.conn_id, settings.REALTIME_MAX_CONNECTIONS_PER_USER
        )

    def attach(self, outbox: Outbox) -> None:
        self.outboxes.add(outbox)
        if self.upstream_down_text is not None:
            outbox.put_upstream(outbox.encode(self.upstream_down_text))
            self.writer.wake(outbox)
        metrics.CLIENTS.set(len(self.outboxes))
        self.lease.wake()

    async def detach(self, outbox: Outbox) -> None:
        await self.unsubscribe(outbox, list(outbox.symbols))
        self.outboxes.discard(outbox)
        self.writer.forget(outbox)
        metrics.CLIENTS.set(len(self.outboxes))
        self.lease.wake()
        if outbox.user_key is not None:
            await self.slots.release(outbox.user_key, outbox.conn_id)

    async def subscribe(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        """Deliver ``symbols`` to ``outbox`` from now on.

        The registration happens before the first await, so no tick that arrives
        meanwhile slips past the connection; then the process joins the groups of
        the symbols it did not need before (scaled mode: one ``group_add`` each).
        """
        joined = []
        for symbol in symbols:
            outbox.symbols.add(symbol)
            members = self.by_symbol.get(symbol)
            if members is None:
                members = self.by_symbol[symbol] = set()
                joined.append(symbol)
            members.add(outbox)
        if not joined:
            return
        self.lease.wake()
        if self.channel_name is None:
            return  # the receive loop joins every needed group once it has a channel
        for symbol in joined:
            await self.channel_layer.group_add(price_group(symbol), self.channel_name)

    async def unsubscribe(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        """Stop delivering ``symbols`` to ``outbox``; leave groups nobody needs."""
        left = []
        for symbol in symbols:
            outbox.symbols.discard(symbol)
            outbox.discard(symbol)
            if self._shaped:
                self.shaper.forget(outbox, symbol)
            if self.holds.held:
                self.holds.drop(outbox, symbol)
            members = self.by_symbol.get(symbol)
            if members is None:
                continue
            members.discard(outbox)
            if not members:
                del self.by_symbol[symbol]
                left.append(symbol)
                if self.sequence is not None:
                    self.sequence.forget(symbol)
        if not left:
            return
        self.lease.wake()
        if self.channel_name is None:
            return
        for symbol in left:
            try:
                await self.channel_layer.group_discard(
                    price_group(symbol), self.channel_name
                )
            except Exception as exc:
                logger.warning(
                    "event=group_discard_failed symbol=%s error=%r", symbol, exc
                )

    # --- replies, snapshots, replays -----------------------------------------------
    def send_reply(self, outbox: Outbox, text: str) -> None:
        """Queue a reply (ack, error, pong, list) behind what the client awaits.

        Every message to a client goes through its outbox, so one bound covers
        them all: a client whose socket is backed up and keeps asking is closed
        4009 once ``MAX_HELD_REPLIES`` replies wait for it.
        """
        if outbox.closed:
            return
        if not outbox.put_reply(outbox.encode(text)):
            self.writer.close_stalled(outbox, "replies")
            return
        self.writer.wake(outbox)

    def send_snapshot(self, outbox: Outbox, symbol: str, text: str) -> None:
        """Queue a snapshot; like an update, a newer one for the symbol replaces it."""
        if outbox.closed:
            return
        outbox.put(symbol, outbox.encode(text))
        self.writer.wake(outbox)

    def send_updates(self, outbox: Outbox, symbol: str, texts: Iterable[str]) -> None:
        """Queue replayed updates (already marked ``recovered``), in order."""
        if outbox.closed:
            return
        for text in texts:
            outbox.put(symbol, outbox.encode(text))
        self.writer.wake(outbox)

    # --- subscribe holds (realtime/fanout/recovery.py) -----------------------------
    def hold(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        """Hold live updates of ``symbols`` until ``release`` (before ``subscribe``)."""
        self.holds.hold(outbox, symbols)

    def drop_hold(self, outbox: Outbox, symbol: str) -> list[Update] | int | None:
        """Stop holding or filtering (nothing is sent)."""
        return self.holds.drop(outbox, symbol)

    def release(
        self,
        outbox: Outbox,
        symbol: str,
        after_seq: int | None,
        epoch: str | None = None,
    ) -> int:
        """Queue the held updates of ``symbol`` above ``after_seq`` (all for None)
        and deliver live again; returns how many (``SubscribeHolds.release``).
        With ``epoch``, ``after_seq`` is where this process's sequence guard
        starts if it has no position yet (``SequenceGuard.baseline``)."""
        if self.sequence is not None and epoch is not None and after_seq is not None:
            self.sequence.baseline(symbol, epoch, after_seq)
        sent = self.holds.release(outbox, symbol, after_seq)
        if sent:
            self.writer.wake(outbox)
        return sent

    # --- tick path -----------------------------------------------------------------
    def deliver(self, update: Update) -> None:
        symbol = update.symbol
        if self.refused:  # rare: FMP now serves a symbol it had refused
            self.refused.pop(symbol, None)
        members = self.by_symbol.get(symbol)
        if not members:
            return
        sequence = self.sequence
        original = update
        if sequence is not None:
            checked = sequence.check(update)
            if checked is None:
                return  # a takeover replay of an update this process already sent
            update = checked
        shaped = self._shaped.get(symbol) if self._shaped else None
        if shaped is not None:  # capped or filtered clients (shaping.py)
            members = self.shaper.deliver(
                update, members, shaped, forced=update is not original
            )
        text = update.text
        holds = self._held.get(symbol) if self._held else None
        if holds is not None and update is not original and not original.replayed:
            self.holds.new_epoch(symbol)  # the guard made it an epoch's snapshot
            holds = self._held.get(symbol)
        frame: bytes | None = None
        deflated: bytes | None = None
        for outbox in members:
            if (
                holds is not None
                and outbox in holds
                and not self.holds.admit(holds, outbox, update)
            ):
                continue  # held for its subscribe, or a duplicate of its replay
            if outbox.direct:
                if outbox.deflate is not None:  # permessage-deflate (deflate.py)
                    if deflated is None:
                        deflated = outbox.deflate.frame(text)  # once per tick
                    outbox.put(symbol, deflated)
                    continue
                if frame is None:
                    frame = daphne_io.text_frame(text)  # once per tick
                outbox.put(symbol, frame)
            else:
                outbox.put(symbol, text)
        self.writer.dirty.update(members)
        self._flush_wakeup.set()
        metrics.TICK_TO_SEND.observe(max(0.0, time.time() - update.tick_ts / 1000))

    def deliver_refused(self, symbols: list[str], message: str) -> None:
        """Tell each client subscribed to a refused symbol, naming only its own.

        FMP refusing a ticker or a stream (a plan without that market) means those
        symbols will get nothing: an ``upstream_refused`` error says so instead of
        silence after ``subscribed``.
        """
        if len(self.refused) < MAX_REMEMBERED_REFUSALS:
            self.refused.update(dict.fromkeys(symbols, message))
        wanted = set(symbols)
        for outbox in list(self.outboxes):
            mine = sorted(wanted & outbox.symbols)
            if mine:
                self.send_reply(outbox, encode_upstream_refused(mine, message))
        logger.warning(
            "event=upstream_refused_delivered symbols=%s message=%r",
            ",".join(sorted(wanted)),
            message,
        )

    def refusals_for(self, symbols: list[str]) -> dict[str, str]:
        """Which of ``symbols`` the feed reported refused, with FMP's message."""
        if not self.refused:
            return {}
        return {s: self.refused[s] for s in symbols if s in self.refused}

    def deliver_upstream(self, status: str, text: str) -> None:
        """Queue the feed's ``upstream_status`` for every client (latest wins)."""
        self.upstream_down_text = None if status == "connected" else text
        # Plain for deflate clients too: RFC 7692 allows uncompressed messages.
        frame = daphne_io.text_frame(text)
        for outbox in self.outboxes:
            outbox.put_upstream(frame if outbox.direct else text)
        self.writer.dirty.update(self.outboxes)
        self.writer.wakeup.set()

    def deliver_alert(self, user: str, text: str) -> None:
        """A fired price alert, to every open connection of principal ``user``
        only (rare: a scan of this process's connections, never per tick)."""
        for outbox in self.outboxes:
            if outbox.user_key == user:
                self.send_reply(outbox, text)

    # --- channel layer -------------------------------------------------------------
    async def _receive_loop(self) -> None:
        # channels-redis: many messages per Redis round trip (realtime/layer_io.py)
        # instead of four round trips per message.
        io = layer_io.probe(self.channel_layer)
        while True:
            try:
                if self.channel_name is None:
                    await self._register()
                if io is not None:
                    messages = await io.receive_many(self.channel_name)
                else:
                    messages = [await self.channel_layer.receive(self.channel_name)]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis restarting: group memberships may be gone with it, so
                # register again and re-send the lease once it is back.
                logger.warning("event=hub_receive_failed error=%r", exc)
                self.channel_name = None
                await asyncio.sleep(RECEIVE_RETRY)
                continue
            for message in messages:
                try:
                    self._on_layer_message(message)
                except Exception as exc:  # one bad message never stops the loop
                    logger.warning(
                        "event=hub_bad_message type=%r error=%r",
                        message.get("type") if isinstance(message, dict) else None,
                        exc,
                    )

    def _on_layer_message(self, message: dict) -> None:
        kind = message.get("type")
        handler = self._handlers.get(kind)
        if handler is None:
            logger.warning("event=hub_unknown_message type=%r", kind)
            return
        handler(message)

    def _on_batch(self, message: dict) -> None:
        deliver, make = self.deliver, Update._make
        for item in message["updates"]:  # an array each on the wire
            deliver(make(item))

    def _on_upstream(self, message: dict) -> None:
        self.deliver_upstream(message["status"], message["text"])

    def _on_refused(self, message: dict) -> None:
        self.deliver_refused(list(message["symbols"]), message["message"])

    def _on_alert(self, message: dict) -> None:
        self.deliver_alert(message["user"], message["text"])

    def _on_lease_request(self, message: dict) -> None:
        self.lease.wake()

    async def _register(self) -> None:
        # The layer's default prefix: channels-redis reads process-local channels
        # through one shared receive loop keyed on it, and a custom prefix made the
        # scaled benchmark deliver nothing.
        # A registration that failed half-way (one shard of a sharded layer
        # down) is retried on the same channel: a new name per retry would leave
        # one channel nobody reads in the groups already joined, every 0.25 s.
        channel = self._joining or await self.channel_layer.new_channel()
        self._joining = channel
        # Publish the name before the awaits below, so a symbol subscribed
        # meanwhile is joined by ``subscribe`` instead of slipping between the two.
        self.channel_name = channel
        await self.channel_layer.group_add(HUBS_GROUP, channel)
        for symbol in list(self.by_symbol):
            await self.channel_layer.group_add(price_group(symbol), channel)
        self._joining = None
        self.lease.wake()
        logger.info("event=hub_registered owner=%s channel=%s", self.owner, channel)
