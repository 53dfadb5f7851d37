"""Recovery's two guards on the tick path (docs/protocol.md, sequence numbers).

``SubscribeHolds``: while a subscribe reads the history or the snapshot, the live
updates of its symbols wait, so the consumer can replay, then release only what
came after the replay, with no gap and no duplicate. ``SequenceGuard`` (scaled
mode): a new feed leader re-publishes the history's tail, and Redis losing the
history restarts the sequence in a new epoch; the guard drops the replays a
process sent already and sends a fresh snapshot on a restart, and hands a forward
jump in ``seq`` (a lost layer message) to its ``GapFiller`` (gapfill.py).

Both are state about positions in a symbol's sequence, not about who is
subscribed (the hub's registry) or how bytes reach a socket (realtime/fanout/
outbox.py), which is why they live here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from realtime.events import Update
from realtime.fanout.gapfill import GapFiller
from realtime.fanout.outbox import Outbox
from realtime.feed.state import RECOVERED, add_fields

logger = logging.getLogger(__name__)

# Live updates held for one subscribe while it reads history (``SubscribeHolds``);
# past this the newest are dropped and the client sees a gap in ``seq``.
MAX_HELD_UPDATES = 5_000


class SubscribeHolds:
    """Live updates held per subscribe until its replay is queued.

    ``held`` maps a symbol to, per outbox whose subscribe is reading the history
    or the snapshot, the live updates held meanwhile (a list), then, once
    released, the seq already sent (an int) below which updates still in flight
    are dropped. Empty almost always; the hub's tick path reads it directly (it
    is never rebound) and asks ``admit`` only about an outbox found in it.
    """

    def __init__(self) -> None:
        self.held: dict[str, dict[Outbox, list[Update] | int]] = {}

    def hold(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        """Hold ``outbox``'s live updates of ``symbols`` until ``release``.

        Called before the hub's ``subscribe``, so every update delivered from then
        on is either held here or was published before the history/snapshot read
        that follows (realtime/feed/history.py).
        """
        for symbol in symbols:
            self.held.setdefault(symbol, {})[outbox] = []

    def drop(self, outbox: Outbox, symbol: str) -> list[Update] | int | None:
        """Stop holding or filtering (nothing is sent)."""
        holders = self.held.get(symbol)
        if holders is None:
            return None
        held = holders.pop(outbox, None)
        if not holders:
            del self.held[symbol]
        return held

    def new_epoch(self, symbol: str) -> None:
        """``symbol``'s sequence restarted in a new epoch: the seqs kept to drop
        in-flight duplicates of a replay belong to the old one, and would drop
        the new epoch's first updates (its snapshot among them)."""
        holders = self.held.get(symbol)
        if holders is None:
            return
        for outbox, held in list(holders.items()):
            if not isinstance(held, list):
                self.drop(outbox, symbol)

    def release(self, outbox: Outbox, symbol: str, after_seq: int | None) -> int:
        """Queue the held updates of ``symbol`` whose seq is above ``after_seq``
        (all of them for None) and deliver live again; returns how many (the
        caller wakes the outbox's writer when there are any).

        In scaled mode an update the history read already returned may still be
        on its way to this hub: until one above ``after_seq`` arrives, live
        updates at or below it are dropped as the duplicates they are.
        """
        holders = self.held.get(symbol)
        held = holders.get(outbox) if holders is not None else None
        if not isinstance(held, list):
            return 0
        sent = 0
        if not outbox.closed and symbol in outbox.symbols:
            for update in held:
                if after_seq is not None and update.seq <= after_seq:
                    continue
                outbox.put(symbol, outbox.encode(update.text))
                sent += 1
        if sent or after_seq is None or outbox.closed:
            self.drop(outbox, symbol)  # what comes next is newer
        else:
            holders[outbox] = after_seq  # type: ignore[index]
        return sent

    def admit(
        self,
        holders: dict[Outbox, list[Update] | int],
        outbox: Outbox,
        update: Update,
    ) -> bool:
        """A live update for ``outbox``, one of its symbol's ``holders``: True to
        deliver it now, False when it is held or a duplicate of the replay."""
        held = holders[outbox]
        if isinstance(held, list):
            if len(held) < MAX_HELD_UPDATES:
                held.append(update)
            return False
        if update.seq <= held:
            return False  # replayed already, was still in flight
        self.drop(outbox, update.symbol)
        return True


class SequenceGuard:
    """Scaled mode: each delivered symbol's last position (epoch, seq), to drop
    a new leader's replays of what this process sent and to notice the sequence
    restarting in a new epoch (Redis lost the history) while clients are
    connected; they then get the update as a fresh snapshot naming the new
    epoch (docs/protocol.md)."""

    def __init__(self, gaps: GapFiller | None = None) -> None:
        self._last: dict[str, tuple[str, int]] = {}
        # Fills a forward jump from the history (realtime/fanout/gapfill.py);
        # None: the client sees the gap (and may fill it over REST).
        self.gaps = gaps
        if gaps is not None:
            gaps.position = self._last.get

    def forget(self, symbol: str) -> None:
        """Nobody here receives ``symbol`` any more."""
        if self._last:
            self._last.pop(symbol, None)
        if self.gaps is not None:
            self.gaps.forget(symbol)

    def position(self, symbol: str) -> tuple[str, int] | None:
        """The (epoch, seq) this process last delivered of ``symbol``."""
        return self._last.get(symbol)

    def baseline(self, symbol: str, epoch: str, seq: int) -> None:
        """A client here was just sent ``symbol`` up to ``seq`` (its snapshot or
        replay) before this process delivered any live update of it: start the
        position there, so a jump past it is filled like any other.

        Without it the first live update is always taken as is: a process whose
        lease reached the feed after the snapshot's update was published (a new
        symbol, the other web process first) missed the updates in between and
        its clients saw the hole (found by tests/realtime/test_sentinel_failover.py).
        A position already held is newer knowledge and is kept."""
        self._last.setdefault(symbol, (epoch, seq))

    def check(self, update: Update) -> Update | None:
        """What to deliver for ``update``: None for a replay to drop (or an
        update kept for a gap fill, delivered later), else the update (a replay
        that fills a gap marked ``recovered``, the first of a new epoch made a
        snapshot).

        A new feed leader re-publishes the last updates it finds in the history
        (realtime/feed/broker.py): the ones this process sent already, or that
        came before it sent anything, are dropped; the ones a killed leader wrote
        but never published fill the gap, in order.
        """
        symbol = update.symbol
        last = self._last.get(symbol)
        gaps = self.gaps
        if gaps is not None and last is not None:
            if gaps.filling and gaps.holding(update):
                return None  # waits behind its symbol's gap fill
            if (
                update.seq > last[1] + 1
                and last[0] == update.epoch
                and gaps.start(update, last[1])
            ):
                return None  # delivered after the missing ones (gapfill.py)
        if update.replayed:
            if last is None or (last[0] == update.epoch and update.seq <= last[1]):
                return None
            update = update._replace(
                text=add_fields(update.text, RECOVERED), replayed=False
            )
        self._last[symbol] = (update.epoch, update.seq)
        if last is not None and last[0] != update.epoch:
            logger.warning(
                "event=epoch_restart_seen symbol=%s epoch=%s seq=%d previous=%s:%d",
                symbol,
                update.epoch,
                update.seq,
                last[0],
                last[1],
            )
            fields = {"snapshot": True, "epoch": update.epoch}
            return update._replace(text=add_fields(update.text, fields))
        return update
