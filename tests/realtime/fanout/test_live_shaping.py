"""Rate caps and filters over a real daphne fed by the simulator: on a symbol
ticking ~50/s a ``max_rate: 2`` client gets at most ~2 updates a second and never
lags the newest state by more than the cap's interval and one pacing tick, an
uncapped client beside it gets every update, a trades-only client no quote."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from realtime.fanout.shaping import PACE_TICK
from tests.live import async_wait_until, start_product
from tests.realtime.wsclient import next_update, open_client, request

pytestmark = pytest.mark.live

SYMBOL = "RATEA"
WINDOW = 10.0  # seconds of counting
MAX_RATE = 2
# On top of the cap's interval and the pacing tick: scheduling on a shared box.
SLACK = 1.0


@pytest.fixture(scope="module")
def ticking_product(migrated_sqlite):
    with start_product(
        "daphne-shaping",
        simulator={"rate": 50.0, "seed": 11},
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="shaping-test-key",
    ) as live:
        yield live


class Reader:
    """Every ``price_update`` one client receives, with when (monotonic)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = json.loads(await self.ws.recv())
            if message["type"] == "price_update":
                self.got.append((time.monotonic(), message))

    def live(self, until: float | None = None) -> list[tuple[float, dict]]:
        return [
            (t, m)
            for t, m in self.got
            if not m.get("snapshot") and (until is None or t <= until)
        ]

    def last_seq(self) -> int | None:
        live = self.live()
        return live[-1][1]["seq"] if live else None

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_capped_uncapped_and_trades_only_clients_of_one_fast_symbol(
    ticking_product,
):
    port = ticking_product.port
    plain = await open_client(port)
    capped = await open_client(port)
    trades = await open_client(port)
    readers: list[Reader] = []
    try:
        await request(
            plain, {"action": "subscribe", "symbols": [SYMBOL]}, "subscription"
        )
        await next_update(plain, SYMBOL)  # ticking, and cached for the snapshots
        listed = await request(
            capped,
            {"action": "subscribe", "symbols": [SYMBOL], "max_rate": MAX_RATE},
            "subscriptions",
        )
        assert listed["options"] == {SYMBOL: {"max_rate": MAX_RATE}}
        await request(
            trades,
            {"action": "subscribe", "symbols": [SYMBOL], "data_types": ["T"]},
            "subscriptions",
        )
        readers = [Reader(ws) for ws in (plain, capped, trades)]
        r_plain, r_capped, r_trades = readers
        start = time.monotonic()
        await asyncio.sleep(WINDOW)  # the counting window itself, not a sync
        end = time.monotonic()

        in_window = [(t, m) for t, m in r_capped.live(end) if t >= start]
        assert len(in_window) <= 22, f"{len(in_window)} capped updates in 10 s"
        assert len(in_window) >= 10, f"only {len(in_window)} capped updates"
        assert any(m.get("conflated") for _, m in in_window)
        plain_seqs = [m["seq"] for _, m in r_plain.live(end)]
        assert len(plain_seqs) > 5 * len(in_window)  # the cap mattered
        assert plain_seqs == list(range(plain_seqs[0], plain_seqs[-1] + 1))
        assert not any(m.get("conflated") for _, m in r_plain.live(end))

        # The capped client never lags the newest state by more than the cap's
        # interval and one pacing tick.
        bound = 1 / MAX_RATE + PACE_TICK + SLACK
        capped_live = r_capped.live()
        for seen_at, message in r_plain.live(end - bound):
            caught_up = next(
                (t for t, m in capped_live if m["seq"] >= message["seq"]), None
            )
            assert caught_up is not None and caught_up - seen_at <= bound, (
                f"seq {message['seq']}: capped client caught up "
                f"{None if caught_up is None else round(caught_up - seen_at, 3)} s "
                "later"
            )

        trade_kinds = {m["data_type"] for _, m in r_trades.live(end)}
        assert trade_kinds == {"T"}, trade_kinds
        assert {m["data_type"] for _, m in r_plain.live(end)} >= {"T", "Q"}
        snapshots = [m for _, m in r_trades.got if m.get("snapshot")]
        assert len(snapshots) == 1  # a snapshot whatever its kind

        # Ticks stop: the capped client ends on the very newest state.
        ticking_product.sim.run(lambda: ticking_product.sim.sim.set_rate(0))
        await async_wait_until(
            lambda: (
                r_plain.last_seq() is not None
                and r_capped.last_seq() == r_plain.last_seq()
            ),
            60,
            "the capped client to reach the newest state",
        )
    finally:
        for reader in readers:
            await reader.stop()
        ticking_product.sim.run(lambda: ticking_product.sim.sim.set_rate(50.0))
        for ws in (plain, capped, trades):
            await ws.close()


async def test_bad_values_get_errors_and_the_connection_stays(ticking_product):
    ws = await open_client(ticking_product.port)
    try:
        error = await request(
            ws,
            {"action": "subscribe", "symbols": [SYMBOL], "max_rate": "lots"},
            "error",
        )
        assert error["code"] == "invalid_max_rate" and "'lots'" in error["message"]
        error = await request(
            ws,
            {"action": "subscribe", "symbols": [SYMBOL], "data_types": ["TRADES"]},
            "error",
        )
        assert error["code"] == "unknown_data_type" and "'TRADES'" in error["message"]
        listed = await request(ws, {"action": "get_subscriptions"}, "subscriptions")
        assert listed == {"type": "subscriptions", "symbols": []}
        pong = await request(ws, {"action": "ping"}, "pong")
        assert pong["type"] == "pong"
    finally:
        await ws.close()
