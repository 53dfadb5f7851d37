"""BarFeed: the aggregator on the feed leader, publishing through a broker.

The feed runner (realtime/feed/runner.py) registers ``on_tick`` as a sync
callback of the leader's ``FeedService``, so bars are built once, where the
ticks are, and only while this process leads. Each bar a close or a revision
emits is numbered, recorded and handed to the fan-out by the bar broker
(``Backends.bar_broker``: the tick broker's classes over the bar history) under
its stream key ``AAPL@1m`` (realtime/bars/keys.py), so hubs deliver it, clients
recover it and ``GET /bars`` reads it like any update.

The feed hands every tick to ``on_tick`` as a sync callback
(``FeedService.register_callback(..., sync=True)``: no awaitable check per
tick), which only buffers it.
One timer task wakes at each second of the feed's clock plus ``close_delay``,
folds the buffered ticks in and closes every bar that ended, so a quiet symbol's
last bar closes on time and the per-trade cost stays a list append
(docs/benchmarks.md, "Bars").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import orjson

from realtime.bars.aggregate import Bar, BarAggregator
from realtime.bars.keys import stream_key
from realtime.bars.takeover import TakeoverSource, lookback_ms, rebuild
from realtime.events import Update
from realtime.upstream.protocol import Tick

if TYPE_CHECKING:
    from realtime.feed.broker import Broker

logger = logging.getLogger(__name__)


class BarFeed:
    def __init__(
        self,
        broker: Broker,
        intervals: dict[str, int],
        *,
        close_delay: float = 0.25,
        window: int = 2,
        clock: Callable[[], float] = time.time,
        takeover: TakeoverSource | None = None,
    ) -> None:
        """``clock``: the feed's clock in seconds (wall time: tick timestamps are
        exchange milliseconds since the epoch). ``takeover``: where a new leader
        finds the previous one's ticks and bars (realtime/bars/takeover.py; scaled
        mode), read once by ``start`` before the first live tick."""
        self.broker = broker
        self.aggregator = BarAggregator(intervals, window=window)
        self.close_delay = close_delay
        self.clock = clock
        self.published = 0
        self.takeover = takeover
        # The feed's sync tick callback: buffer the tick, the
        # timer folds it in (``close_due``). Bound once: no wrapper call per tick.
        self.on_tick: Callable[[Tick, object], None] = self.aggregator.add
        self._timers: list[asyncio.Task[None]] = []

    def flush(self) -> None:
        """Fold the buffered ticks in and publish what that closed or revised,
        without closing by the clock (tests; the timer calls ``close_due``)."""
        bars = self.aggregator.flush()
        if bars:
            self.publish(bars)

    def publish(self, bars: Iterable[Bar]) -> None:
        broker = self.broker
        epoch = broker.epoch
        now_ms = int(self.clock() * 1000)
        for bar in bars:
            key = stream_key(bar.symbol, bar.interval)
            seq = broker.next_seq(key)
            message = bar.to_message()
            message["seq"] = seq
            message["epoch"] = epoch
            text = orjson.dumps(message).decode()
            # tick_ts: when it was published, so the hubs' tick-to-send latency
            # stays a delivery latency.
            broker.publish(Update(key, seq, epoch, text, now_ms))
            self.published += 1

    def close_due(self) -> None:
        """Fold the buffered ticks in, then close every bar that ended by the
        feed's clock less ``close_delay``."""
        now_ms = int((self.clock() - self.close_delay) * 1000)
        bars = self.aggregator.close_due(now_ms)
        if bars:
            self.publish(bars)

    async def start(self) -> None:
        """Start the broker, continue the previous leader's open bars, then the
        timer. The feed runner calls it before the feed's first tick."""
        await self.broker.start()
        if self._timers:
            return
        if self.takeover is not None:
            await self._resume(self.takeover)
        # One timer at each chunk boundary (every 1 s, or 5 s when every
        # interval is a multiple of 5 s): it folds in and closes.
        period = self.aggregator.chunk_ms
        task = asyncio.create_task(self._timer(period), name="bars-timer")
        task.add_done_callback(self._timer_done)
        self._timers.append(task)
        logger.info(
            "event=bars_started intervals=%s",
            ",".join(name for name, _ in self.aggregator.intervals),
        )

    async def _resume(self, takeover: TakeoverSource) -> None:
        began = time.monotonic()
        now_ms = int(self.clock() * 1000)
        aggregator = self.aggregator
        intervals = dict(aggregator.intervals)
        since = now_ms - lookback_ms(intervals, aggregator.window, takeover.seconds)
        try:
            emitted = await takeover.emitted()
            tapes = await takeover.recent(since)
        except Exception as exc:  # no history: fresh bars, as before takeovers
            logger.warning("event=bars_resume_failed error=%r", exc)
            return
        try:
            bars = rebuild(aggregator, tapes, emitted, now_ms)
        except Exception:  # a bad history entry never keeps the feed from leading
            logger.exception("event=bars_resume_failed symbols=%d", len(tapes))
            return
        self.publish(bars)
        logger.info(
            "event=bars_resumed symbols=%d emitted=%d open=%d partial=%d ms=%d",
            len(tapes),
            len(bars),
            aggregator.open_bars(),
            sum(bar.partial for bar in (*bars, *aggregator.open_bar_list())),
            (time.monotonic() - began) * 1000,
        )

    async def _timer(self, ms: int) -> None:
        while True:
            now = self.clock() * 1000
            boundary = (now // ms + 1) * ms
            await asyncio.sleep((boundary - now) / 1000 + self.close_delay)
            try:
                self.close_due()
            except Exception:  # one bad close never stops the bars
                logger.exception("event=bars_close_failed interval_ms=%d", ms)

    def _timer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "event=bars_timer_crashed task=%s error=%r",
                task.get_name(),
                task.exception(),
            )

    async def aclose(self) -> None:
        """Stop the timers and the broker. Open bars are not emitted: a bar is
        emitted only once its window closed (docs/decisions/0005-bars.md)."""
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers = []
        await self.broker.aclose()
