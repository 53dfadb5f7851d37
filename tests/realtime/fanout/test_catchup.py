"""A snapshot older than what the hub delivered is caught up from the history
(realtime/fanout/catchup.py), and the guard starts at a first client's snapshot
(``SequenceGuard.baseline``)."""

from __future__ import annotations

from types import SimpleNamespace

from realtime.events import Update
from realtime.fanout.catchup import stale_snapshot_pages
from realtime.fanout.recovery import SequenceGuard
from realtime.feed.history import InMemoryHistory


def recorded(history: InMemoryHistory, symbol: str, count: int) -> list[Update]:
    updates = []
    for _ in range(count):
        seq = history.next_seq(symbol)
        update = Update(symbol, seq, history.epoch, f'{{"seq":{seq}}}', 0, False)
        history.record(update)
        updates.append(update)
    return updates


async def test_a_stale_snapshot_gets_the_updates_the_hub_delivered_after_it():
    history = InMemoryHistory(size=100, seconds=600)
    guard = SequenceGuard()
    for update in recorded(history, "AAPL", 3):
        assert guard.check(update) is update  # delivered to the hub's clients
    pages = await stale_snapshot_pages(
        history=history,
        sequence=guard,
        snapshots={"AAPL": SimpleNamespace(seq=1)},  # the cache lags by two
        epoch=history.epoch,
    )
    assert [seq for seq, _ in pages["AAPL"].updates] == [2, 3]
    assert pages["AAPL"].last_seq == 3


async def test_a_current_snapshot_or_another_epoch_needs_no_catch_up():
    history = InMemoryHistory(size=100, seconds=600)
    guard = SequenceGuard()
    for update in recorded(history, "AAPL", 2):
        guard.check(update)
    for snapshots, epoch in [
        ({"AAPL": SimpleNamespace(seq=2)}, history.epoch),
        ({"AAPL": SimpleNamespace(seq=1)}, "other-epoch"),
        ({"MSFT": SimpleNamespace(seq=1)}, history.epoch),  # nothing delivered
    ]:
        assert (
            await stale_snapshot_pages(
                history=history, sequence=guard, snapshots=snapshots, epoch=epoch
            )
            == {}
        )
    # Embedded mode has no guard: its cache is written before the fan-out.
    assert (
        await stale_snapshot_pages(
            history=history,
            sequence=None,
            snapshots={"AAPL": SimpleNamespace(seq=1)},
            epoch=history.epoch,
        )
        == {}
    )


def test_the_guard_starts_at_the_first_snapshot_and_keeps_a_newer_position():
    guard = SequenceGuard()
    guard.baseline("AAPL", "e1", 5)
    assert guard.position("AAPL") == ("e1", 5)
    guard.baseline("AAPL", "e1", 3)  # an older snapshot changes nothing
    assert guard.position("AAPL") == ("e1", 5)
    # Without a gap filler the jump is delivered as is; the position follows.
    jump = Update("AAPL", 8, "e1", "{}", 0, False)
    assert guard.check(jump) is jump
    assert guard.position("AAPL") == ("e1", 8)


async def test_a_position_that_moves_during_the_read_is_read_again():
    """Another client's snapshot (or a delivery) moves the position while the
    history read awaits: the page returned reaches the new position."""
    history = InMemoryHistory(size=100, seconds=600)
    guard = SequenceGuard()
    updates = recorded(history, "AAPL", 2)
    guard.check(updates[-1])
    read = history.aread

    async def aread_and_move_on(symbol, after_seq, limit):
        page = await read(symbol, after_seq, limit)
        if page.last_seq == 2:  # meanwhile seq 3 is published and delivered
            guard.check(recorded(history, "AAPL", 1)[0])
        return page

    history.aread = aread_and_move_on
    pages = await stale_snapshot_pages(
        history=history,
        sequence=guard,
        snapshots={"AAPL": SimpleNamespace(seq=1)},
        epoch=history.epoch,
    )
    assert [seq for seq, _ in pages["AAPL"].updates] == [2, 3]
