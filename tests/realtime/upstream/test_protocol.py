"""FMP frames <-> values: every sample of FMP_UPSTREAM.md, the builders, fuzzing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.upstream import protocol
from realtime.upstream.protocol import (
    ClientFrame,
    Heartbeat,
    LoginResult,
    ParseError,
    SubscriptionAck,
    Tick,
    UpstreamError,
    normalize_timestamp,
    parse_frame,
)

NOW = 1_747_473_420_123  # receive time used as the fallback


def one(raw: str | bytes) -> object:
    events = parse_frame(raw, now_ms=NOW)
    assert len(events) == 1, events
    return events[0]


# --- data frames: the documented samples, verbatim -----------------------------


def test_stock_sample_has_nanosecond_timestamp_and_upper_case_symbol():
    raw = (
        '{"s": "spot", "t": 1645216790788174600, "type": "Q", "ap": 152.46, '
        '"as": 200, "bp": 152.31, "bs": 100, "lp": 152.17, "ls": 100}'
    )
    assert one(raw) == Tick(
        symbol="SPOT",
        timestamp=1645216790788,
        kind="Q",
        last_price=152.17,
        last_size=100,
        ask_price=152.46,
        ask_size=200,
        bid_price=152.31,
        bid_size=100,
    )


def test_crypto_sample_with_20_digit_timestamp_maps_to_a_plausible_date():
    raw = (
        '{"s": "btcusd", "t": 16487238632060000000, "e": "binance", "type": "Q", '
        '"bs": 0.00689248, "bp": 47244.8, "as": 1.72784126, "ap": 47244.9}'
    )
    tick = one(raw)
    assert tick == Tick(
        symbol="BTCUSD",
        timestamp=1648723863206,  # 2022-03-31
        kind="Q",
        ask_price=47244.9,
        ask_size=1.72784126,
        bid_price=47244.8,
        bid_size=0.00689248,
        exchange="binance",
    )


def test_forex_sample_has_millisecond_timestamp_and_integral_sizes_stay_int():
    raw = (
        '{"s": "eurusd", "t": 1701958248213, "type": "Q", "ap": 1.07865, '
        '"as": 1000000, "bp": 1.07856, "bs": 1000000}'
    )
    tick = one(raw)
    assert tick == Tick(
        symbol="EURUSD",
        timestamp=1701958248213,
        kind="Q",
        ask_price=1.07865,
        ask_size=1000000,
        bid_price=1.07856,
        bid_size=1000000,
    )
    assert isinstance(tick.ask_size, int) and isinstance(tick.ask_price, float)


def test_trade_and_break_ticks_carry_last_price_and_size():
    trade = one('{"s":"aapl","t":1701958248213,"type":"T","lp":190,"ls":100.0}')
    assert trade == Tick("AAPL", 1701958248213, "T", last_price=190.0, last_size=100)
    assert isinstance(trade.last_price, float) and isinstance(trade.last_size, int)
    brk = one('{"s":"aapl","t":1701958248213,"type":"B","lp":189.5,"ls":200}')
    assert brk == Tick("AAPL", 1701958248213, "B", last_price=189.5, last_size=200)


def test_standard_socket_quote_object_is_a_trade_like_tick_without_volume():
    raw = (
        '{"symbol": "AAPL", "name": "Apple Inc.", "price": 198.42, '
        '"changesPercentage": 1.23, "change": 2.41, "dayLow": 195.10, '
        '"dayHigh": 199.85, "open": 196.50, "previousClose": 196.01, '
        '"volume": 12345678, "timestamp": 1747473420}'
    )
    assert one(raw) == Tick(
        symbol="AAPL", timestamp=1747473420000, kind="T", last_price=198.42
    )


def test_json_array_of_ticks_yields_every_tick_in_order():
    raw = json.dumps(
        [
            {"s": "aapl", "t": 1701958248213, "type": "T", "lp": 1.5, "ls": 100},
            {"s": "msft", "t": 1701958248214, "type": "Q", "ap": 2.5, "bp": 2.4},
        ]
    )
    events = parse_frame(raw, now_ms=NOW)
    assert [(e.symbol, e.kind) for e in events] == [("AAPL", "T"), ("MSFT", "Q")]


def test_bytes_frames_parse_like_text():
    assert one(b'{"s":"ibm","t":1701958248213,"type":"T","lp":1,"ls":1}').symbol == (
        "IBM"
    )


# --- control frames ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"event": "login", "status": 200, "message": "Authenticated"}',
        '{"event": "login", "data": {"status": 200, "message": "Authenticated"}}',
    ],
)
def test_both_login_success_shapes(raw):
    assert one(raw) == LoginResult(ok=True, status=200, message="Authenticated")


@pytest.mark.parametrize(
    "message",
    ["Unauthorized", "Connected from another location"],
)
def test_login_refusals_are_not_ok(message):
    raw = json.dumps({"event": "login", "status": 401, "message": message})
    assert one(raw) == LoginResult(ok=False, status=401, message=message)


def test_login_refusal_nested_in_data_and_without_status():
    nested = '{"event":"login","data":{"status":401,"message":"Unauthorized"}}'
    assert one(nested) == LoginResult(False, 401, "Unauthorized")
    bare = '{"event":"login","message":"Maximum number of connections reached"}'
    assert one(bare) == LoginResult(
        False, None, "Maximum number of connections reached"
    )


def test_subscribe_acks_and_refusals():
    assert one('{"event": "subscribe", "status": 200, "message": "ok"}') == (
        SubscriptionAck("subscribe", True, 200, "ok")
    )
    assert one('{"event":"unsubscribe","data":{"status":403,"message":"no"}}') == (
        SubscriptionAck("unsubscribe", False, 403, "no")
    )
    assert one('{"event":"subscribe","message":"you are not authorized"}') == (
        SubscriptionAck("subscribe", False, None, "you are not authorized")
    )


def test_heartbeat():
    assert one('{"event": "heartbeat", "timestamp": 1747473420000}') == Heartbeat(
        1747473420000
    )
    assert one('{"event": "heartbeat"}') == Heartbeat(None)


def test_error_event_and_any_status_400_are_errors():
    assert one('{"event":"error","status":500,"message":"boom"}') == UpstreamError(
        500, "boom"
    )
    assert one('{"event":"error","message":"bad"}') == UpstreamError(None, "bad")
    assert one('{"status": 429, "message": "slow down"}') == UpstreamError(
        429, "slow down"
    )
    assert isinstance(one('{"event":"whatever","status":404}'), UpstreamError)


# --- malformed input -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        ('{"s": "aapl", "t": 1, "type": "Z", "lp": 1}', "unknown tick type"),
        ('{"s": "aapl", "t": 1, "type": "T"}', "trade without lp"),
        ('{"s": "aapl", "t": 1, "type": "Q"}', "quote without ap/bp"),
        ('{"s": 42, "type": "T", "lp": 1}', "tick without a symbol"),
        ('{"symbol": "AAPL", "price": "1.0x"}', "quote without a numeric price"),
        ('{"symbol": "AAPL", "price": "NaN"}', "quote without a numeric price"),
        ("[]", "empty array"),
        ("42", "not an object"),
        ("{}", "unrecognised object"),
        ('{"event": "surprise"}', "unknown event"),
    ],
)
def test_malformed_frames_become_parse_errors(raw, reason):
    event = one(raw)
    assert isinstance(event, ParseError) and event.reason.startswith(reason), event


def test_parse_error_frame_is_truncated():
    event = one("x" * 5000)
    assert isinstance(event, ParseError) and len(event.frame) <= 510


def test_booleans_are_not_numbers():
    event = one('{"s":"aapl","t":true,"type":"T","lp":true,"ls":1}')
    assert isinstance(event, ParseError)
    tick = one('{"s":"aapl","t":true,"type":"T","lp":1.0,"ls":false}')
    assert tick.timestamp == NOW and tick.last_size is None


# --- timestamps -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (1645216790788174600, 1645216790788),  # ns, 19 digits
        (1645216790788174, 1645216790788),  # µs, 16 digits
        (1645216790788, 1645216790788),  # ms, 13 digits
        (1645216790, 1645216790000),  # s, 10 digits
        (1645216790.5, 1645216790500),  # s with a fraction
        (16487238632060000000, 1648723863206),  # the crypto sample, 20 digits
        (0, NOW),
        (-5, NOW),
        (12345, NOW),  # no unit gives a plausible date
        (99_999_999_999, NOW),  # 11 digits: year 5138 as seconds
        (10**40, NOW),
        (float("nan"), NOW),
        (float("inf"), NOW),
        ("1645216790788x", NOW),
        ("", NOW),
        (True, NOW),
        (None, NOW),
    ],
)
def test_normalize_timestamp_by_magnitude(raw, expected):
    assert normalize_timestamp(raw, NOW) == expected


# --- client frames: equal to the documented ones --------------------------------


def test_built_frames_equal_the_documented_ones():
    assert json.loads(protocol.login_frame("<key>")) == {
        "event": "login",
        "data": {"apiKey": "<key>"},
    }
    assert [json.loads(f) for f in protocol.subscribe_frames(["AAPL", "MSFT"])] == [
        {"event": "subscribe", "data": {"ticker": ["aapl", "msft"]}}
    ]
    assert [json.loads(f) for f in protocol.unsubscribe_frames(["AAPL"])] == [
        {"event": "unsubscribe", "data": {"ticker": ["aapl"]}}
    ]
    assert json.loads(protocol.stream_subscribe_frame("fmp-us-equities-stream")) == {
        "event": "subscribe",
        "data": {"stream": "fmp-us-equities-stream"},
    }


def test_subscribe_frames_are_batched_lower_case_and_deduplicated():
    symbols = [f"S{i:03d}" for i in range(250)] + ["s000"]
    frames = [json.loads(f) for f in protocol.subscribe_frames(symbols, batch=100)]
    sizes = [len(f["data"]["ticker"]) for f in frames]
    assert sizes == [100, 100, 50]
    tickers = [t for f in frames for t in f["data"]["ticker"]]
    assert tickers == sorted({s.lower() for s in symbols})
    assert protocol.subscribe_frames([]) == []


def test_client_frames_round_trip_through_the_server_parser():
    assert protocol.parse_client_frame(protocol.login_frame("k")) == ClientFrame(
        "login", api_key="k"
    )
    (frame,) = protocol.subscribe_frames(["AAPL", "msft"])
    assert protocol.parse_client_frame(frame) == ClientFrame(
        "subscribe", tickers=("AAPL", "MSFT")
    )
    single = '{"event": "unsubscribe", "data": {"ticker": "aapl"}}'
    assert protocol.parse_client_frame(single).tickers == ("AAPL",)
    stream = protocol.stream_subscribe_frame("fmp-us-equities-stream")
    assert protocol.parse_client_frame(stream).stream == "fmp-us-equities-stream"
    assert protocol.parse_client_frame("junk") is None


def test_encoded_legacy_tick_parses_back():
    raw = protocol.encode_tick_legacy(
        "AAPL", "Q", 1645216790788174600, ap=1.25, as_=200, bp=1.2, bs=100
    )
    assert json.loads(raw)["s"] == "aapl"
    assert one(raw) == Tick(
        "AAPL", 1645216790788, "Q", ask_price=1.25, ask_size=200, bid_price=1.2,
        bid_size=100,
    )  # fmt: skip


# --- fuzzing: parse_frame never raises -----------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    ["s", "t", "type", "ap", "as", "bp", "bs", "lp", "ls", "e", "event", "status",
     "message", "data", "symbol", "price", "timestamp", "volume"]
)  # fmt: skip
fmp_like_objects = st.dictionaries(
    field_names,
    scalars | st.dictionaries(field_names, scalars, max_size=4),
    max_size=10,
)


def check_events(events: list) -> None:
    assert events and isinstance(events, list)
    for event in events:
        assert isinstance(
            event,
            Tick
            | LoginResult
            | SubscriptionAck
            | Heartbeat
            | UpstreamError
            | ParseError,
        )
        if isinstance(event, Tick):
            assert event.symbol == event.symbol.upper()
            assert isinstance(event.timestamp, int)
            assert event.kind in ("T", "Q", "B")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_text_never_raises(raw):
    check_events(parse_frame(raw))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises(value):
    check_events(parse_frame(json.dumps(value)))


@settings(max_examples=300, deadline=None)
@given(fmp_like_objects | st.lists(fmp_like_objects, max_size=4))
def test_fmp_shaped_json_never_raises(value):
    check_events(parse_frame(json.dumps(value)))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_client_frame_parser_never_raises(raw):
    protocol.parse_client_frame(raw)


def test_numbers_sent_as_strings_are_accepted():
    (tick,) = protocol.parse_frame(
        '{"s": "aapl", "t": "1701958248213", "type": "T", "lp": "190.50", "ls": "100"}',
        now_ms=NOW,
    )
    assert tick == Tick("AAPL", 1701958248213, "T", last_price=190.5, last_size=100)
    (quote,) = protocol.parse_frame(
        '{"s": "btcusd", "t": 1, "type": "Q", "ap": " 47244.9 ", "as": "1.72784126",'
        ' "bp": "47244.8", "bs": "0.5"}',
        now_ms=NOW,
    )
    assert (quote.ask_price, quote.ask_size) == (47244.9, 1.72784126)
    assert (quote.bid_price, quote.bid_size) == (47244.8, 0.5)
    (bad,) = protocol.parse_frame(
        '{"s": "aapl", "t": 1, "type": "T", "lp": "1e999"}', now_ms=NOW
    )
    assert isinstance(bad, protocol.ParseError)


def test_refusal_messages_name_tickers_and_streams_as_whole_words():
    named = protocol.named_in(
        "you are not authorized to access aapl, brk.b", {"AAPL", "BRK.B", "BRK", "A"}
    )
    assert named == {"AAPL", "BRK.B"}
    assert protocol.named_in(
        "you are not authorized to access fmp-us-equities-stream",
        ("fmp-us-equities-stream", "fmp-crypto-stream"),
    ) == {"fmp-us-equities-stream"}


@pytest.mark.parametrize(
    ("symbol", "kind"),
    [
        ("AAPL", "stocks"),
        ("BRK.B", "stocks"),
        ("^GSPC", "stocks"),
        ("EURUSD", "forex"),
        ("BTCUSD", "crypto"),
        ("ETHUSDT", "crypto"),
        ("GOOGLE", None),
    ],
)
def test_asset_class_guess_by_shape(symbol, kind):
    assert protocol.guess_asset_class(symbol) == kind
