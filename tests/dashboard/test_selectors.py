from __future__ import annotations

import pytest

from dashboard.selectors import format_price, format_size, price_card
from realtime.feed.cache import get_tick_cache
from realtime.feed.state import PriceState


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (189.456, "189.46"),
        (12345.6, "12,345.60"),
        (1.08451, "1.0845"),
        (0.000123, "0.0001"),
        (None, "\u2014"),
    ],
)
def test_format_price_matches_the_js_client(value: float | None, shown: str) -> None:
    assert format_price(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(5000, "5,000"), (5000.0, "5,000"), (0.25, "0.25"), (None, "\u2014")],
)
def test_format_size(value: float | None, shown: str) -> None:
    assert format_size(value) == shown


def test_price_card_without_cached_state_shows_dashes() -> None:
    card = price_card(symbol="NVDA")
    assert card.state is None and card.updated_at is None
    assert card.last_price_display == card.ask_size_display == "\u2014"


def test_price_card_reads_the_tick_cache() -> None:
    state = PriceState(
        symbol="EURUSD",
        timestamp=1_700_000_000_000,
        data_type="Q",
        last_price=None,
        last_size=None,
        ask_price=1.0846,
        ask_size=1_000_000,
        bid_price=1.0844,
        bid_size=2_000_000,
        cached_at="2023-11-14T22:13:20.000+00:00",
    )
    get_tick_cache().put(state)
    card = price_card(symbol="EURUSD")
    assert card.last_price_display == "\u2014"
    assert card.ask_price_display == "1.0846"
    assert card.bid_size_display == "2,000,000"
    assert card.updated_at.isoformat() == "2023-11-14T22:13:20+00:00"


def test_unreachable_cache_renders_the_card_without_a_price(monkeypatch) -> None:
    import redis

    class DownCache:
        def get(self, symbol: str) -> None:
            raise redis.ConnectionError("Redis is restarting")

    monkeypatch.setattr("dashboard.selectors.get_tick_cache", DownCache)
    card = price_card(symbol="AAPL")
    assert card.state is None and card.last_price_display == "\u2014"
