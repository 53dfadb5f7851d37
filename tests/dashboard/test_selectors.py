from __future__ import annotations

import pytest

from dashboard.selectors import (
    Reference,
    format_change,
    format_price,
    format_size,
    price_card,
    reference_for,
    symbol_suggestions,
)
from realtime.backends import backends
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
    backends().cache.put(state)
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

    monkeypatch.setattr(backends(), "cache", DownCache())
    card = price_card(symbol="AAPL")
    assert card.state is None and card.last_price_display == "\u2014"


@pytest.mark.parametrize(
    ("value", "percent", "price", "shown"),
    [
        (1.25, False, 101.25, "+1.25"),
        (0.75, False, 409.13, "+0.75"),
        (-0.0456, False, 1.0845, "-0.0456"),
        (-1234.5, False, 60000.0, "-1,234.50"),
        (1.0, True, 1.0845, "+1.00%"),
        (-0.123, True, None, "-0.12%"),
        (None, False, 100.0, "\u2014"),
    ],
)
def test_format_change_matches_the_js_client(
    value: float | None, percent: bool, price: float | None, shown: str
) -> None:
    assert format_change(value, percent=percent, price=price) == shown


def test_reference_hook_gives_cards_names_and_change(monkeypatch) -> None:
    """The realtime reference selectors (H7) feed server-rendered cards."""
    calls: list[tuple[list[str], float]] = []

    def get_references_sync(symbols: list[str], wait: float) -> dict[str, Reference]:
        calls.append((symbols, wait))
        return {
            "AAPL": Reference(name="Apple Inc.", previous_close=100.0, simulated=True)
        }

    monkeypatch.setattr(
        "dashboard.selectors._reference_source", lambda: get_references_sync
    )
    backends().cache.put(state("AAPL", 101.0))
    card = price_card(symbol="AAPL")
    assert calls == [(["AAPL"], 1.0)]
    assert card.name == "Apple Inc."
    assert card.change_display == "+1.00"
    assert card.change_pct_display == "+1.00%"
    assert card.direction == "up"
    refs = reference_for(["AAPL", "MSFT"])
    assert refs["MSFT"] == Reference(name="Microsoft Corporation")


def test_reference_hook_failure_leaves_static_names(monkeypatch) -> None:
    def broken(symbols: list[str], wait: float) -> dict[str, Reference]:
        raise TimeoutError("FMP is slow")

    monkeypatch.setattr("dashboard.selectors._reference_source", lambda: broken)
    card = price_card(symbol="MSFT")
    assert card.name == "Microsoft Corporation"
    assert card.change_display == "\u2014"
    assert card.direction == "flat"


def test_suggestions_use_the_realtime_directory_when_present(monkeypatch) -> None:
    monkeypatch.setattr(
        "dashboard.selectors._directory_source",
        lambda: (
            lambda: [{"symbol": "ZTEST", "name": "Zed Test Corp", "asset_class": "x"}]
        ),
    )
    assert symbol_suggestions("zed") == [{"symbol": "ZTEST", "name": "Zed Test Corp"}]
    monkeypatch.setattr("dashboard.selectors._directory_source", lambda: None)
    assert symbol_suggestions("zed") == []
    assert symbol_suggestions("AA")[0] == {"symbol": "AAPL", "name": "Apple Inc."}


def state(symbol: str, price: float) -> PriceState:
    return PriceState(
        symbol=symbol,
        timestamp=1_700_000_000_000,
        data_type="T",
        last_price=price,
        last_size=10,
        ask_price=None,
        ask_size=None,
        bid_price=None,
        bid_size=None,
        cached_at="2023-11-14T22:13:20.000+00:00",
    )
