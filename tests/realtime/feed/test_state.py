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


# --- issue 13: breaks fall back, quote-only prices, lp/ls from any frame, sizes ----


def tick(kind, ts, **fields):
    return Tick("AAPL", ts, kind, **fields)


def test_a_break_of_the_last_trade_falls_back_to_the_trade_before():
    state = merge_tick(None, trade(178.50, 100, ts=1), AT)
    state = merge_tick(state, trade(178.97, 500, ts=2), AT)
    state = merge_tick(state, tick("B", 3, last_price=178.97, last_size=500), AT)
    assert (state.last_price, state.last_size) == (178.50, 100)
    message = orjson.loads(encode_price_update(state))
    assert message["break"] == {"price": 178.97, "size": 500}
    assert message["last_price"] == 178.50
    # A later quote keeps the fallen-back trade, not the cancelled one.
    state = merge_tick(state, quote(178.60, 178.40, ts=4), AT)
    assert state.last_price == 178.50


def test_a_break_of_an_older_trade_keeps_the_last_one_and_only_one_is_removed():
    state = merge_tick(None, trade(10.0, 1, ts=1), AT)
    state = merge_tick(state, trade(10.0, 1, ts=2), AT)  # the same trade twice
    state = merge_tick(state, trade(11.0, 2, ts=3), AT)
    state = merge_tick(state, tick("B", 4, last_price=10.0, last_size=1), AT)
    assert (state.last_price, state.last_size) == (11.0, 2)
    state = merge_tick(state, tick("B", 5, last_price=11.0, last_size=2), AT)
    assert (state.last_price, state.last_size) == (10.0, 1)


def test_breaking_the_only_trade_shows_the_mid_price_never_the_cancelled_one():
    state = merge_tick(None, quote(10.02, 10.0, ts=1), AT)
    state = merge_tick(state, trade(10.5, 7, ts=2), AT)
    state = merge_tick(state, tick("B", 3, last_price=10.5, last_size=7), AT)
    assert state.last_price == pytest.approx(10.01) and state.price_source == "mid"
    assert state.last_size is None


def test_quote_only_symbol_shows_the_mid_price_and_says_so():
    state = merge_tick(None, quote(1.07865, 1.07856), AT)
    message = orjson.loads(encode_price_update(state))
    assert message["last_price"] == pytest.approx(1.078605)
    assert message["mid_price"] == message["last_price"]
    assert message["price_source"] == "mid" and message["last_size"] is None
    assert list(message)[:11] == [
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
    one_sided = merge_tick(None, tick("Q", 1, bid_price=5.0, bid_size=1), AT)
    assert one_sided.last_price == 5.0 and one_sided.mid_price is None
    entry = to_cache_entry(state)
    assert entry["price_source"] == "mid" and entry["mid_price"] == state.mid_price
    assert from_cache_entry(orjson.loads(orjson.dumps(entry))) == state


def test_lp_and_ls_are_taken_from_a_quote_that_carries_them():
    sample = tick(
        "Q",
        1,
        ask_price=152.46,
        ask_size=200,
        bid_price=152.31,
        bid_size=100,
        last_price=152.17,
        last_size=100,
    )
    state = merge_tick(None, sample, AT)
    assert (state.last_price, state.last_size) == (152.17, 100)
    assert state.price_source == "trade" and state.mid_price == pytest.approx(152.385)
    message = orjson.loads(encode_price_update(state))
    assert "price_source" not in message and message["mid_price"] == 152.385


def test_a_trade_without_size_never_pairs_with_the_old_size():
    state = merge_tick(None, trade(100.0, 300), AT)
    state = merge_tick(state, trade(101.0, None, ts=2), AT)
    assert (state.last_price, state.last_size) == (101.0, None)


def test_a_quote_side_without_size_does_not_keep_the_old_size():
    state = merge_tick(None, quote(10.02, 10.0), AT)
    state = merge_tick(state, tick("Q", 3, ask_price=10.05), AT)
    assert (state.ask_price, state.ask_size) == (10.05, None)
    assert (state.bid_price, state.bid_size) == (10.0, 300)
