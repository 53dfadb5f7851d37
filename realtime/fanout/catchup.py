"""Catch-up of a stale snapshot: what this web process already delivered of a
symbol but the shared cache does not show yet (scaled mode).

A subscribe registers with the hub, then reads the snapshot from the tick cache
(realtime/fanout/consumers.py). In scaled mode the feed flushes the cache on its
own schedule, after the update went out on the layer, so the hub may already
have delivered updates newer than the cached state to its other clients. The
held live updates start after those, and the new client would see a hole
between its snapshot and its first live update (found by
tests/realtime/test_sentinel_failover.py: 200 clients subscribing at once). The
missing range is in the history (the broker writes before it publishes), so the
client gets it after the snapshot, marked ``recovered``, as a replay would send
it. One history read per subscribed symbol that is behind, at subscribe time
only; never on the tick path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from realtime.fanout.recovery import SequenceGuard
    from realtime.feed.history import History, HistoryPage

logger = logging.getLogger(__name__)


# Rounds of reads: a read awaits Redis, and meanwhile the hub may move on.
MAX_ROUNDS = 3


async def stale_snapshot_pages(
    *,
    history: History,
    sequence: SequenceGuard | None,
    snapshots: Mapping[str, Any],
    epoch: str | None,
) -> dict[str, HistoryPage]:
    """Per symbol whose snapshot (a cached state with ``seq``) is older than
    this process's position in ``epoch``: the history page after the snapshot's
    seq, when it holds every update up to that position. A symbol whose range
    is gone is left out: its client sees the gap as before and can fill it over
    REST (docs/protocol.md, "Gaps").

    The position is what the hub delivered or another client's snapshot
    (``SequenceGuard.baseline``), and it moves while a read awaits Redis, so
    this reads again until no position is past its page. The caller must not
    await between this and its ``release``: then nothing newer than the pages
    slips past the hold."""
    pages: dict[str, HistoryPage] = {}
    if sequence is None or epoch is None:
        return pages  # embedded mode: the cache is written before the fan-out
    given_up: set[str] = set()
    for _ in range(MAX_ROUNDS):
        behind = []
        for symbol, state in snapshots.items():
            position = sequence.position(symbol)
            have = pages[symbol].last_seq if symbol in pages else state.seq
            if (
                symbol not in given_up
                and position is not None
                and position[0] == epoch
                and position[1] > have
            ):
                behind.append((symbol, state.seq, position[1]))
        if not behind:
            break
        for symbol, seq, position in behind:
            try:
                page = await history.aread(symbol, seq, history.size)
            except Exception as exc:  # Redis failing over: the gap stays
                logger.warning(
                    "event=snapshot_catch_up_failed symbol=%s error=%r", symbol, exc
                )
                given_up.add(symbol)
                continue
            if page is None or not page.recovers(epoch, seq):
                logger.warning(
                    "event=snapshot_catch_up_unavailable symbol=%s seq=%d position=%d",
                    symbol,
                    seq,
                    position,
                )
                given_up.add(symbol)
                continue
            pages[symbol] = page
    return pages
