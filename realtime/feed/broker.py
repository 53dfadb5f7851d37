"""Broker: the one owner of the hand-off from the feed to the fan-out.

Every price update takes the same three steps, in this order, here and nowhere
else: it is numbered (``next_seq``, per symbol, inside the history's epoch), it is
recorded in the history, and only then is it handed to the fan-out (a ``Fanout``,
given at wiring time: this process's hub, or the channel layer to every web
process's hub). Whatever a hub has delivered, a history read therefore finds too,
which is what lets a reconnecting client replay what it missed and then go on
live with no gap (docs/protocol.md, recovery). Centrifuge's broker makes the same
promise ("Publish saves to history and publishes", broker.go).

``InMemoryBroker`` (embedded mode): the ring is written synchronously, then the
fan-out is called, in the same call.

``RedisBroker`` (scaled mode): the read loop must never wait on Redis, so updates
queue here and a writer task sends each batch to the Redis history in one script
call and then hands the batch, in order, to the layer publisher. A new leader
first re-publishes the last updates it finds in the history, marked ``replayed``:
a leader killed between writing a batch and publishing it leaves updates that
reached the history but no hub, and the hubs fill that gap from the replay (and
drop what they already sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

import redis

from realtime.events import Fanout, Update
from realtime.feed.history import Fenced, History, InMemoryHistory, RedisHistory
from realtime.feed.lock import Fence

logger = logging.getLogger(__name__)

# What a new leader re-publishes per symbol at takeover.
REPLAY_TAIL = 16


class Broker(Protocol):
    history: History
    # Set once a history write was refused because a newer leader holds the
    # lock (realtime/feed/lock.py ``Fence``): this leadership must end now.
    fenced: asyncio.Event

    @property
    def epoch(self) -> str: ...
    def next_seq(self, symbol: str) -> int: ...
    def publish(self, update: Update) -> None: ...
    def publish_upstream(self, status: str, text: str) -> None: ...
    def publish_refused(self, symbols: Sequence[str], message: str) -> None: ...
    def forget_hub(self, channel: str) -> None: ...
    def route_hub(self, channel: str, symbols: Iterable[str]) -> None: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


class _Numbering:
    """What both brokers share: numbers come from the history, and status
    changes and refusals go straight to the fan-out (they are not recorded)."""

    history: History
    fanout: Fanout

    @property
    def epoch(self) -> str:
        return self.history.epoch

    def next_seq(self, symbol: str) -> int:
        return self.history.next_seq(symbol)

    def publish_upstream(self, status: str, text: str) -> None:
        self.fanout.deliver_upstream(status, text)

    def publish_refused(self, symbols: Sequence[str], message: str) -> None:
        self.fanout.deliver_refused(sorted(symbols), message)


class InMemoryBroker(_Numbering):
    """Embedded mode: record in the process's ring, then call the fan-out."""

    def __init__(self, history: InMemoryHistory, fanout: Fanout) -> None:
        self.history = history
        self.fanout = fanout
        self.fenced = asyncio.Event()  # never set: one process always leads

    def publish(self, update: Update) -> None:
        self.history.record(update)
        self.fanout.deliver(update)

    def forget_hub(self, channel: str) -> None:
        return None  # one process, one hub: nothing routed by channel

    def route_hub(self, channel: str, symbols: Iterable[str]) -> None:
        return None

    async def start(self) -> None:
        await self.history.start()

    async def aclose(self) -> None:
        await self.history.aclose()


class LayerFanout(Fanout, Protocol):
    """The scaled fan-out (realtime/feed/publishers.py ``LayerPublisher``)."""

    def forget_channel(self, channel: str) -> None: ...
    def route_channel(self, channel: str, symbols: Iterable[str]) -> None: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


class RedisBroker(_Numbering):
    """Scaled mode: write each batch to the Redis history, then publish it."""

    def __init__(
        self, history: RedisHistory, fanout: LayerFanout, fence: Fence | None = None
    ) -> None:
        self.history = history
        self.fanout: LayerFanout = fanout
        self.fence = fence
        self.fenced = asyncio.Event()
        self._queue: list[Update] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def publish(self, update: Update) -> None:
        if self.fenced.is_set():
            return  # a newer leader publishes now; this one is stepping down
        self._queue.append(update)
        self._wakeup.set()

    def forget_hub(self, channel: str) -> None:
        self.fanout.forget_channel(channel)

    def route_hub(self, channel: str, symbols: Iterable[str]) -> None:
        """The hub on ``channel`` leased ``symbols`` (the feed runner's routes)."""
        self.fanout.route_channel(channel, symbols)

    async def start(self) -> None:
        """Continue the history's sequence, replay its tail, then write and
        publish from a task."""
        self.history.fence = self.fence  # every write of this leadership
        await self.history.start()
        await self.fanout.start()
        await self._replay_tail()
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="broker-writer")

    async def _replay_tail(self) -> None:
        try:
            updates = await self.history.tail(REPLAY_TAIL)
        except (redis.RedisError, OSError) as exc:
            logger.warning("event=history_tail_failed error=%r", exc)
            return
        deliver = self.fanout.deliver
        for update in updates:
            deliver(update)
        logger.info("event=history_tail_replayed updates=%d", len(updates))

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._write_and_publish()

    async def _write_and_publish(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        if self.fenced.is_set():
            return
        try:
            await self.history.write(batch)
        except Fenced as exc:
            # Redis lost our lock in a failover and a standby took over: what
            # this stale leader would publish now could clash with the new
            # leader's numbers, so it publishes nothing and steps down.
            logger.warning("event=feed_fenced updates=%d error=%s", len(batch), exc)
            self._queue = []
            self.fenced.set()
            return
        except (redis.RedisError, OSError) as exc:
            # Those updates are not replayable; clients still get them live, and a
            # recovery over them finds the hole and falls back to a snapshot.
            logger.warning(
                "event=history_write_failed updates=%d error=%r", len(batch), exc
            )
        deliver = self.fanout.deliver
        for update in batch:
            deliver(update)

    async def aclose(self) -> None:
        """Stop the writer; what was queued is still written and published, in
        order, before the publisher closes."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
            await self._write_and_publish()
        await self.fanout.aclose()
        await self.history.aclose()
