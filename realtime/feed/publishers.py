"""Publishers: how the feed hands each encoded update to the fan-out side.

The feed never imports the hub: embedded mode gets a ``LocalPublisher`` holding a
hub lookup resolved once (or injected by a test), scaled mode a ``LayerPublisher``
that sends over the channel layer. ``build_publisher`` picks one by mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from realtime.events import (
    HUBS_GROUP,
    PriceUpdateEvent,
    UpstreamRefusedEvent,
    UpstreamStatusEvent,
)
from realtime.groups import price_group

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, symbol: str, text: str, tick_ts: int) -> None: ...
    def publish_upstream(self, status: str, text: str) -> None: ...
    def publish_refused(self, symbols: Sequence[str], message: str) -> None: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


def _hub_lookup() -> Callable[[], Any]:
    from realtime.fanout.hub import current_hub

    return current_hub


class LocalPublisher:
    """Embedded mode: hand the update straight to this process's fan-out hub.

    ``current_hub`` returns the running loop's hub or None (no client yet); it is
    looked up once here, not imported per tick.
    """

    def __init__(self, current_hub: Callable[[], Any] | None = None) -> None:
        self._current_hub = current_hub or _hub_lookup()
        self._refusal_unsupported_logged = False

    def publish(self, symbol: str, text: str, tick_ts: int) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver(symbol, text, tick_ts)

    def publish_upstream(self, status: str, text: str) -> None:
        hub = self._current_hub()
        if hub is not None:
            hub.deliver_upstream(status, text)

    def publish_refused(self, symbols: Sequence[str], message: str) -> None:
        hub = self._current_hub()
        if hub is None:
            return
        deliver = getattr(hub, "deliver_refused", None)
        if deliver is None:
            if not self._refusal_unsupported_logged:
                logger.warning("event=hub_cannot_deliver_refusals")
                self._refusal_unsupported_logged = True
            return
        deliver(sorted(symbols), message)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class LayerPublisher:
    """Scaled mode: one ``group_send`` per update to the symbol's group.

    ``publish`` is called from the read loop and must not wait on Redis, so updates
    queue here in order. If Redis falls more than ``backlog_limit`` updates behind,
    the backlog is conflated to the latest update per symbol (each carries the full
    state): hubs then get fewer, newer updates instead of an unbounded queue.
    """

    def __init__(self, channel_layer: Any, backlog_limit: int = 10_000) -> None:
        self.channel_layer = channel_layer
        self.backlog_limit = backlog_limit
        self._queue: list[tuple[str, str, int]] = []
        self._upstream: UpstreamStatusEvent | None = None
        self._refused: list[UpstreamRefusedEvent] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def publish(self, symbol: str, text: str, tick_ts: int) -> None:
        self._queue.append((symbol, text, tick_ts))
        if len(self._queue) > self.backlog_limit:
            latest = {item[0]: item for item in self._queue}
            logger.warning(
                "event=publish_backlog_conflated updates=%d kept=%d",
                len(self._queue),
                len(latest),
            )
            self._queue = list(latest.values())
        self._wakeup.set()

    def publish_upstream(self, status: str, text: str) -> None:
        self._upstream = {"type": "hub.upstream", "status": status, "text": text}
        self._wakeup.set()

    def publish_refused(self, symbols: Sequence[str], message: str) -> None:
        if len(self._refused) < 100:  # refusals are rare; never an unbounded list
            self._refused.append(
                {"type": "hub.refused", "symbols": sorted(symbols), "message": message}
            )
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-publisher")

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
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
            for symbol, text, tick_ts in batch:
                event: PriceUpdateEvent = {
                    "type": "price.update",
                    "symbol": symbol,
                    "text": text,
                    "tick_ts": tick_ts,
                }
                try:
                    await self.channel_layer.group_send(price_group(symbol), event)
                except Exception as exc:  # Redis restarting: drop, next tick re-sends
                    logger.warning(
                        "event=publish_failed symbol=%s error=%r", symbol, exc
                    )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def build_publisher(mode: str, channel_layer: Any) -> Publisher:
    """``embedded`` -> this process's hub; ``scaled`` -> the channel layer."""
    if mode == "embedded":
        return LocalPublisher()
    return LayerPublisher(channel_layer)
