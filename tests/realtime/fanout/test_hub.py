"""FanoutHub and Outbox: every update for a client that reads, the latest per symbol
for one that does not (PROTOCOL.md, slow readers)."""

from __future__ import annotations

import time

from realtime.fanout.hub import Outbox, close_hub, get_hub
from tests.conftest import async_wait_until


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
            hub.deliver("AAA", f"AAA-{i}", 0)
            hub.deliver("BBB", f"BBB-{i}", 0)
        await async_wait_until(lambda: len(sent) == 10, 2, "all ten updates")
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
