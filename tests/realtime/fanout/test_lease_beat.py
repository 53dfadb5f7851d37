"""The lease loop answers wakes with a lease, and refreshes slots on its beat only.

Each connect wakes the loop (the client count changed). Refreshing every held
slot on every wake made a storm of N connects cost N refreshes of up to N slots,
queued ahead of the next lease, until the feed forgot the process (issue 26).
"""

from __future__ import annotations

import asyncio

from realtime.fanout.hub import FanoutHub
from tests.live import async_wait_until


class RecordingLayer:
    def __init__(self) -> None:
        self.leases: list[dict] = []

    async def send(self, channel: str, message: dict) -> None:
        if message["type"] == "feed.lease":
            self.leases.append(message)


class CountingSlots:
    def __init__(self) -> None:
        self.refreshes = 0

    async def acquire(self, principal: str, conn_id: str, cap: int) -> bool:
        return True

    async def release(self, principal: str, conn_id: str) -> None:
        return None

    async def refresh(self, held) -> None:
        list(held)
        self.refreshes += 1

    async def release_all(self) -> None:
        return None


async def test_wakes_send_leases_but_slots_refresh_once_per_beat():
    layer = RecordingLayer()
    slots = CountingSlots()
    hub = FanoutHub(layer, owner="beat-test", lease_ttl=300.0, slots=slots)
    done: list[asyncio.Task] = []
    hub.lease.start(done.append)
    try:
        for i in range(50):
            hub.lease.wake()
            await async_wait_until(
                lambda i=i: len(layer.leases) >= i + 1, 60, f"lease {i + 1}", 0.01
            )
        assert slots.refreshes == 1  # the first beat; the next is 100 s away
        assert not done, "the lease task ended"
    finally:
        await hub.lease.aclose()
