"""LayerPublisher: the scaled fan-out, from the feed to every web process's hub.

The broker (realtime/feed/broker.py) hands it each update once the update is in
the Redis history; it sends them over the channel layer. Embedded mode has no
publisher: its broker calls this process's hub (wired above the stages, in
realtime/backends.py), so the feed never imports the fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from channels.exceptions import ChannelFull

from realtime import layer_io, metrics
from realtime.events import (
    HUBS_GROUP,
    PriceBatchEvent,
    Update,
    UpstreamRefusedEvent,
    UpstreamStatusEvent,
)
from realtime.groups import price_group

logger = logging.getLogger(__name__)


class LayerPublisher:
    """Scaled mode: one channel-layer message per web process per flush.

    ``deliver`` is called from the broker and must not wait on Redis, so updates
    queue here in order. Each flush groups the queued updates by destination and
    sends every web process's hub ONE ``price.batch`` message carrying its
    updates in order: a flush costs one Redis round trip to read who needs what
    plus one send per web process, instead of one ``group_send`` per tick
    (docs/scaling.md). Who needs what is still the per-symbol group each hub joins
    (``price.<symbol>``, a sorted set in channels-redis), read once per flush for
    the flush's symbols in one pipeline per Redis shard: a hub that joined a
    group before a flush gets that flush's updates, exactly as with
    ``group_send``, so a subscribe that reads the history after joining sees no
    gap.

    Nothing is lost silently: a send the layer refuses (the hub's channel is at
    capacity, Redis down) is counted in ``fmpsite_layer_dropped_total``, logged
    once per burst, and the latest update of every affected symbol is re-sent to
    that hub on a later flush (retried every ``resync_delay`` s until it gets
    through), so no client keeps a stale price.

    If Redis falls more than ``backlog_limit`` updates behind, the backlog is
    conflated to the latest update per symbol (each carries the full state).
    """

    def __init__(
        self,
        channel_layer: Any,
        backlog_limit: int = 10_000,
        resync_delay: float = 0.25,
        min_interval: float = 0.005,
    ) -> None:
        self.channel_layer = channel_layer
        self.min_interval = min_interval
        self._last_flush = 0.0
        self.backlog_limit = backlog_limit
        self.resync_delay = resync_delay
        self._queue: list[Update] = []
        self._upstream: UpstreamStatusEvent | None = None
        self._refused: list[UpstreamRefusedEvent] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The last update published per symbol somebody needs: what a resync sends.
        self._latest: dict[str, Update] = {}
        # hub channel -> symbols to re-send after a loss.
        self._resync: dict[str, set[str]] = {}
        # hub channel -> updates dropped in its current burst of losses.
        self._dropping: dict[str, int] = {}
        # channels-redis: one pipeline and one script call per shard per flush.
        self._io = layer_io.probe(channel_layer)

    def forget_channel(self, channel: str) -> None:
        """``channel``'s hub is gone (its lease expired): no resync for it."""
        self._resync.pop(channel, None)
        self._dropping.pop(channel, None)

    async def _members(self, symbols: Iterable[str]) -> dict[str, list[str]]:
        """The hub channels in each symbol's group (``layer_io``); another layer
        falls back to its ``groups`` mapping if it has one (the in-memory layer)."""
        groups = {symbol: price_group(symbol) for symbol in symbols}
        if self._io is not None:
            members = await self._io.group_members(groups.values())
            return {symbol: members[group] for symbol, group in groups.items()}
        lookup = getattr(self.channel_layer, "groups", {})
        return {symbol: list(lookup.get(group, ())) for symbol, group in groups.items()}

    # --- publishing (the broker's ``Fanout``) ---------------------------------------
    def deliver(self, update: Update) -> None:
        self._queue.append(update)
        if len(self._queue) > self.backlog_limit:
            latest = {item.symbol: item for item in self._queue}
            logger.warning(
                "event=publish_backlog_conflated updates=%d kept=%d",
                len(self._queue),
                len(latest),
            )
            self._queue = list(latest.values())
        self._wakeup.set()

    def deliver_upstream(self, status: str, text: str) -> None:
        self._upstream = {"type": "hub.upstream", "status": status, "text": text}
        self._wakeup.set()

    def deliver_refused(self, symbols: Sequence[str], message: str) -> None:
        if len(self._refused) < 100:  # refusals are rare; never an unbounded list
            self._refused.append(
                {"type": "hub.refused", "symbols": sorted(symbols), "message": message}
            )
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-publisher")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._resync and not self._wakeup.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.resync_delay):
                        await self._wakeup.wait()
            else:
                await self._wakeup.wait()
            # At most one flush per ``min_interval``: under load each web process
            # gets fewer, fuller batches instead of more messages than its
            # channel-layer receive (a few Redis round trips each) can take.
            wait = self._last_flush + self.min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wakeup.clear()
            self._last_flush = loop.time()
            await self.flush()

    async def flush(self) -> None:
        """Send what is queued: control messages first, then one batch per hub."""
        batch, self._queue = self._queue, []
        upstream, self._upstream = self._upstream, None
        refused, self._refused = self._refused, []
        for control in [*([upstream] if upstream else []), *refused]:
            try:
                await self.channel_layer.group_send(HUBS_GROUP, control)
            except Exception as exc:
                logger.warning(
                    "event=publish_control_failed type=%s error=%r",
                    control["type"],
                    exc,
                )
        resync, self._resync = self._resync, {}
        if not batch and not resync:
            return
        symbols = {item.symbol for item in batch}
        for wanted in resync.values():
            symbols |= wanted
        try:
            members = await self._members(symbols)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis restarting: hubs register again after it
            metrics.LAYER_DROPPED.labels("error").inc(len(batch))
            for channel, wanted in resync.items():
                self._resync.setdefault(channel, set()).update(wanted)
            logger.warning("event=publish_failed updates=%d error=%r", len(batch), exc)
            return
        latest = self._latest
        per_hub: dict[str, list[Update]] = {}
        for item in batch:
            channels = members.get(item.symbol)
            if not channels:
                latest.pop(item.symbol, None)
                continue
            latest[item.symbol] = item
            for channel in channels:
                updates = per_hub.get(channel)
                if updates is None:
                    per_hub[channel] = [item]
                else:
                    updates.append(item)
        for channel, wanted in resync.items():
            updates = per_hub.get(channel, [])
            present = {item.symbol for item in updates}
            stale = [
                latest[s]
                for s in sorted(wanted - present)
                if s in latest and channel in members.get(s, ())
            ]
            if stale:
                per_hub[channel] = stale + updates
        if not per_hub:
            return
        if self._io is not None:
            await self._send_many(per_hub)
        elif len(per_hub) == 1:
            channel, updates = next(iter(per_hub.items()))
            await self._send(channel, updates)
        else:
            await asyncio.gather(*(self._send(c, u) for c, u in per_hub.items()))

    async def _send_many(self, per_hub: dict[str, list[Update]]) -> None:
        """Every hub's batch in one script call per Redis shard (``layer_io``)."""
        events: dict[str, PriceBatchEvent] = {
            channel: {"type": "price.batch", "updates": updates}
            for channel, updates in per_hub.items()
        }
        outcome = await self._io.send_many(events)  # type: ignore[union-attr]
        for channel, error in outcome.items():
            if error is None:
                self._delivered(channel)
            else:
                self._lost(channel, per_hub[channel], error)

    async def _send(self, channel: str, updates: list[Update]) -> None:
        event: PriceBatchEvent = {"type": "price.batch", "updates": updates}
        try:
            await self.channel_layer.send(channel, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ChannelFull, or Redis restarting
            self._lost(channel, updates, exc)
            return
        self._delivered(channel)

    def _delivered(self, channel: str) -> None:
        dropped = self._dropping.pop(channel, None)
        if dropped is not None:
            logger.warning(
                "event=layer_resynced channel=%s dropped=%d", channel, dropped
            )

    def _lost(self, channel: str, updates: list[Update], exc: Exception) -> None:
        reason = "channel_full" if isinstance(exc, ChannelFull) else "error"
        metrics.LAYER_DROPPED.labels(reason).inc(len(updates))
        if channel not in self._dropping:
            self._dropping[channel] = 0
            logger.warning(
                "event=layer_dropped channel=%s reason=%s updates=%d error=%r",
                channel,
                reason,
                len(updates),
                exc,
            )
        self._dropping[channel] += len(updates)
        self._resync.setdefault(channel, set()).update(u.symbol for u in updates)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
