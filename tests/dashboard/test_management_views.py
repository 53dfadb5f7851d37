"""The dashboard's JSON endpoints added for a day's use (issue 16): the session
probe, per-user layout, symbol suggestions, watchlist create/rename/delete,
reorder and undo (insert at an index)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import DashboardPreference, Watchlist
from dashboard.selectors import watchlist_symbols
from dashboard.services import watchlist_get_or_create_default

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def test_session_probe_says_whether_logged_in(client: Client, user) -> None:
    url = reverse("dashboard:session")
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["authenticated"] is False
    assert response.json()["login_url"] == "/accounts/login/?next=/"
    client.force_login(user)
    assert client.get(url).json() == {"authenticated": True, "username": "alice"}


@pytest.mark.parametrize(
    "url",
    ["dashboard:watchlist-add", "dashboard:watchlist-remove", "dashboard:preferences"],
)
def test_fetch_after_the_session_ended_gets_401_json(client: Client, url: str) -> None:
    response = client.post(reverse(url), {"symbol": "AAPL"}, **JSON)
    assert response.status_code == 401
    body = response.json()
    assert body["session_ended"] is True
    assert "session ended" in body["error"]


def test_preferences_are_saved_per_user(user_client: Client, user, make_user) -> None:
    url = reverse("dashboard:preferences")
    response = user_client.post(url, {"view": "table"}, **JSON)
    assert response.json() == {"view": "table", "sort_key": "", "sort_dir": "asc"}
    response = user_client.post(
        url, {"sort_key": "change_pct", "sort_dir": "desc"}, **JSON
    )
    assert response.json() == {
        "view": "table",
        "sort_key": "change_pct",
        "sort_dir": "desc",
    }
    html = user_client.get(reverse("dashboard:home")).content.decode()
    assert 'data-view="table"' in html and 'data-sort-key="change_pct"' in html
    assert 'id="price-grid" class="price-grid" aria-label="My watchlist" hidden' in html
    # Another user keeps the defaults.
    other = Client()
    other.force_login(make_user("bob"))
    assert 'data-view="cards"' in other.get(reverse("dashboard:home")).content.decode()
    # Back to the watchlist's order: sort_key sent empty.
    response = user_client.post(url, {"sort_key": ""}, **JSON)
    assert response.json()["sort_key"] == ""
    assert DashboardPreference.objects.get(user=user).view == "table"


@pytest.mark.parametrize(
    ("data", "word"),
    [
        ({"view": "grid"}, "grid"),
        ({"sort_key": "volume"}, "volume"),
        ({"sort_dir": "up"}, "up"),
    ],
)
def test_bad_preferences_are_refused_by_name(user_client: Client, data, word) -> None:
    response = user_client.post(reverse("dashboard:preferences"), data, **JSON)
    assert response.status_code == 400
    assert word in response.json()["error"]


def test_symbol_search_suggests_names(user_client: Client) -> None:
    url = reverse("dashboard:symbol-search")
    results = user_client.get(url, {"q": "nv"}).json()["results"]
    assert results[0] == {"symbol": "NVDA", "name": "NVIDIA Corporation"}
    by_name = user_client.get(url, {"q": "micro"}).json()["results"]
    assert {"symbol": "MSFT", "name": "Microsoft Corporation"} in by_name
    assert user_client.get(url, {"q": ""}).json()["results"] == []


def test_create_rename_delete_watchlists(user_client: Client, user) -> None:
    default = watchlist_get_or_create_default(user=user)
    response = user_client.post(
        reverse("dashboard:watchlist-new"), {"name": " Tech  "}, **JSON
    )
    assert response.status_code == 201
    tech_id = response.json()["id"]
    # The created list, not every list (issue 28, defect 6).
    assert response.json()["name"] == "Tech" and "watchlists" not in response.json()
    again = user_client.post(
        reverse("dashboard:watchlist-new"), {"name": "Tech"}, **JSON
    )
    assert again.status_code == 400 and "Tech" in again.json()["error"]

    rename = reverse("dashboard:watchlist-rename", args=[tech_id])
    response = user_client.post(rename, {"name": "Chips"}, **JSON)
    assert response.status_code == 200 and response.json()["name"] == "Chips"
    clash = user_client.post(rename, {"name": "My watchlist"}, **JSON)
    assert clash.status_code == 400

    response = user_client.post(
        reverse("dashboard:watchlist-delete", args=[tech_id]), **JSON
    )
    assert response.json()["deleted"] is True
    assert list(Watchlist.objects.filter(user=user)) == [default]


def test_watchlists_per_user_are_limited_with_409(
    user_client: Client, user, make_user, settings
) -> None:
    """61 creates in a row used to all answer 201 (issue 28, defect 6)."""
    settings.REALTIME_MAX_WATCHLISTS_PER_USER = 3
    watchlist_get_or_create_default(user=user)
    url = reverse("dashboard:watchlist-new")
    for name in ("Two", "Three"):
        assert user_client.post(url, {"name": name}, **JSON).status_code == 201
    refused = user_client.post(url, {"name": "Four"}, **JSON)
    assert refused.status_code == 409
    assert "3 watchlists" in refused.json()["error"]
    assert Watchlist.objects.filter(user=user).count() == 3
    # A plain form post gets the same words as a flash message.
    page = user_client.post(url, {"name": "Four"}, follow=True)
    assert "3 watchlists" in page.content.decode()
    # The limit is per user: another user still creates.
    other = Client()
    other.force_login(make_user("dora"))
    assert other.post(url, {"name": "Mine"}, **JSON).status_code == 201


def test_other_users_lists_cannot_be_renamed_or_deleted(
    user_client: Client, make_user
) -> None:
    other = watchlist_get_or_create_default(user=make_user("bob"))
    assert (
        user_client.post(
            reverse("dashboard:watchlist-rename", args=[other.pk]), {"name": "x"}
        ).status_code
        == 404
    )
    assert (
        user_client.post(
            reverse("dashboard:watchlist-delete", args=[other.pk])
        ).status_code
        == 404
    )
    assert Watchlist.objects.filter(pk=other.pk, name="My watchlist").exists()


def test_move_and_insert_at_index(user_client: Client, user) -> None:
    watchlist = watchlist_get_or_create_default(user=user)
    move = reverse("dashboard:watchlist-move")
    response = user_client.post(move, {"symbol": "GOOGL", "direction": "up"}, **JSON)
    assert response.json()["order"] == ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA"]
    response = user_client.post(move, {"symbol": "AAPL", "direction": "up"}, **JSON)
    assert response.json()["order"][0] == "AAPL"  # already first: stays
    missing = user_client.post(move, {"symbol": "NVDA", "direction": "down"}, **JSON)
    assert missing.status_code == 404

    user_client.post(reverse("dashboard:watchlist-remove"), {"symbol": "MSFT"}, **JSON)
    response = user_client.post(
        reverse("dashboard:watchlist-add"), {"symbol": "MSFT", "index": 2}, **JSON
    )
    assert response.status_code == 201
    assert watchlist_symbols(watchlist=watchlist) == [
        "AAPL",
        "GOOGL",
        "MSFT",
        "AMZN",
        "TSLA",
    ]
    assert response.json()["order"] == ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA"]


def test_page_shows_simulated_badge_only_without_an_api_key(
    user_client: Client, settings
) -> None:
    settings.FMP_API_KEY = ""
    html = user_client.get(reverse("dashboard:home")).content.decode()
    assert 'data-simulated="true"' in html
    assert 'id="simulated-badge"' in html and "Simulated data</span>" in html
    assert 'not from a market data provider">Simulated data' in html
    settings.FMP_API_KEY = "real-key"
    html = user_client.get(reverse("dashboard:home")).content.decode()
    assert 'data-simulated="false"' in html
    assert 'market data provider" hidden>' in html


def test_pages_link_a_favicon_that_is_served(user_client: Client) -> None:
    html = user_client.get(reverse("dashboard:home")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    login = Client().get(reverse("login")).content.decode()
    assert 'rel="icon"' in login


def test_favicon_ico_points_at_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
