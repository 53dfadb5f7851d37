"""FanoutHub and Outbox: every update for a client that reads, the latest per symbol
for one that does not (PROTOCOL.md, slow readers)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from realtime.events import Update
from realtime.fanout import health
from realtime.fanout.closecodes import CLOSE_STALLED
from realtime.fanout.daphne_io import text_frame
from realtime.fanout.health import FANOUT_HEALTHY, fanout_failure
from realtime.fanout.hub import Outbox
from realtime.fanout.hubs import close_hub, get_hub
from realtime.fanout.outbox import MAX_HELD_REPLIES
from realtime.fanout.recovery import SequenceGuard
from tests.factories import update
from tests.live import async_wait_until


def collecting_outbox(conn_id: str = "ws-test") -> tuple[Outbox, list[str]]:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    return Outbox(send_text, conn_id), sent


async def test_a_reading_client_gets_every_update_in_order():
    hub = get_hub()
    try:
        outbox, sent = collecting_outbox()
        hub.attach(outbox)
        await hub.subscribe(outbox, ["AAA", "BBB"])
        # Ticks of one upstream read arrive in one event-loop turn.
        for i in range(5):
            hub.deliver(update("AAA", f"AAA-{i}", seq=i))
            hub.deliver(update("BBB", f"BBB-{i}", seq=i))
        await async_wait_until(lambda: len(sent) == 10, 60, "all ten updates")
        assert sent == [f"{s}-{i}" for i in range(5) for s in ("AAA", "BBB")]
        assert outbox.conflated == 0
    finally:
        await close_hub()


async def test_a_stalled_client_keeps_the_latest_per_symbol_and_resumes_in_order():
    outbox, sent = collecting_outbox()
    outbox.put("AAA", "AAA-0")  # queued before the stall was noticed
    outbox.stalled_since = time.monotonic()
    for i in range(1, 4):
        outbox.put("AAA", f"AAA-{i}")
        outbox.put("BBB", f"BBB-{i}")
    assert outbox.conflated == 4  # two of AAA and two of BBB were replaced
    assert outbox.pending == {"AAA": "AAA-3", "BBB": "BBB-3"}
    outbox.resume()
    outbox.put("AAA", "AAA-4")  # after resuming: queued behind the conflated ones
    assert await outbox.flush() == 4
    assert sent == ["AAA-0", "AAA-3", "BBB-3", "AAA-4"]
    assert outbox.pending == {} and outbox.queue == []


async def test_unsubscribing_drops_what_waits_for_the_symbol():
    outbox, sent = collecting_outbox()
    outbox.put("AAA", "AAA-0")
    outbox.put("BBB", "BBB-0")
    outbox.put("AAA", "AAA-1")
    assert outbox.has_pending("AAA")
    outbox.discard("AAA")
    assert not outbox.has_pending("AAA")
    await outbox.flush()
    assert sent == ["BBB-0"]


class FakeTransport:
    """Twisted's write-buffer fields, holding ``held`` unsent bytes of frames."""

    def __init__(self, held: int) -> None:
        self.dataBuffer = text_frame("x" * max(0, held - 4))
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self._tempDataLen = 0


def backed_up_outbox(hub, closed: list[int]) -> tuple[Outbox, list[str]]:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    async def close(code: int) -> None:
        closed.append(code)

    protocol = SimpleNamespace(transport=FakeTransport(hub.writer.buffer_limit * 2))
    return Outbox(send_text, "ws-backed-up", close=close, protocol=protocol), sent


async def test_replies_to_a_client_that_does_not_read_are_bounded_then_4009():
    hub = get_hub()
    closed: list[int] = []
    try:
        outbox, sent = backed_up_outbox(hub, closed)
        hub.attach(outbox)
        hub.send_reply(outbox, '{"type":"pong"}')
        await async_wait_until(
            lambda: outbox.stalled_since is not None, 60, "the stall to be seen"
        )
        for _ in range(MAX_HELD_REPLIES + 1):
            hub.send_reply(outbox, '{"type":"pong"}')
        await async_wait_until(lambda: closed, 60, "the close")
        assert closed == [CLOSE_STALLED]
        assert sent == []  # nothing was written past the limit
        assert outbox.pending == {} and outbox.closed
        # Twisted's unsent frames were dropped so the close frame is next.
        assert outbox.transport.dataBuffer == b""
        assert outbox.protocol.closeHandshakeTimeout == hub.writer.close_grace
    finally:
        await close_hub()


async def test_snapshots_of_a_stalled_client_conflate_like_updates():
    outbox, sent = collecting_outbox()
    outbox.stalled_since = time.monotonic()
    outbox.put("AAA", "snapshot")
    outbox.put("AAA", "update")
    assert outbox.put_reply("ack")
    outbox.put_upstream("down")
    outbox.put_upstream("up")
    outbox.resume()
    await outbox.flush()
    assert sent == ["up", "update", "ack"]


async def test_a_crashed_hub_task_marks_the_process_unhealthy(monkeypatch):
    monkeypatch.setattr(health, "_failure", None)
    hub = get_hub()
    try:
        assert fanout_failure() is None
        # As if Twisted renamed a field the flush loop reads: the task crashes.
        broken = Outbox(
            collecting_outbox()[0].send_text,
            "ws-broken",
            protocol=SimpleNamespace(transport=object()),
        )
        hub.attach(broken)
        hub.send_reply(broken, "{}")
        reason = await async_wait_until(fanout_failure, 60, "the crash to be reported")
        assert "hub-flush" in reason and "AttributeError" in reason
        assert FANOUT_HEALTHY._value.get() == 0
    finally:
        FANOUT_HEALTHY.set(1)
        await close_hub()


async def test_takeover_replays_fill_a_gap_and_duplicates_are_dropped():
    """A feed leader killed between writing updates to the history and publishing
    them leaves a gap; the new leader re-publishes the history's tail marked as
    replayed: the hub passes on only what it never sent, in order."""
    hub = get_hub()
    try:
        # scaled mode: the hub follows each symbol's sequence
        hub.sequence = SequenceGuard()
        outbox, sent = collecting_outbox()
        hub.attach(outbox)
        await hub.subscribe(outbox, ["AAA", "NEW"])

        def numbered(symbol: str, seq: int, replayed: bool = False) -> Update:
            text = f'{{"type":"price_update","symbol":"{symbol}","seq":{seq}}}'
            return update(symbol, text, seq=seq, replayed=replayed)

        for seq in (1, 2, 3):
            hub.deliver(numbered("AAA", seq))
        for seq in (2, 3, 4, 5):  # the tail: 2-3 were sent, 4-5 never were
            hub.deliver(numbered("AAA", seq, replayed=True))
        hub.deliver(numbered("NEW", 7, replayed=True))  # nothing sent yet
        hub.deliver(numbered("AAA", 6))
        await async_wait_until(lambda: len(sent) == 6, 60, "six updates")
        seqs = [
            (t.split('"symbol":"')[1][:3], int(t.split('"seq":')[1][0])) for t in sent
        ]
        assert seqs == [("AAA", n) for n in range(1, 7)]
    finally:
        await close_hub()
