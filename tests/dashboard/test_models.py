from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from dashboard.models import Watchlist, WatchlistItem

pytestmark = pytest.mark.django_db


def test_item_clean_normalises_symbol(user) -> None:
    watchlist = Watchlist.objects.create(user=user, name="Tech")
    item = WatchlistItem(watchlist=watchlist, symbol="  brk.b ")
    item.full_clean()
    assert item.symbol == "BRK.B"


def test_item_clean_rejects_invalid_symbol_naming_it(user) -> None:
    watchlist = Watchlist.objects.create(user=user, name="Tech")
    item = WatchlistItem(watchlist=watchlist, symbol="NOT A SYMBOL")
    with pytest.raises(ValidationError) as excinfo:
        item.full_clean()
    assert "NOT A SYMBOL" in str(excinfo.value.message_dict["symbol"])


def test_symbol_is_unique_per_watchlist_only(make_user) -> None:
    first = Watchlist.objects.create(user=make_user(), name="A")
    second = Watchlist.objects.create(user=make_user(), name="A")
    WatchlistItem.objects.create(watchlist=first, symbol="AAPL")
    WatchlistItem.objects.create(watchlist=second, symbol="AAPL")
    with pytest.raises(IntegrityError):
        WatchlistItem.objects.create(watchlist=first, symbol="AAPL")


def test_watchlist_name_is_unique_per_user(user) -> None:
    Watchlist.objects.create(user=user, name="Tech")
    with pytest.raises(IntegrityError):
        Watchlist.objects.create(user=user, name="Tech")
