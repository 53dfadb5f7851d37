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

    A sharded layer (several Redis hosts) loses one shard at a time: the
    shard's group reads and sends fail, and the others go on in the same flush.
    A shard that failed is marked down and not tried again until it answers a
    ``PING`` (probed every ``resync_delay`` s): meanwhile every update whose
    group lives there is counted dropped (``reason="error"``) and kept as the
    symbol's latest. When it answers, it may have restarted empty, so the
    publisher puts back every membership the hubs' leases name on it
    (``route_channel``) and resyncs those symbols to those hubs; each hub then
    fills the seq gap from the history (realtime/fanout/gapfill.py).

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
        # hub channel -> the symbols of its last lease (the feed runner's routes):
        # the memberships to put back on a shard that comes back.
        self._routes: dict[str, frozenset[str]] = {}
        # shard index -> updates dropped since it failed (``_shard_failed``).
        self._down: dict[int, int] = {}
        self._next_probe = 0.0

    def route_channel(self, channel: str, symbols: Iterable[str]) -> None:
        """``channel``'s hub leased ``symbols``: what it rejoins after an outage."""
        self._routes[channel] = frozenset(symbols)

    def forget_channel(self, channel: str) -> None:
        """``channel``'s hub is gone (its lease expired): no resync for it."""
        self._resync.pop(channel, None)
        self._dropping.pop(channel, None)
        self._routes.pop(channel, None)

    async def _members(
        self, symbols: Iterable[str]
    ) -> tuple[dict[str, list[str]], set[str]]:
        """The hub channels in each symbol's group (``layer_io``), and the
        symbols whose group's shard is down; another layer falls back to its
        ``groups`` mapping if it has one (the in-memory layer)."""
        groups = {symbol: price_group(symbol) for symbol in symbols}
        if self._io is not None:
            members, failed = await self._io.group_members(groups.values(), self._down)
            for shard, exc in failed.items():
                self._shard_failed(shard, exc)
            found = {s: members[g] for s, g in groups.items() if g in members}
            if len(found) == len(groups):  # every shard answered: the usual flush
                return found, set()
            return found, set(groups) - set(found)
        lookup = getattr(self.channel_layer, "groups", {})
        found = {s: list(lookup.get(g, ())) for s, g in groups.items()}
        return found, set()

    # --- shards (a sharded layer loses one at a time) ----------------------------
    def _shard_failed(self, shard: int, exc: Exception) -> None:
        if isinstance(exc, layer_io.ShardDown) or shard in self._down:
            return
        self._down[shard] = 0
        self._next_probe = asyncio.get_running_loop().time() + self.resync_delay
        logger.warning("event=layer_shard_down shard=%d error=%r", shard, exc)

    async def _probe_down(self) -> None:
        """Every ``resync_delay`` s while a shard is down: once it answers, put
        back the memberships the leases name on it, then try it again."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_probe:
            return
        self._next_probe = loop.time() + self.resync_delay
        for shard in list(self._down):
            try:
                await self._io.ping(shard)  # type: ignore[union-attr]
                rejoined = await self._rejoin(shard)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue  # still down
            dropped = self._down.pop(shard)
            logger.warning(
                "event=layer_shard_up shard=%d dropped=%d rejoined=%d",
                shard,
                dropped,
                rejoined,
            )

    async def _rejoin(self, shard: int) -> int:
        """Add every routed hub channel to its groups on ``shard`` again (a
        Redis restarted without persistence lost them all; adding is
        idempotent otherwise) and queue those symbols' resync to it."""
        io = self._io
        assert io is not None
        hubs_here = io.shard_of(HUBS_GROUP) == shard
        pairs: list[tuple[str, str]] = []
        resync: dict[str, set[str]] = {}
        for channel, symbols in self._routes.items():
            if hubs_here:
                pairs.append((HUBS_GROUP, channel))
            for symbol in symbols:
                group = price_group(symbol)
                if io.shard_of(group) == shard:
                    pairs.append((group, channel))
                    resync.setdefault(channel, set()).add(symbol)
        count = await io.group_add_many(shard, pairs)
        for channel, symbols in resync.items():
            self._resync.setdefault(channel, set()).update(symbols)
        return count

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
            if (self._resync or self._down) and not self._wakeup.is_set():
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
        if self._down:
            await self._probe_down()
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
            members, unreachable = await self._members(symbols)
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
        if unreachable:
            batch = self._unreachable(batch, unreachable, resync)
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

    def _unreachable(
        self,
        batch: list[Update],
        symbols: set[str],
        resync: dict[str, set[str]],
    ) -> list[Update]:
        """The updates of ``batch`` whose group is on a reachable shard. The
        others are counted dropped and kept as their symbol's latest (sent when
        the shard is back: ``_rejoin``); resyncs of those symbols wait too."""
        kept: list[Update] = []
        io = self._io
        for item in batch:
            if item.symbol not in symbols:
                kept.append(item)
                continue
            self._latest[item.symbol] = item
            if io is not None:
                shard = io.shard_of(price_group(item.symbol))
                if shard in self._down:
                    self._down[shard] += 1
        lost = len(batch) - len(kept)
        if lost:
            metrics.LAYER_DROPPED.labels("error").inc(lost)
        for channel, wanted in resync.items():
            waiting = wanted & symbols
            if waiting:
                self._resync.setdefault(channel, set()).update(waiting)
        return kept

    async def _send_many(self, per_hub: dict[str, list[Update]]) -> None:
        """Every hub's batch in one script call per Redis shard (``layer_io``)."""
        io = self._io
        assert io is not None
        events: dict[str, PriceBatchEvent] = {
            channel: {"type": "price.batch", "updates": updates}
            for channel, updates in per_hub.items()
        }
        outcome = await io.send_many(events, self._down)
        for channel, error in outcome.items():
            if error is None:
                self._delivered(channel)
                continue
            if not isinstance(error, ChannelFull):
                shard = io.shard_of(channel)
                self._shard_failed(shard, error)
                if shard in self._down:
                    self._down[shard] += len(per_hub[channel])
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
