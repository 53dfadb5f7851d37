"""GapFiller: a web process fills a forward jump in a symbol's ``seq`` itself.

Scaled mode loses layer messages by design (a hub's channel at capacity, a Redis
restart or failover): the feed re-sends the latest state of every affected
symbol (realtime/feed/publishers.py), so no client keeps a stale price, but the
updates in between never reach the hub and each client would see a hole in
``seq``. Every one of them is in the shared history already (the broker writes a
batch to it before publishing it), so the hub that sees the jump reads the
missing range once, for all its clients of the symbol, and delivers it in order
before the newer update, marked ``recovered`` (docs/protocol.md, "Gaps").

Off the per-tick path: the guard asks ``holding`` (one dict truth test) per
update and calls ``start`` only on a jump. While a symbol's fill reads Redis, its
newer updates wait here (bounded) and follow the recovered ones. When the gap is
wider than ``max_gap``, or the history no longer holds the range (trimmed, a
new epoch, Redis down), the client sees the gap as before and can fill it over
REST (``/history?after_seq=``): the documented behaviour, counted in
``fmpsite_gap_fills_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from realtime import metrics
from realtime.events import Update

if TYPE_CHECKING:
    from realtime.feed.history import History

logger = logging.getLogger(__name__)

# Updates of one symbol held while its fill reads the history; past this the
# newest are dropped, which the next update shows as a new gap (filled again).
MAX_HELD_DURING_FILL = 5_000
# A history read that takes longer fails the fill (the gap is then left as is).
FILL_TIMEOUT = 5.0


class _Fill:
    """One symbol's fill in progress: the range to read and what waits for it."""

    __slots__ = ("after_seq", "epoch", "held")

    def __init__(self, update: Update, after_seq: int) -> None:
        self.epoch = update.epoch
        self.after_seq = after_seq
        self.held: list[Update] = [update]


class GapFiller:
    """Reads a symbol's missing updates from the history and hands them, then
    the updates held meanwhile, to ``deliver`` (the hub's own tick path).

    Recovered updates go back through ``deliver`` as ``replayed`` updates, so the
    hub's ``SequenceGuard`` marks them ``recovered`` and drops any a takeover
    replay delivered meanwhile: there is one place that decides what a client
    already has.
    """

    def __init__(
        self,
        history: History,
        deliver: Callable[[Update], None],
        *,
        max_gap: int,
    ) -> None:
        self.history = history
        self.deliver = deliver
        self.max_gap = max_gap
        # symbol -> its fill in progress; empty almost always (read per tick).
        self.filling: dict[str, _Fill] = {}
        # The (epoch, seq) the hub last delivered of a symbol: the guard that owns
        # this filler binds it to its own positions (``SequenceGuard``).
        self.position: Callable[[str], tuple[str, int] | None] = lambda symbol: None
        # After a fill, its newer update goes out even if a gap is left, instead
        # of starting the same fill again.
        self._passing: tuple[str, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def holding(self, update: Update) -> bool:
        """True when ``update`` waits behind its symbol's fill (it is kept)."""
        fill = self.filling.get(update.symbol)
        if fill is None:
            return False
        if len(fill.held) < MAX_HELD_DURING_FILL:
            fill.held.append(update)
        return True

    def start(self, update: Update, after_seq: int) -> bool:
        """``update`` came after ``after_seq`` with updates missing in between:
        True when a fill started (``update`` is kept and delivered after it),
        False to deliver ``update`` now, leaving the gap."""
        if self._passing == (update.symbol, update.seq):
            return False
        missing = update.seq - after_seq - 1
        if missing > self.max_gap:
            metrics.GAP_FILLS.labels("too_large").inc()
            logger.warning(
                "event=gap_not_filled symbol=%s after_seq=%d seq=%d reason=too_large",
                update.symbol,
                after_seq,
                update.seq,
            )
            return False
        fill = self.filling[update.symbol] = _Fill(update, after_seq)
        task = asyncio.get_running_loop().create_task(
            self._fill(update.symbol, fill, update.seq), name="hub-gap-fill"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def forget(self, symbol: str) -> None:
        """Nobody here receives ``symbol`` any more: its held updates go."""
        if self.filling:
            self.filling.pop(symbol, None)

    async def _fill(self, symbol: str, fill: _Fill, upto: int) -> None:
        missing = upto - fill.after_seq - 1
        recovered: list[Update] = []
        try:
            async with asyncio.timeout(FILL_TIMEOUT):
                page = await self.history.aread(symbol, fill.after_seq, missing)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis failing over: leave the gap
            logger.warning("event=gap_fill_failed symbol=%s error=%r", symbol, exc)
            page = None
        if page is not None and page.epoch == fill.epoch:
            expected = fill.after_seq + 1
            for seq, text in page.updates:
                if seq != expected or seq >= upto:
                    break
                recovered.append(Update(symbol, seq, fill.epoch, text, _ts(text), True))
                expected += 1
        if self.filling.get(symbol) is not fill:
            return  # unsubscribed meanwhile (or a newer fill replaced this one)
        del self.filling[symbol]
        outcome = "filled" if len(recovered) == missing else "unavailable"
        metrics.GAP_FILLS.labels(outcome).inc()
        logger.log(
            logging.INFO if outcome == "filled" else logging.WARNING,
            "event=gap_%s symbol=%s after_seq=%d seq=%d missing=%d recovered=%d",
            outcome,
            symbol,
            fill.after_seq,
            upto,
            missing,
            len(recovered),
        )
        deliver = self.deliver
        for item in recovered:
            deliver(item)
        # In order; a later one may start a fill again (a gap among the held
        # updates), and the rest then wait behind it as they would live. One a
        # takeover's replay delivered meanwhile is not sent twice.
        self._passing = (symbol, upto)
        try:
            for item in fill.held:
                if not item.replayed:
                    last = self.position(symbol)
                    if (
                        last is not None
                        and last[0] == item.epoch
                        and item.seq <= last[1]
                    ):
                        continue
                deliver(item)
        finally:
            self._passing = None

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.filling.clear()


def _ts(text: str) -> int:
    """The upstream timestamp (ms) inside an update text, for the latency metric."""
    try:
        return int(orjson.loads(text).get("timestamp") or 0)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0
