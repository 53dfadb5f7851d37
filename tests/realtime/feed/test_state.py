"""Pure core: merging ticks into state, wire shapes, group names, symbols, limits."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.fanout.limits import RateLimiter
from realtime.feed.state import (
    encode_price_update,
    from_cache_entry,
    merge_tick,
    to_cache_entry,
)
from realtime.groups import price_group, symbol_from_group
from realtime.symbols import SYMBOL_RE, InvalidSymbol, normalize_symbol, parse_symbols
from realtime.upstream.protocol import Tick

AT = "2024-11-10T12:00:00.000+00:00"


def trade(price, size=100, ts=1):
    return Tick("AAPL", ts, "T", last_price=price, last_size=size)


def quote(ask, bid, ts=2):
    return Tick(
        "AAPL", ts, "Q", ask_price=ask, ask_size=500, bid_price=bid, bid_size=300
    )


def test_quote_keeps_last_trade_and_trade_keeps_last_quote():
    state = merge_tick(None, trade(189.45, 1000), AT)
    state = merge_tick(state, quote(189.46, 189.44), AT)
    assert (state.last_price, state.last_size) == (189.45, 1000)
    assert (state.ask_price, state.bid_price) == (189.46, 189.44)
    assert state.data_type == "Q"
    state = merge_tick(state, trade(189.50, 10, ts=3), AT)
    assert (state.last_price, state.ask_price, state.timestamp) == (189.50, 189.46, 3)


def test_break_keeps_last_valid_trade_and_carries_the_cancelled_one():
    state = merge_tick(None, trade(189.45), AT)
    state = merge_tick(
        state, Tick("AAPL", 5, "B", last_price=189.40, last_size=100), AT
    )
    assert state.last_price == 189.45
    message = orjson.loads(encode_price_update(state))
    assert message["data_type"] == "B"
    assert message["break"] == {"price": 189.40, "size": 100}
    after = merge_tick(state, quote(1.0, 0.9), AT)
    assert after.trade_break is None


def test_price_update_has_protocol_keys_in_order_with_nulls_for_unknown():
    state = merge_tick(None, trade(10.0, None), AT)
    message = orjson.loads(encode_price_update(state))
    assert list(message) == [
        "type",
        "symbol",
        "timestamp",
        "data_type",
        "last_price",
        "last_size",
        "ask_price",
        "ask_size",
        "bid_price",
        "bid_size",
        "cached_at",
    ]
    assert message["type"] == "price_update" and message["ask_price"] is None
    assert message["last_size"] is None
    snapshot = orjson.loads(encode_price_update(state, snapshot=True))
    assert snapshot["snapshot"] is True


def test_cache_entry_names_message_type_type_and_round_trips():
    state = merge_tick(merge_tick(None, trade(1.5), AT), quote(1.6, 1.4), AT)
    entry = to_cache_entry(state)
    assert entry["type"] == "Q" and "data_type" not in entry
    assert from_cache_entry(orjson.loads(orjson.dumps(entry))) == state


@pytest.mark.parametrize(
    "symbol", ["AAPL", "^GSPC", "BRK.B", "BRK-B", "EUR/USD", "ES=F", "BTCUSD"]
)
def test_group_names_are_valid_and_reversible(symbol):
    group = price_group(symbol)
    assert all(c.isalnum() or c in "-_." for c in group) and len(group) < 100
    assert symbol_from_group(group) == symbol


@given(st.from_regex(SYMBOL_RE, fullmatch=True))
def test_group_encoding_never_collides(symbol):
    assert symbol_from_group(price_group(symbol)) == symbol


def test_symbols_normalised_and_invalid_ones_named():
    assert normalize_symbol(" aapl ") == "AAPL"
    with pytest.raises(InvalidSymbol, match="'AA PL'"):
        normalize_symbol("AA PL")
    parsed = parse_symbols(["msft", "MSFT", "", "x" * 21, 3, "^gspc"])
    assert parsed.valid == ("MSFT", "^GSPC")
    assert parsed.invalid == ("", "x" * 21, 3)
    assert parse_symbols("tsla").valid == ("TSLA",)
    with pytest.raises(InvalidSymbol):
        parse_symbols({"a": 1})


def test_rate_limiter_allows_burst_then_refuses_then_flags_flooding():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, flood_after=2, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(3)] == [True, True, True]
    assert not limiter.allow() and not limiter.flooding
    limiter.allow()
    limiter.allow()
    assert limiter.flooding
    now[0] = 1.5  # refilled, new window
    assert limiter.allow() and not limiter.flooding
