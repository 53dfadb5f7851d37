from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import Watchlist, WatchlistItem
from dashboard.selectors import watchlist_symbols
from dashboard.services import (
    DEFAULT_WATCHLIST_SYMBOLS,
    watchlist_get_or_create_default,
)
from realtime.backends import backends
from realtime.feed.state import PriceState

pytestmark = pytest.mark.django_db

HOME = reverse("dashboard:home")
ADD = reverse("dashboard:watchlist-add")
REMOVE = reverse("dashboard:watchlist-remove")
JSON = {"HTTP_ACCEPT": "application/json"}


def symbols_of(user) -> list[str]:
    return watchlist_symbols(watchlist=watchlist_get_or_create_default(user=user))


# --- login ---------------------------------------------------------------------


def test_dashboard_requires_login(client: Client) -> None:
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={HOME}"


@pytest.mark.parametrize("url", [ADD, REMOVE])
def test_endpoints_require_login(client: Client, url: str) -> None:
    response = client.post(url, {"symbol": "AAPL"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_renders_and_logs_in(client: Client, user) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post(
        reverse("login"), {"username": "alice", "password": "pw-12345-secret"}
    )
    assert response.status_code == 302 and response["Location"] == HOME


def test_login_failure_is_explained(client: Client, user) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": "x"})
    assert response.status_code == 200
    assert b'class="error-banner" role="alert"' in response.content
    assert b"Please enter a correct username and password" in response.content


def test_logout_is_a_post_form(user_client: Client) -> None:
    page = user_client.get(HOME)
    assert re.search(rb'<form method="post" action="/accounts/logout/"', page.content)
    response = user_client.post(reverse("logout"))
    assert response.status_code == 302
    assert user_client.get(HOME).status_code == 302


# --- page ----------------------------------------------------------------------


def test_first_visit_creates_default_watchlist(user_client: Client, user) -> None:
    assert not Watchlist.objects.filter(user=user).exists()
    response = user_client.get(HOME)
    assert response.status_code == 200
    assert symbols_of(user) == ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]
    cards = re.findall(
        rb'<article class="price-card" data-symbol="([^"]+)"', response.content
    )
    assert cards == [b"AAPL", b"MSFT", b"GOOGL", b"AMZN", b"TSLA"]
    user_client.get(HOME)
    assert Watchlist.objects.filter(user=user).count() == 1


def test_page_renders_cached_price_server_side(user_client: Client) -> None:
    backends().cache.put(
        PriceState(
            symbol="AAPL",
            timestamp=1_699_564_800_000,
            data_type="T",
            last_price=189.45,
            last_size=1000,
            ask_price=189.46,
            ask_size=5000,
            bid_price=189.44,
            bid_size=3000,
            cached_at="2023-11-09T21:20:00.000+00:00",
        )
    )
    html = user_client.get(HOME).content.decode()
    aapl = html.split('data-symbol="AAPL"', 1)[1].split("</article>", 1)[0]
    assert 'data-last-price="189.45"' in aapl
    assert ">189.45<" in aapl
    assert ">189.46<" in aapl and ">5,000<" in aapl
    assert ">189.44<" in aapl and ">3,000<" in aapl
    assert 'datetime="2023-11-09T21:20:00+00:00"' in aapl
    msft = html.split('data-symbol="MSFT"', 1)[1].split("</article>", 1)[0]
    assert 'data-last-price=""' in msft
    assert 'data-field="last_price">\u2014<' in msft


def test_page_passes_config_in_data_attributes_and_has_no_inline_script(
    user_client: Client,
) -> None:
    html = user_client.get(HOME).content.decode()
    assert 'data-ws-path="/api/v2/realtime/ws/prices"' in html
    assert 'data-connection-state="connecting"' in html
    assert 'aria-live="polite"' in html
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts and all(body.strip() == "" for body in scripts)
    assert '<script type="module" src="/static/dashboard/dashboard.js">' in html
    assert " onclick=" not in html


def test_other_users_watchlist_is_404(user_client: Client, make_user) -> None:
    other = watchlist_get_or_create_default(user=make_user("bob"))
    response = user_client.get(f"{HOME}?watchlist={other.pk}")
    assert response.status_code == 404


def test_second_watchlist_is_shown_when_asked(user_client: Client, user) -> None:
    watchlist_get_or_create_default(user=user)
    crypto = Watchlist.objects.create(user=user, name="Crypto", position=1)
    WatchlistItem.objects.create(watchlist=crypto, symbol="BTCUSD")
    html = user_client.get(f"{HOME}?watchlist={crypto.pk}").content.decode()
    assert 'data-symbol="BTCUSD"' in html and 'data-symbol="AAPL"' not in html
    assert 'aria-current="page">Crypto<' in html


# --- add -------------------------------------------------------------------------


def test_add_with_form_post_persists_and_redirects(user_client: Client, user) -> None:
    response = user_client.post(ADD, {"symbol": " nvda "}, follow=True)
    assert response.redirect_chain == [(HOME, 302)]
    assert symbols_of(user)[-1] == "NVDA"
    assert b"Added NVDA." in response.content
    assert b'data-symbol="NVDA"' in response.content


def test_add_with_fetch_returns_card_html(user_client: Client, user) -> None:
    response = user_client.post(ADD, {"symbol": "brk-b"}, **JSON)
    assert response.status_code == 201
    data = response.json()
    assert data["symbol"] == "BRK-B" and data["created"] is True
    assert 'data-symbol="BRK-B"' in data["html"]
    assert 'name="csrfmiddlewaretoken"' in data["html"]
    assert "BRK-B" in symbols_of(user)


def test_add_bad_symbol_rejected_with_message_naming_it(
    user_client: Client, user
) -> None:
    response = user_client.post(ADD, {"symbol": "NO WAY!"}, **JSON)
    assert response.status_code == 400
    assert "NO WAY!" in response.json()["error"]
    page = user_client.post(ADD, {"symbol": "$$$"}, follow=True)
    assert b"Invalid symbol: &#x27;$$$&#x27;" in page.content
    assert b'role="alert">Invalid symbol' in page.content
    assert symbols_of(user) == ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]


def test_add_empty_symbol_rejected(user_client: Client) -> None:
    response = user_client.post(ADD, {"symbol": "  "}, **JSON)
    assert response.status_code == 400
    assert "required" in response.json()["error"]


def test_add_duplicate_is_reported_not_duplicated(user_client: Client, user) -> None:
    response = user_client.post(ADD, {"symbol": "msft"}, **JSON)
    assert response.status_code == 200
    data = response.json()
    assert data == {
        "symbol": "MSFT",
        "created": False,
        "message": "MSFT is already in your watchlist.",
        "watchlist": data["watchlist"],
        "order": ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"],
    }
    assert symbols_of(user).count("MSFT") == 1


def test_add_to_full_watchlist_is_409(user_client: Client, settings) -> None:
    settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION = 5
    response = user_client.post(ADD, {"symbol": "NVDA"}, **JSON)
    assert response.status_code == 409
    assert "NVDA" in response.json()["error"]


def test_add_requires_csrf_token(user) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(ADD, {"symbol": "NVDA"}, **JSON).status_code == 403


def test_add_get_not_allowed(user_client: Client) -> None:
    assert user_client.get(ADD).status_code == 405


# --- remove ----------------------------------------------------------------------


def test_remove_with_fetch_persists(user_client: Client, user) -> None:
    user_client.get(HOME)
    response = user_client.post(REMOVE, {"symbol": "tsla"}, **JSON)
    assert response.status_code == 200
    data = response.json()
    assert data == {
        "symbol": "TSLA",
        "removed": True,
        "message": "Removed TSLA.",
        "watchlist": watchlist_get_or_create_default(user=user).pk,
    }
    assert "TSLA" not in symbols_of(user)
    html = user_client.get(HOME).content
    assert b'data-symbol="TSLA"' not in html


def test_remove_with_form_post_redirects(user_client: Client, user) -> None:
    response = user_client.post(REMOVE, {"symbol": "AAPL"}, follow=True)
    assert response.redirect_chain == [(HOME, 302)]
    assert b"Removed AAPL." in response.content
    assert "AAPL" not in symbols_of(user)


def test_remove_absent_symbol_is_harmless(user_client: Client, user) -> None:
    response = user_client.post(REMOVE, {"symbol": "NVDA"}, **JSON)
    assert response.status_code == 200 and response.json()["removed"] is False
    assert len(symbols_of(user)) == 5


# --- isolation between users ---------------------------------------------------------


def test_other_users_watchlist_is_not_touched(user_client: Client, make_user) -> None:
    bob = make_user("bob")
    bobs = watchlist_get_or_create_default(user=bob)
    added = user_client.post(ADD, {"symbol": "NVDA", "watchlist": bobs.pk}, **JSON)
    removed = user_client.post(REMOVE, {"symbol": "AAPL", "watchlist": bobs.pk}, **JSON)
    assert added.status_code == 400 and removed.status_code == 400
    assert watchlist_symbols(watchlist=bobs) == list(DEFAULT_WATCHLIST_SYMBOLS)


def test_users_have_separate_watchlists(user_client: Client, user, make_user) -> None:
    bob = make_user("bob")
    user_client.post(ADD, {"symbol": "NVDA"}, **JSON)
    assert "NVDA" in symbols_of(user)
    assert "NVDA" not in symbols_of(bob)


def test_add_to_named_watchlist(user_client: Client, user) -> None:
    watchlist_get_or_create_default(user=user)
    crypto = Watchlist.objects.create(user=user, name="Crypto", position=1)
    response = user_client.post(ADD, {"symbol": "btcusd", "watchlist": crypto.pk})
    assert response.status_code == 302
    assert response["Location"] == f"{HOME}?watchlist={crypto.pk}"
    assert watchlist_symbols(watchlist=crypto) == ["BTCUSD"]
    assert "BTCUSD" not in symbols_of(user)


# --- demo page ---------------------------------------------------------------------


def test_guide_demo_page_needs_no_login(client: Client) -> None:
    response = client.get(reverse("dashboard:demo"))
    assert response.status_code == 200
    assert b'<script src="/static/demo/websocket-client.js">' in response.content
    assert b'id="symbolInput"' in response.content


# --- intraday chart and day statistics (issue 24) --------------------------------


def test_bars_off_renders_no_chart_dialog_and_no_intervals(user_client) -> None:
    html = user_client.get(HOME).content.decode()
    assert 'data-bar-intervals=""' in html
    assert 'id="chart-dialog"' not in html
    # The card's chart button is there but hidden; the script only shows it
    # when the server streams bars.
    assert re.search(r'<button[^>]*class="chart-btn"[^>]*\bhidden\b', html)
    assert ">Day high<" in html  # the columns exist and read "—" without bars


def test_bars_on_offers_the_chart_and_the_vendored_library(
    user_client, settings
) -> None:
    settings.REALTIME_BAR_INTERVALS = "1s,1m"
    html = user_client.get(HOME).content.decode()
    assert 'data-bar-intervals="1s,1m"' in html
    assert 'id="chart-dialog"' in html
    library = re.search(r'data-chart-library="([^"]+)"', html).group(1)
    assert library.endswith("lightweight-charts.standalone.production.js")
    assert "tradingview.com" in html  # the licence's attribution, as text
