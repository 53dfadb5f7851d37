"""Bars over a real daphne fed by the simulator: one bar per active second per
symbol, in order, no duplicates; a reconnect with ``recover`` fills the gap."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets

from tests.live import start_product

pytestmark = pytest.mark.live

DEADLINE = 60


@pytest.fixture(scope="module")
def bars_product(migrated_sqlite):
    with start_product(
        "daphne-bars",
        simulator={"rate": 20.0, "seed": 7},
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="bars-test-key",
        REALTIME_BAR_INTERVALS="1s,1m",
    ) as live:
        yield live


async def messages_until(ws, done, kinds=("bar",)):
    """Messages of ``kinds`` until ``done(list)`` holds (60 s deadline)."""
    got = []
    async with asyncio.timeout(DEADLINE):
        while not done(got):
            message = json.loads(await ws.recv())
            if message["type"] in kinds:
                got.append(message)
    return got


async def reply_of(ws, kind):
    async with asyncio.timeout(DEADLINE):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


def closed_bars(bars, symbol):
    return [b for b in bars if b["symbol"] == symbol and not b.get("updated")]


def assert_one_per_second_in_order(bars):
    starts = [b["start"] for b in bars]
    assert starts == sorted(set(starts)), starts
    assert all(b["end"] - b["start"] == 1000 for b in bars)
    assert all(s % 1000 == 0 for s in starts)
    seqs = [b["seq"] for b in bars]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_bars_stream_in_order_and_recover_fills_a_reconnect(bars_product):
    url = bars_product.ws_url
    async with websockets.connect(url) as witness, websockets.connect(url) as plain:
        await plain.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"]}))
        await witness.send(
            json.dumps(
                {"action": "subscribe", "symbols": ["AAPL", "MSFT"], "bars": ["1s"]}
            )
        )
        ack = await reply_of(witness, "bar_subscription")
        assert ack["streams"] == ["AAPL@1s", "MSFT@1s"]

        async with websockets.connect(url) as client:
            await client.send(
                json.dumps({"action": "subscribe", "symbols": ["AAPL"], "bars": ["1s"]})
            )
            first = await messages_until(
                client, lambda got: len(closed_bars(got, "AAPL")) >= 3
            )
        last = first[-1]
        assert_one_per_second_in_order(closed_bars(first, "AAPL"))

        # While the client is away, the witness sees two more AAPL bars.
        seen = await messages_until(
            witness,
            lambda got: (
                len(
                    [
                        b
                        for b in got
                        if b["symbol"] == "AAPL" and b["seq"] > last["seq"] + 1
                    ]
                )
                >= 1
            ),
        )
        assert_one_per_second_in_order(closed_bars(seen, "AAPL"))
        assert_one_per_second_in_order(closed_bars(seen, "MSFT"))

        async with websockets.connect(url) as back:
            await back.send(
                json.dumps(
                    {
                        "action": "subscribe",
                        "symbols": ["AAPL"],
                        "bars": ["1s"],
                        "recover": {
                            "AAPL@1s": {"epoch": last["epoch"], "seq": last["seq"]}
                        },
                    }
                )
            )
            ack = await reply_of(back, "bar_subscription")
            assert ack["recovered"] == ["AAPL@1s"]
            after = await messages_until(
                back, lambda got: len(got) >= 1 and got[-1]["seq"] >= last["seq"] + 3
            )
        replayed = [b for b in after if b.get("recovered")]
        assert len(replayed) >= 2
        assert [b["seq"] for b in after] == list(
            range(last["seq"] + 1, last["seq"] + 1 + len(after))
        )
        assert_one_per_second_in_order(
            [b for b in [last, *after] if not b.get("updated")]
        )

        # A subscription without ``bars`` got no bar at all.
        await plain.send(json.dumps({"action": "ping"}))
        ticks = await messages_until(
            plain,
            lambda got: got[-1:] and got[-1]["type"] == "pong",
            kinds=("bar", "price_update", "pong"),
        )
        assert all(m["type"] != "bar" for m in ticks)


async def test_unknown_interval_is_an_error_and_unsubscribe_bars_keeps_ticks(
    bars_product,
):
    async with websockets.connect(bars_product.ws_url) as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "symbols": ["MSFT"], "bars": ["7x"]})
        )
        error = await reply_of(ws, "error")
        assert error["code"] == "unknown_interval" and "'7x'" in error["message"]
        await ws.send(
            json.dumps({"action": "subscribe", "symbols": ["MSFT"], "bars": ["1s"]})
        )
        await messages_until(ws, lambda got: len(got) >= 1)
        await ws.send(
            json.dumps({"action": "unsubscribe", "symbols": ["MSFT"], "bars": ["1s"]})
        )
        gone = await reply_of(ws, "bar_subscription")
        assert gone == {
            "type": "bar_subscription",
            "action": "unsubscribed",
            "streams": ["MSFT@1s"],
        }
        await ws.send(json.dumps({"action": "get_subscriptions"}))
        listed = await reply_of(ws, "subscriptions")
        assert listed["symbols"] == ["MSFT"]
        # Ticks go on; after the unsubscribe reply no bar arrives before 20 ticks.
        after = await messages_until(
            ws,
            lambda got: len([m for m in got if m["type"] == "price_update"]) >= 20,
            kinds=("bar", "price_update"),
        )
        assert all(m["type"] == "price_update" for m in after)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


async def test_rest_bars_agree_with_the_streamed_bars(bars_product):
    """``GET /bars`` and the stream read one history: up to the REST answer's
    ``last_seq``, the newest streamed version of each window is the REST bar."""
    async with websockets.connect(bars_product.ws_url) as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "symbols": ["AAPL"], "bars": ["1s"]})
        )
        await reply_of(ws, "bar_subscription")
        await ws.send(json.dumps({"action": "get_subscriptions"}))
        listed = await reply_of(ws, "subscriptions")
        assert listed == {
            "type": "subscriptions",
            "symbols": ["AAPL"],
            "bars": ["AAPL@1s"],
        }
        streamed = await messages_until(ws, lambda got: len(got) >= 4)
        body = await asyncio.to_thread(
            get_json, f"{bars_product.url}/api/v2/realtime/bars/AAPL?interval=1s"
        )
        last_seq = body["last_seq"]
        if streamed[-1]["seq"] < last_seq:  # the stream catches up to the answer
            streamed += await messages_until(
                ws, lambda got: bool(got) and got[-1]["seq"] >= last_seq
            )
    newest = {}
    for bar in sorted(streamed, key=lambda b: b["seq"]):
        if bar["seq"] <= last_seq:
            newest[bar["start"]] = bar
    rest = {bar["start"]: bar for bar in body["bars"]}
    first = min(newest)
    assert {s for s in rest if s >= first} == set(newest)
    for start, bar in newest.items():
        assert rest[start] == bar, start
    assert all(bar["epoch"] == body["epoch"] for bar in newest.values())


@pytest.fixture(scope="module")
def late_product(migrated_sqlite):
    with start_product(
        "daphne-bars-late",
        simulator={
            "rate": 40.0,
            "seed": 11,
            "late_trade_probability": 0.2,
            "break_probability": 0.0,  # revisions here are late trades only
        },
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="bars-late-key",
        REALTIME_BAR_INTERVALS="1s",
    ) as live:
        yield live


async def test_late_trades_from_the_simulator_revise_streamed_bars(late_product):
    """Late prints (simulator option) re-send a bar already streamed, marked
    ``updated``, and ``GET /bars`` answers the revised version."""
    async with websockets.connect(late_product.ws_url) as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "symbols": ["AAPL"], "bars": ["1s"]})
        )
        await reply_of(ws, "bar_subscription")

        def revised_one(got):
            firsts = {b["start"] for b in got if not b.get("updated")}
            return any(b.get("updated") and b["start"] in firsts for b in got)

        bars = await messages_until(ws, revised_one)
        body = await asyncio.to_thread(
            get_json, f"{late_product.url}/api/v2/realtime/bars/AAPL?interval=1s"
        )
    seen = {}
    for bar in bars:
        start = bar["start"]
        if bar.get("updated"):
            if start in seen:
                assert bar["seq"] > seen[start]["seq"]
                assert bar["trades"] >= seen[start]["trades"] + 1
        else:
            assert start not in seen, "a window's first bar came twice"
        seen[start] = bar
    revised = [b for b in bars if b.get("updated") and b["start"] in seen]
    rest = {b["start"]: b for b in body["bars"]}
    newest = revised[-1]
    if body["last_seq"] >= newest["seq"]:
        assert rest[newest["start"]]["trades"] >= newest["trades"]
        assert rest[newest["start"]].get("updated") is True
