from __future__ import annotations

import pytest

from dashboard.models import Watchlist, WatchlistItem
from dashboard.selectors import watchlist_symbols
from dashboard.services import (
    DEFAULT_WATCHLIST_SYMBOLS,
    WatchlistFull,
    watchlist_add_symbol,
    watchlist_get_or_create_default,
    watchlist_remove_symbol,
)
from realtime.symbols import InvalidSymbol

pytestmark = pytest.mark.django_db


def test_default_watchlist_has_the_guide_symbols(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    assert watchlist_symbols(watchlist=watchlist) == list(DEFAULT_WATCHLIST_SYMBOLS)
    assert DEFAULT_WATCHLIST_SYMBOLS == ("AAPL", "MSFT", "GOOGL", "AMZN", "TSLA")


def test_default_watchlist_is_created_once(user) -> None:
    first = watchlist_get_or_create_default(user=user)
    second = watchlist_get_or_create_default(user=user)
    assert first.pk == second.pk
    assert Watchlist.objects.filter(user=user).count() == 1
    assert WatchlistItem.objects.filter(watchlist=first).count() == 5


def test_existing_watchlist_is_used_instead_of_creating_default(user) -> None:
    own = Watchlist.objects.create(user=user, name="Mine")
    assert watchlist_get_or_create_default(user=user) == own
    assert not own.items.exists()


def test_emptied_default_watchlist_is_not_refilled(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    for symbol in DEFAULT_WATCHLIST_SYMBOLS:
        watchlist_remove_symbol(watchlist=watchlist, symbol=symbol)
    again = watchlist_get_or_create_default(user=user)
    assert again.pk == watchlist.pk
    assert watchlist_symbols(watchlist=again) == []


def test_add_normalises_and_appends_at_the_end(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    item, created = watchlist_add_symbol(watchlist=watchlist, symbol=" nvda ")
    assert created and item.symbol == "NVDA"
    assert watchlist_symbols(watchlist=watchlist)[-1] == "NVDA"


def test_add_duplicate_returns_existing_item(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    item, created = watchlist_add_symbol(watchlist=watchlist, symbol="aapl")
    assert not created and item.symbol == "AAPL"
    assert watchlist.items.filter(symbol="AAPL").count() == 1


def test_add_invalid_symbol_raises_naming_it(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    with pytest.raises(InvalidSymbol, match="BAD SYMBOL"):
        watchlist_add_symbol(watchlist=watchlist, symbol="BAD SYMBOL")


def test_add_beyond_connection_limit_raises(user, settings) -> None:
    settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION = 5
    watchlist = watchlist_get_or_create_default(user=user)
    with pytest.raises(WatchlistFull, match="NVDA"):
        watchlist_add_symbol(watchlist=watchlist, symbol="NVDA")


def test_remove_reports_whether_symbol_was_there(user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    assert watchlist_remove_symbol(watchlist=watchlist, symbol="msft") is True
    assert watchlist_remove_symbol(watchlist=watchlist, symbol="MSFT") is False
    assert "MSFT" not in watchlist_symbols(watchlist=watchlist)
