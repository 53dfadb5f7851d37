"""Per-subscription rate caps and filters at the hub (realtime/fanout/shaping.py):
a capped client gets at most its rate, always ending on the newest state, marked
when something was skipped; an uncapped client beside it gets every update; a
filtered client only its kinds; a bad cap or filter is refused by name."""

from __future__ import annotations

import time

import orjson
import pytest

from realtime.fanout.hub import Outbox
from realtime.fanout.hubs import close_hub, get_hub
from realtime.fanout.shaping import (
    MIN_MAX_RATE,
    PACE_TICK,
    ShapingError,
    ShapingRequest,
    data_type_of,
    effective_rate,
    parse_shaping,
)
from tests.factories import update
from tests.live import async_wait_until


def collecting_outbox(conn_id: str) -> tuple[Outbox, list[str]]:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    return Outbox(send_text, conn_id), sent


def tick_text(symbol: str, seq: int, kind: str = "T") -> str:
    return orjson.dumps(
        {
            "type": "price_update",
            "symbol": symbol,
            "timestamp": 1,
            "data_type": kind,
            "last_price": float(seq),
            "seq": seq,
        }
    ).decode()


# --- parsing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({}, ShapingRequest()),
        ({"max_rate": 4}, ShapingRequest(4, None)),
        ({"max_rate": 0.5}, ShapingRequest(0.5, None)),
        ({"max_rate": 0}, ShapingRequest(0, None)),
        ({"data_types": ["T"]}, ShapingRequest(None, frozenset({"T"}))),
        ({"data_types": "Q"}, ShapingRequest(None, frozenset({"Q"}))),
        ({"data_types": ["T", "B", "T"]}, ShapingRequest(None, frozenset("TB"))),
    ],
)
def test_valid_caps_and_filters_parse(content, expected):
    assert parse_shaping(content, ceiling=0) == expected


@pytest.mark.parametrize(
    ("content", "code", "names"),
    [
        ({"max_rate": "4"}, "invalid_max_rate", "'4'"),
        ({"max_rate": True}, "invalid_max_rate", "True"),
        ({"max_rate": -1}, "invalid_max_rate", "-1"),
        ({"max_rate": None}, "invalid_max_rate", "None"),
        ({"max_rate": MIN_MAX_RATE / 10}, "invalid_max_rate", "minimum"),
        ({"max_rate": 11}, "invalid_max_rate", "maximum of 10"),
        ({"max_rate": 0}, "invalid_max_rate", "at most 10"),
        ({"data_types": ["X"]}, "unknown_data_type", "'X'"),
        ({"data_types": ["T", "trade"]}, "unknown_data_type", "'trade'"),
        ({"data_types": []}, "unknown_data_type", "non-empty"),
        ({"data_types": [1]}, "unknown_data_type", "1"),
        ({"data_types": {"T": 1}}, "unknown_data_type", "non-empty list"),
    ],
)
def test_bad_caps_and_filters_are_refused_by_name(content, code, names):
    with pytest.raises(ShapingError) as error:
        parse_shaping(content, ceiling=10)
    assert error.value.code == code
    assert names in str(error.value)


def test_the_ceiling_caps_the_default_too():
    assert effective_rate(None, default=0, ceiling=0) == 0
    assert effective_rate(None, default=3, ceiling=0) == 3
    assert effective_rate(None, default=0, ceiling=5) == 5
    assert effective_rate(None, default=8, ceiling=5) == 5
    assert effective_rate(2, default=8, ceiling=5) == 2


def test_the_kind_is_read_from_the_encoded_update():
    assert data_type_of(tick_text("AAA", 1, "Q")) == "Q"
    assert data_type_of('{"type":"bar"}') == ""


# --- the hub ------------------------------------------------------------------------
async def test_a_capped_client_gets_the_newest_state_marked_and_an_uncapped_all():
    hub = get_hub()
    try:
        capped, capped_sent = collecting_outbox("ws-capped")
        plain, plain_sent = collecting_outbox("ws-plain")
        for outbox in (capped, plain):
            hub.attach(outbox)
            await hub.subscribe(outbox, ["AAA"])
        hub.shaper.set(capped, ["AAA"], max_rate=2, data_types=None, replace_types=True)
        last_tick = time.monotonic()
        for seq in range(1, 51):  # 50 ticks well within the cap's half second
            hub.deliver(update("AAA", tick_text("AAA", seq), seq=seq))
        await async_wait_until(lambda: len(plain_sent) == 50, 60, "every update")
        await async_wait_until(lambda: len(capped_sent) == 2, 60, "the newest state")
        received_at = time.monotonic()
        first, newest = (orjson.loads(t) for t in capped_sent)
        assert first["seq"] == 1 and "conflated" not in first
        assert newest["seq"] == 50 and newest["conflated"] is True
        # Held no longer than the cap's interval and one pacing tick (1 s slack
        # for a shared machine's scheduling).
        assert received_at - last_tick <= 1 / 2 + PACE_TICK + 1.0
        assert [orjson.loads(t)["seq"] for t in plain_sent] == list(range(1, 51))
        assert all("conflated" not in t for t in plain_sent)
        assert capped.pending == {}
    finally:
        await close_hub()


async def test_one_waiting_update_goes_out_unmarked():
    hub = get_hub()
    try:
        capped, sent = collecting_outbox("ws-capped")
        hub.attach(capped)
        await hub.subscribe(capped, ["AAA"])
        hub.shaper.set(capped, ["AAA"], max_rate=1, data_types=None, replace_types=True)
        hub.deliver(update("AAA", tick_text("AAA", 1), seq=1))
        hub.deliver(update("AAA", tick_text("AAA", 2), seq=2))  # waits, alone
        await async_wait_until(lambda: len(sent) == 2, 60, "the waiting update")
        assert [orjson.loads(t) for t in sent] == [
            orjson.loads(tick_text("AAA", 1)),
            orjson.loads(tick_text("AAA", 2)),
        ]
    finally:
        await close_hub()


async def test_a_filtered_client_gets_only_its_kinds():
    hub = get_hub()
    try:
        trades, trades_sent = collecting_outbox("ws-trades")
        quotes, quotes_sent = collecting_outbox("ws-quotes")
        for outbox, kinds in ((trades, "T"), (quotes, "Q")):
            hub.attach(outbox)
            await hub.subscribe(outbox, ["AAA"])
            hub.shaper.set(
                outbox,
                ["AAA"],
                max_rate=None,
                data_types=frozenset(kinds),
                replace_types=True,
            )
        kinds = "TQQTBQT"
        for seq, kind in enumerate(kinds, 1):
            hub.deliver(update("AAA", tick_text("AAA", seq, kind), seq=seq))
        await async_wait_until(lambda: len(trades_sent) == 3, 60, "the trades")
        await async_wait_until(lambda: len(quotes_sent) == 3, 60, "the quotes")
        assert [orjson.loads(t)["seq"] for t in trades_sent] == [1, 4, 7]
        assert [orjson.loads(t)["seq"] for t in quotes_sent] == [2, 3, 6]
    finally:
        await close_hub()


async def test_lifting_a_cap_sends_the_waiting_update_before_newer_ones():
    hub = get_hub()
    try:
        capped, sent = collecting_outbox("ws-capped")
        hub.attach(capped)
        await hub.subscribe(capped, ["AAA"])
        hub.shaper.set(
            capped, ["AAA"], max_rate=0.1, data_types=None, replace_types=True
        )
        hub.deliver(update("AAA", tick_text("AAA", 1), seq=1))
        hub.deliver(update("AAA", tick_text("AAA", 2), seq=2))  # waits 10 s
        hub.shaper.set(capped, ["AAA"], max_rate=0, data_types=None, replace_types=True)
        assert hub.shaper.by_symbol == {}  # back on the plain path
        hub.deliver(update("AAA", tick_text("AAA", 3), seq=3))
        await async_wait_until(lambda: len(sent) == 3, 60, "all three")
        assert [orjson.loads(t)["seq"] for t in sent] == [1, 2, 3]
    finally:
        await close_hub()


async def test_unsubscribing_forgets_the_cap_and_what_waits():
    hub = get_hub()
    try:
        capped, sent = collecting_outbox("ws-capped")
        hub.attach(capped)
        await hub.subscribe(capped, ["AAA"])
        hub.shaper.set(capped, ["AAA"], max_rate=1, data_types=None, replace_types=True)
        hub.deliver(update("AAA", tick_text("AAA", 1), seq=1))
        await async_wait_until(lambda: len(sent) == 1, 60, "the first update")
        hub.deliver(update("AAA", tick_text("AAA", 2), seq=2))
        assert "AAA" in capped.pending  # waiting for the cap
        await hub.unsubscribe(capped, ["AAA"])
        assert hub.shaper.by_symbol == {} and capped.pending == {}
        # The pacing entry still due finds nothing and sends nothing.
        hub.shaper._release(capped, "AAA", time.monotonic())
        assert capped.queue == [] and len(sent) == 1
    finally:
        await close_hub()
