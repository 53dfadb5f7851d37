from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.models import Watchlist, WatchlistItem
from dashboard.services import watchlist_get_or_create_default

pytestmark = pytest.mark.django_db


@pytest.fixture
def watchlist(make_user) -> Watchlist:
    return watchlist_get_or_create_default(user=make_user("carol"))


def test_changelist_lists_watchlists_with_user(admin_client, watchlist) -> None:
    response = admin_client.get(reverse("admin:dashboard_watchlist_changelist"))
    assert response.status_code == 200
    assert b"My watchlist" in response.content
    assert b"carol" in response.content


@pytest.mark.parametrize("query", ["carol", "watchlist", "googl"])
def test_changelist_search(admin_client, watchlist, query: str) -> None:
    response = admin_client.get(
        reverse("admin:dashboard_watchlist_changelist"), {"q": query}
    )
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_change_page_shows_items_inline(admin_client, watchlist) -> None:
    response = admin_client.get(
        reverse("admin:dashboard_watchlist_change", args=[watchlist.pk])
    )
    assert response.status_code == 200
    assert b'value="TSLA"' in response.content


def test_add_page_renders(admin_client) -> None:
    response = admin_client.get(reverse("admin:dashboard_watchlist_add"))
    assert response.status_code == 200


def test_inline_normalises_and_validates_symbols(admin_client, watchlist) -> None:
    url = reverse("admin:dashboard_watchlist_change", args=[watchlist.pk])
    items = list(watchlist.items.all())
    data = {
        "user": watchlist.user_id,
        "name": watchlist.name,
        "position": 0,
        "items-TOTAL_FORMS": len(items) + 1,
        "items-INITIAL_FORMS": len(items),
        "items-MIN_NUM_FORMS": 0,
        "items-MAX_NUM_FORMS": 1000,
    }
    for i, item in enumerate(items):
        data |= {
            f"items-{i}-id": item.pk,
            f"items-{i}-watchlist": watchlist.pk,
            f"items-{i}-symbol": item.symbol,
            f"items-{i}-position": item.position,
        }
    new = len(items)
    bad = data | {f"items-{new}-symbol": "not valid!", f"items-{new}-position": 9}
    response = admin_client.post(url, bad)
    assert response.status_code == 200
    assert b"Invalid symbol: &#x27;not valid!&#x27;" in response.content
    good = data | {f"items-{new}-symbol": " nvda ", f"items-{new}-position": 9}
    assert admin_client.post(url, good).status_code == 302
    assert WatchlistItem.objects.filter(watchlist=watchlist, symbol="NVDA").exists()


def _inline_data(watchlist: Watchlist, extra: dict[str, str]) -> dict[str, object]:
    items = list(watchlist.items.all())
    data: dict[str, object] = {
        "user": watchlist.user_id,
        "name": watchlist.name,
        "position": 0,
        "items-TOTAL_FORMS": len(items) + 1,
        "items-INITIAL_FORMS": len(items),
        "items-MIN_NUM_FORMS": 0,
        "items-MAX_NUM_FORMS": 1000,
    }
    for i, item in enumerate(items):
        data |= {
            f"items-{i}-id": item.pk,
            f"items-{i}-watchlist": watchlist.pk,
            f"items-{i}-symbol": item.symbol,
            f"items-{i}-position": item.position,
        }
    new = len(items)
    return data | {f"items-{new}-{k}": v for k, v in extra.items()}


def test_inline_refuses_more_symbols_than_the_connection_limit(
    admin_client, watchlist, settings
) -> None:
    """The admin enforces the dashboard's limit: a 51st symbol would be refused by
    the stream and left on the page with a frozen price."""
    settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION = 5  # the default list holds 5
    url = reverse("admin:dashboard_watchlist_change", args=[watchlist.pk])
    data = _inline_data(watchlist, {"symbol": "NVDA", "position": "9"})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert b"A watchlist holds at most 5 symbols" in response.content
    assert not WatchlistItem.objects.filter(watchlist=watchlist, symbol="NVDA").exists()
    # Deleting one in the same save makes room.
    data["items-0-DELETE"] = "on"
    assert admin_client.post(url, data).status_code == 302
    assert WatchlistItem.objects.filter(watchlist=watchlist, symbol="NVDA").exists()
    assert watchlist.items.count() == 5


def test_admin_enforces_the_per_user_watchlist_limit(
    admin_client, watchlist, settings
) -> None:
    """The same limit as the dashboard's create (issue 28, defect 6)."""
    settings.REALTIME_MAX_WATCHLISTS_PER_USER = 1  # carol has her default list
    data = {
        "user": watchlist.user_id,
        "name": "Second",
        "position": 1,
        "items-TOTAL_FORMS": 0,
        "items-INITIAL_FORMS": 0,
        "items-MIN_NUM_FORMS": 0,
        "items-MAX_NUM_FORMS": 1000,
    }
    response = admin_client.post(reverse("admin:dashboard_watchlist_add"), data)
    assert response.status_code == 200
    assert b"You already have 1 watchlists" in response.content
    assert Watchlist.objects.filter(user_id=watchlist.user_id).count() == 1
    # Editing the list she has is not creating one.
    url = reverse("admin:dashboard_watchlist_change", args=[watchlist.pk])
    renamed = _inline_data(watchlist, {}) | {"name": "Renamed"}
    renamed["items-TOTAL_FORMS"] = renamed["items-INITIAL_FORMS"]
    assert admin_client.post(url, renamed).status_code == 302
