"""Recovery's two guards on the tick path (docs/protocol.md, sequence numbers).

``SubscribeHolds``: while a subscribe reads the history or the snapshot, the live
updates of its symbols wait, so the consumer can replay, then release only what
came after the replay, with no gap and no duplicate. ``SequenceGuard`` (scaled
mode): a new feed leader re-publishes the history's tail, and Redis losing the
history restarts the sequence in a new epoch; the guard drops the replays a
process sent already and sends a fresh snapshot on a restart.

Both are state about positions in a symbol's sequence, not about who is
subscribed (the hub's registry) or how bytes reach a socket (realtime/fanout/
outbox.py), which is why they live here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import orjson

from realtime.fanout.outbox import Outbox
from realtime.feed.state import REPLAY_MARK

logger = logging.getLogger(__name__)

# Live updates held for one subscribe while it reads history (``SubscribeHolds``);
# past this the newest are dropped and the client sees a gap in ``seq``.
MAX_HELD_UPDATES = 5_000


def seq_of(text: str) -> int:
    """The ``seq`` of an encoded ``price_update`` (-1 without one), without
    decoding it: the feed writes ``"seq":N`` near the end (realtime/feed/state.py)."""
    at = text.rfind('"seq":')
    if at < 0:
        return -1
    start = at + 6
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return int(text[start:end]) if end > start else -1


class SubscribeHolds:
    """Live updates held per subscribe until its replay is queued.

    ``held`` maps a symbol to, per outbox whose subscribe is reading the history
    or the snapshot, the live updates held meanwhile (a list), then, once
    released, the seq already sent (an int) below which updates still in flight
    are dropped. Empty almost always; the hub's tick path reads it directly (it
    is never rebound) and asks ``admit`` only about an outbox found in it.
    """

    def __init__(self) -> None:
        self.held: dict[str, dict[Outbox, list[str] | int]] = {}

    def hold(self, outbox: Outbox, symbols: Iterable[str]) -> None:
        """Hold ``outbox``'s live updates of ``symbols`` until ``release``.

        Called before the hub's ``subscribe``, so every update delivered from then
        on is either held here or was published before the history/snapshot read
        that follows (realtime/feed/history.py).
        """
        for symbol in symbols:
            self.held.setdefault(symbol, {})[outbox] = []

    def drop(self, outbox: Outbox, symbol: str) -> list[str] | int | None:
        """Stop holding or filtering (nothing is sent)."""
        holders = self.held.get(symbol)
        if holders is None:
            return None
        held = holders.pop(outbox, None)
        if not holders:
            del self.held[symbol]
        return held

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
            for text in held:
                if after_seq is not None and seq_of(text) <= after_seq:
                    continue
                outbox.put(symbol, outbox.encode(text))
                sent += 1
        if sent or after_seq is None or outbox.closed:
            self.drop(outbox, symbol)  # what comes next is newer
        else:
            holders[outbox] = after_seq  # type: ignore[index]
        return sent

    def admit(
        self,
        holders: dict[Outbox, list[str] | int],
        outbox: Outbox,
        symbol: str,
        text: str,
    ) -> bool:
        """A live update for ``outbox``, one of ``symbol``'s ``holders``: True to
        deliver it now, False when it is held or a duplicate of the replay."""
        held = holders[outbox]
        if isinstance(held, list):
            if len(held) < MAX_HELD_UPDATES:
                held.append(text)
            return False
        if seq_of(text) <= held:
            return False  # replayed already, was still in flight
        self.drop(outbox, symbol)
        return True


class SequenceGuard:
    """Scaled mode: each delivered symbol's last seq, to drop a new leader's
    replays of what this process sent and to notice the sequence restarting in a
    new epoch (Redis lost the history) while clients are connected.

    On a restart each outbox of the symbol in ``by_symbol`` (the hub's registry)
    gets, through ``send_snapshot``, a fresh snapshot naming the new epoch.
    """

    def __init__(
        self,
        by_symbol: dict[str, set[Outbox]],
        send_snapshot: Callable[[Outbox, str, str], None],
    ) -> None:
        self.by_symbol = by_symbol
        self.send_snapshot = send_snapshot
        self._last_seq: dict[str, int] = {}
        self._restarting: dict[str, str] = {}

    def forget(self, symbol: str) -> None:
        """Nobody here receives ``symbol`` any more."""
        if self._last_seq:
            self._last_seq.pop(symbol, None)

    def check(self, symbol: str, text: str) -> bool:
        """Track the symbol's sequence; False for a replayed update to drop.

        A new feed leader re-publishes the last updates it finds in the history
        (realtime/feed/history.py, ``_replay_tail``): the ones this process sent
        already, or that came before it sent anything, are dropped; the ones a
        killed leader wrote but never published fill the gap, in order.
        """
        seq = seq_of(text)
        last = self._last_seq.get(symbol, -1)
        if (seq <= last or last < 0) and REPLAY_MARK in text:
            return False
        self._last_seq[symbol] = seq
        if symbol in self._restarting:
            self._restarting[symbol] = text  # the snapshot shows the newest state
        elif 0 <= seq < last:
            self._restarting[symbol] = text
            logger.warning(
                "event=epoch_restart_seen symbol=%s seq=%d previous=%d",
                symbol,
                seq,
                last,
            )
            task = asyncio.get_running_loop().create_task(self._epoch_restarted(symbol))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return True

    async def _epoch_restarted(self, symbol: str) -> None:
        """The sequence of ``symbol`` restarted (a new epoch): send its clients a
        fresh snapshot naming the new epoch (docs/protocol.md)."""
        from realtime.feed.history import get_history

        try:
            epoch = await get_history().aepoch()
        except Exception as exc:
            logger.warning("event=epoch_read_failed error=%r", exc)
            epoch = None
        text = self._restarting.pop(symbol, None)
        if text is None or epoch is None:
            return
        snapshot = (
            text[:-1] + ',"snapshot":true,"epoch":' + orjson.dumps(epoch).decode() + "}"
        )
        for outbox in list(self.by_symbol.get(symbol, ())):
            self.send_snapshot(outbox, symbol, snapshot)
