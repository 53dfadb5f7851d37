"""Bars across a feed takeover in scaled mode (issue 24): the leader is SIGKILLed
in the middle of a 5 s bar; the standby rebuilds the open bars from the tick
history and continues them. The client, subscribed to the trades and the bars,
gets every window's bar once (or a later ``updated`` revision of the same
start), with consecutive seqs per bar stream, and each bar's volume and trade
count are those of the trades the client saw in its window."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
import websockets

from tests.live import REDIS_URL, start_scaled, stop_scaled, wait_until
from tests.realtime.bars.test_live_bars import reply_of

pytestmark = pytest.mark.redis

DEADLINE = 60
SYMBOL = "TKOV"
INTERVALS = {"1s": 1_000, "5s": 5_000}


@pytest.fixture
def takeover_stack(migrated_sqlite, redis_prefix):
    stack = start_scaled(
        migrated_sqlite,
        redis_prefix,
        workers=2,
        webs=1,
        # No breaks and no late prints: the expected volume is a plain sum.
        simulator={"break_probability": 0.0},
        REALTIME_BAR_INTERVALS="1s,5s",
    )
    yield stack
    stop_scaled(stack)


class Tape:
    """Everything the client received, trades (by seq, once) and bars."""

    def __init__(self) -> None:
        self.trades: dict[int, dict] = {}
        self.bars: list[dict] = []

    async def read_until(self, ws, done) -> None:
        async with asyncio.timeout(DEADLINE):
            while not done():
                message = json.loads(await ws.recv())
                if message["type"] == "bar":
                    self.bars.append(message)
                elif (
                    message["type"] == "price_update"
                    and message.get("data_type") == "T"
                    and not message.get("snapshot")
                ):
                    self.trades.setdefault(message["seq"], message)

    def five_second_starts(self) -> list[int]:
        return [b["start"] for b in self.bars if b["interval"] == "5s"]


def leader_worker(stack):
    client = redis.Redis.from_url(REDIS_URL)
    leader = client.get(f"{stack['prefix']}:feed:leader").decode()
    return next(w for w in stack["workers"] if f":{w.proc.pid}:" in leader)


async def test_a_leader_killed_mid_bar_loses_no_bar_and_duplicates_none(
    takeover_stack,
):
    stack, sim = takeover_stack, takeover_stack["sim"]
    tape = Tape()
    url = f"ws://127.0.0.1:{stack['ports'][0]}/api/v2/realtime/ws/prices"
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {"action": "subscribe", "symbols": [SYMBOL], "bars": list(INTERVALS)}
            )
        )
        await reply_of(ws, "bar_subscription")
        # One whole 5 s bar first; then the first 1 s bar of a new 5 s window:
        # the kill falls about 1.3 s into that window, its bar open.
        await tape.read_until(ws, lambda: len(tape.five_second_starts()) >= 1)
        await tape.read_until(
            ws,
            lambda: any(
                b["interval"] == "1s"
                and b["start"] % 5_000 == 0
                and b["start"] > tape.five_second_starts()[0]
                for b in tape.bars
            ),
        )
        killed_window = max(
            b["start"] for b in tape.bars if b["interval"] == "1s"
        )  # the 5 s window now open
        logins = sim.run(lambda: sim.sim.logins)
        seen_before_kill = max(tape.trades)
        leader_worker(stack).kill()  # SIGKILL: its open bars die with it
        await asyncio.to_thread(
            wait_until,
            lambda: sim.run(lambda: sim.sim.logins) > logins,
            DEADLINE,
            "the standby to log in upstream",
        )
        # Two whole 5 s windows after the killed one.
        await tape.read_until(
            ws,
            lambda: max(tape.five_second_starts()) >= killed_window + 10_000,
        )

    trades = sorted(tape.trades.values(), key=lambda t: t["seq"])
    first_ts = trades[0]["timestamp"]
    for name, ms in INTERVALS.items():
        bars = [b for b in tape.bars if b["interval"] == name]
        seqs = [b["seq"] for b in bars]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (name, seqs)
        seen: set[int] = set()
        final: dict[int, dict] = {}
        for bar in bars:
            # Once per window; a revision only after the window's first bar.
            assert bar.get("updated", False) == (bar["start"] in seen), bar
            assert not bar.get("partial"), bar
            seen.add(bar["start"])
            final[bar["start"]] = bar
        last_start = max(final)
        # Every window the client saw whole (after its first trade, up to the
        # newest bar) has a bar whose counts are the trades it saw in it.
        expected: dict[int, list[dict]] = {}
        for trade in trades:
            start = trade["timestamp"] // ms * ms
            if first_ts < start <= last_start:
                expected.setdefault(start, []).append(trade)
        windows = {s for s in final if first_ts < s <= last_start}
        assert windows == set(expected), (name, sorted(windows ^ set(expected)))
        for start, inside in expected.items():
            bar = final[start]
            assert bar["trades"] == len(inside), (name, start, bar)
            assert bar["volume"] == pytest.approx(
                sum(t["last_size"] for t in inside)
            ), (name, start, bar)
    # The killed leader's open 5 s bar held trades from before the kill, and
    # its bar (checked above) counts them: it was rebuilt, not started afresh.
    assert killed_window in final
    assert any(
        killed_window <= t["timestamp"] < killed_window + 5_000
        for t in trades
        if t["seq"] <= seen_before_kill
    )
