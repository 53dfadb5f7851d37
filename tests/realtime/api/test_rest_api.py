"""REST API under /api/v2/realtime/: shapes and status codes of PROTOCOL.md, every
bad input, who may call what, and the guide's curl commands."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from realtime.feed.state import to_cache_entry
from realtime.models import PinnedSubscription
from tests.factories import make_token, make_user, publish_status, seed_price

pytestmark = pytest.mark.django_db

API = "/api/v2/realtime"
HEALTH_KEYS = {
    "status",
    "is_running",
    "api_configured",
    "subscribed_symbols",
    "cached_symbols",
    "callbacks_registered",
    "reconnect_attempts",
}


@pytest.fixture
def staff():
    return make_user("staff", is_staff=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def token_headers(staff) -> dict[str, str]:
    return {"Authorization": f"Token {make_token(staff)}"}


@pytest.fixture
def anonymous_refused(settings) -> None:
    settings.REALTIME_ALLOW_ANONYMOUS = False


def post_json(client: Client, path: str, body: object, **kwargs):
    return client.post(
        path, json.dumps(body), content_type="application/json", **kwargs
    )


# --- health ---------------------------------------------------------------------------


def test_health_is_200_with_the_documented_body_while_the_feed_reports(client):
    publish_status(subscribed_symbols=["AAPL", "MSFT"], reconnect_attempts=2)
    seed_price("AAPL")
    seed_price("TSLA")
    response = client.get(f"{API}/health")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert HEALTH_KEYS <= body.keys()
    assert body["status"] == "connected"
    assert body["is_running"] is True
    assert body["api_configured"] is False
    assert body["subscribed_symbols"] == ["AAPL", "MSFT"]
    assert body["cached_symbols"] == ["AAPL", "TSLA"]
    assert body["callbacks_registered"] == 1
    assert body["reconnect_attempts"] == 2
    assert body["source"] == "simulator"
    assert body["total_clients"] == 5
    assert body["stale"] is False


def test_health_names_upstream_problems_in_words(client):
    """Issue 13: a slot held elsewhere, refused streams and tickers, and symbols the
    legacy cluster cannot serve are said in /health, not only in a log line."""
    publish_status(
        state="disconnected",
        upstream_problem="FMP says the account's one connection slot is taken",
        refused_streams={"fmp-us-equities-stream": "you are not authorized"},
        refused_symbols={"AAPL": "you are not authorized"},
        unservable_symbols={"BTCUSD": "crypto on the stocks cluster"},
    )
    body = client.get(f"{API}/health").json()
    assert body["status"] == "disconnected"
    assert "slot is taken" in body["upstream_problem"]
    assert body["refused_streams"] == {
        "fmp-us-equities-stream": "you are not authorized"
    }
    assert body["refused_symbols"] == {"AAPL": "you are not authorized"}
    assert body["unservable_symbols"] == {"BTCUSD": "crypto on the stocks cluster"}
    assert body["leader"] == "test"
    # /status says the same, so an operator reading either sees why.
    connection = client.get(f"{API}/status").json()["connection_status"]
    for key in (
        "upstream_problem",
        "refused_streams",
        "refused_symbols",
        "unservable_symbols",
        "leader",
    ):
        assert connection[key] == body[key], key


def test_health_is_503_when_the_status_is_stale(client, settings):
    publish_status(updated_at=time.time() - settings.REALTIME_STATUS_STALE_AFTER - 5)
    response = client.get(f"{API}/health")
    assert response.status_code == 503
    body = response.json()
    assert HEALTH_KEYS <= body.keys()
    assert body["is_running"] is False
    assert body["status"] == "stopped"
    assert body["stale"] is True


def test_health_is_503_stopped_when_the_feed_never_reported(client):
    response = client.get(f"{API}/health")
    assert response.status_code == 503
    body = response.json()
    assert HEALTH_KEYS <= body.keys()
    assert body["status"] == "stopped"
    assert body["is_running"] is False
    assert body["subscribed_symbols"] == []


def test_health_is_503_when_the_feed_reports_it_is_not_running(client):
    publish_status(state="stopped", is_running=False)
    assert client.get(f"{API}/health").status_code == 503


def test_health_reports_a_disconnected_feed_that_is_still_alive(client):
    publish_status(state="disconnected", last_error="login refused")
    response = client.get(f"{API}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "disconnected"
    assert response.json()["last_error"] == "login refused"


def test_health_stays_open_for_load_balancers_when_anonymous_is_refused(
    client, anonymous_refused
):
    publish_status()
    assert client.get(f"{API}/health").status_code == 200


# --- status ---------------------------------------------------------------------------


def test_status_shape(client):
    publish_status(subscribed_symbols=["AAPL", "MSFT"], total_clients=7)
    seed_price("MSFT")
    seed_price("AAPL")
    response = client.get(f"{API}/status")
    assert response.status_code == 200
    body = response.json()
    timestamp = datetime.fromisoformat(body["timestamp"])
    assert timestamp.utcoffset() is not None
    assert timestamp.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - timestamp).total_seconds()) < 60
    connection = body["connection_status"]
    assert connection["is_connected"] is True
    assert connection["is_running"] is True
    assert connection["subscribed_symbols"] == ["AAPL", "MSFT"]
    assert connection["total_clients"] == 7
    assert body["cached_data"] == {"count": 2, "symbols": ["AAPL", "MSFT"]}


def test_status_is_not_connected_while_reconnecting(client):
    publish_status(state="reconnecting")
    connection = client.get(f"{API}/status").json()["connection_status"]
    assert connection["is_connected"] is False
    assert connection["is_running"] is True


def test_status_without_a_feed_says_not_running(client):
    response = client.get(f"{API}/status")
    assert response.status_code == 200
    body = response.json()
    assert body["connection_status"] == {
        "is_connected": False,
        "is_running": False,
        "subscribed_symbols": [],
        "total_clients": 0,
        "status": "stopped",
        "leader": None,
        "last_failover": None,
        "upstream_problem": None,
        "refused_symbols": {},
        "refused_streams": {},
        "unservable_symbols": {},
    }
    assert body["cached_data"] == {"count": 0, "symbols": []}


# --- cache ----------------------------------------------------------------------------


def test_cache_lists_entries_in_the_documented_shape(client):
    state = seed_price("AAPL")
    seed_price("MSFT", ask=None, bid=None)
    response = client.get(f"{API}/cache")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    assert body["returned"] == 2
    assert body["limit"] == 50
    assert list(body["data"]) == ["AAPL", "MSFT"]
    assert body["data"]["AAPL"] == to_cache_entry(state)
    entry = body["data"]["MSFT"]
    assert set(entry) == {
        "symbol",
        "timestamp",
        "type",
        "last_price",
        "last_size",
        "ask_price",
        "ask_size",
        "bid_price",
        "bid_size",
        "cached_at",
    }
    assert entry["type"] == "T"
    assert entry["ask_price"] is None


def test_cache_limit_caps_returned_but_not_total(client):
    for symbol in ["AAPL", "MSFT", "TSLA"]:
        seed_price(symbol)
    body = client.get(f"{API}/cache", {"limit": "2"}).json()
    assert (body["total"], body["returned"], body["limit"]) == (3, 2, 2)
    assert list(body["data"]) == ["AAPL", "MSFT"]


@pytest.mark.parametrize("limit", ["1", "1000", " 7 "])
def test_cache_accepts_limits_in_range(client, limit):
    response = client.get(f"{API}/cache", {"limit": limit})
    assert response.status_code == 200
    assert response.json()["limit"] == int(limit)


@pytest.mark.parametrize(
    "limit", ["0", "1001", "-1", "abc", "", "1.5", "1_000", "99999999999999999999"]
)
def test_cache_rejects_a_bad_limit_naming_it(client, limit):
    response = client.get(f"{API}/cache", {"limit": limit})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert repr(limit) in detail
    assert "1 to 1000" in detail


def test_cache_symbol_returns_the_entry(client):
    state = seed_price("AAPL")
    response = client.get(f"{API}/cache/AAPL")
    assert response.status_code == 200
    assert response.json() == {"symbol": "AAPL", "data": to_cache_entry(state)}


def test_cache_symbol_is_normalised(client):
    seed_price("BRK.B")
    response = client.get(f"{API}/cache/brk.b")
    assert response.status_code == 200
    assert response.json()["symbol"] == "BRK.B"


@pytest.mark.parametrize("symbol", ["^GSPC", "EUR/USD"])
def test_cache_symbol_with_special_characters(client, symbol):
    seed_price(symbol)
    response = client.get(f"{API}/cache/{symbol.replace('^', '%5E')}")
    assert response.status_code == 200
    assert response.json()["symbol"] == symbol


def test_cache_symbol_not_cached_is_404_with_the_documented_detail(client):
    response = client.get(f"{API}/cache/aapl")
    assert response.status_code == 404
    assert response.json() == {"detail": "No cached data for AAPL"}


@pytest.mark.parametrize("symbol", ["A A", "$$$", "TOOLONGSYMBOL12345678901"])
def test_cache_symbol_invalid_is_400_naming_it(client, symbol):
    response = client.get(f"{API}/cache/{symbol}")
    assert response.status_code == 400
    assert repr(symbol) in response.json()["detail"]


# --- subscribe / unsubscribe ----------------------------------------------------------


def test_subscribe_pins_and_reports_the_documented_shape(staff_client):
    publish_status(subscribed_symbols=["AAPL", "TSLA"])
    response = post_json(staff_client, f"{API}/subscribe", ["aapl", "MSFT", "GOOGL"])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["message"] == "Subscribed to 3 symbols"
    assert body["symbols"] == ["AAPL", "MSFT", "GOOGL"]
    # pinned {AAPL, MSFT, GOOGL} ∪ upstream {AAPL, TSLA}
    assert body["subscribed_total"] == 4
    assert body["changed"] == ["AAPL", "MSFT", "GOOGL"]
    assert sorted(PinnedSubscription.objects.values_list("symbol", flat=True)) == [
        "AAPL",
        "GOOGL",
        "MSFT",
    ]


@pytest.mark.parametrize("padded", [" MSFT", "MSFT ", "MSFT\n", "ﬁ", "ß"])
def test_subscribe_refuses_what_the_schema_pattern_refuses(staff_client, padded):
    """REST symbols are ASCII without surrounding spaces (case-insensitive): the
    OpenAPI pattern says exactly that, so what the schema refuses is refused here
    too (schemathesis' negative_data_rejection), naming the value."""
    response = post_json(staff_client, f"{API}/subscribe", ["AAPL", padded])
    assert response.status_code == 400
    assert repr(padded) in response.json()["detail"]
    assert PinnedSubscription.objects.count() == 0


def test_subscribe_accepts_the_object_form(staff_client):
    response = post_json(staff_client, f"{API}/subscribe", {"symbols": ["AAPL"]})
    assert response.status_code == 200
    assert response.json()["symbols"] == ["AAPL"]
    assert response.json()["subscribed_total"] == 1


def test_subscribe_twice_changes_nothing_the_second_time(staff_client):
    post_json(staff_client, f"{API}/subscribe", ["AAPL"])
    response = post_json(staff_client, f"{API}/subscribe", ["AAPL", "aapl"])
    assert response.json()["symbols"] == ["AAPL"]
    assert response.json()["changed"] == []
    assert response.json()["message"] == "Subscribed to 1 symbols"
    assert PinnedSubscription.objects.count() == 1


def test_unsubscribe_unpins_and_reports_the_documented_shape(staff_client):
    post_json(staff_client, f"{API}/subscribe", ["AAPL", "MSFT", "TSLA"])
    response = post_json(staff_client, f"{API}/unsubscribe", ["AAPL", "msft"])
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "success",
        "message": "Unsubscribed from 2 symbols",
        "symbols": ["AAPL", "MSFT"],
        "subscribed_total": 1,
        "changed": ["AAPL", "MSFT"],
    }
    assert list(PinnedSubscription.objects.values_list("symbol", flat=True)) == ["TSLA"]


def test_subscribed_total_counts_upstream_symbols_the_feed_still_has(staff_client):
    post_json(staff_client, f"{API}/subscribe", ["AAPL", "GOOGL"])
    # The feed picked the pins up, and a client holds MSFT.
    publish_status(subscribed_symbols=["AAPL", "GOOGL", "MSFT"])
    response = post_json(staff_client, f"{API}/unsubscribe", ["GOOGL"])
    # pinned {AAPL} ∪ upstream {AAPL, GOOGL, MSFT}: the feed has not reloaded yet.
    assert response.json()["subscribed_total"] == 3
    publish_status(subscribed_symbols=["AAPL", "MSFT"])
    response = post_json(staff_client, f"{API}/unsubscribe", ["NFLX"])
    assert response.json()["subscribed_total"] == 2
    assert response.json()["changed"] == []


BAD_BODIES = [
    pytest.param("AAPL", ["str", "'AAPL'"], id="string"),
    pytest.param(42, ["int", "42"], id="number"),
    pytest.param(None, ["NoneType"], id="null"),
    pytest.param({"symbol": ["AAPL"]}, ["'symbols'", "'symbol'"], id="wrong-key"),
    pytest.param({"symbols": "AAPL"}, ["str", "'AAPL'"], id="symbols-string"),
    pytest.param([], ["No symbols"], id="empty"),
    pytest.param({"symbols": []}, ["No symbols"], id="empty-object"),
    pytest.param(["AAPL", 7, None], ["strings", "7", "None"], id="non-strings"),
    pytest.param(["AAPL", ["MSFT"]], ["strings", "['MSFT']"], id="nested-list"),
    pytest.param(["AAPL", "A A", "$$$"], ["'A A'", "'$$$'"], id="invalid-symbols"),
    pytest.param([""], ["''"], id="empty-string"),
    pytest.param([f"S{i}" for i in range(101)], ["101", "100"], id="too-many"),
]


@pytest.mark.parametrize("path", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize(("body", "named"), BAD_BODIES)
def test_bad_bodies_are_400_naming_the_problem(staff_client, path, body, named):
    response = post_json(staff_client, f"{API}/{path}", body)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    for fragment in named:
        assert fragment in detail, detail
    assert PinnedSubscription.objects.count() == 0


def test_exactly_100_symbols_is_allowed(staff_client):
    response = post_json(
        staff_client, f"{API}/subscribe", [f"S{i}" for i in range(100)]
    )
    assert response.status_code == 200
    assert PinnedSubscription.objects.count() == 100


@pytest.mark.parametrize("raw", ['["AAPL", ', "not json", '{"symbols": [NaN]}'])
def test_malformed_json_is_400(staff_client, raw):
    response = staff_client.post(
        f"{API}/subscribe", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("raw", ["", "{}"])
def test_an_empty_body_is_400(staff_client, raw):
    response = staff_client.post(
        f"{API}/subscribe", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_invalid_utf8_is_400(staff_client):
    response = staff_client.post(
        f"{API}/subscribe", b"\xff\xfe[", content_type="application/json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()


def test_a_form_body_is_415_naming_the_media_type(staff_client):
    response = staff_client.post(f"{API}/subscribe", {"symbols": "AAPL"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


@pytest.mark.parametrize("path", ["subscribe", "unsubscribe"])
def test_get_on_write_endpoints_is_405(staff_client, path):
    assert staff_client.get(f"{API}/{path}").status_code == 405


# --- who may call what ----------------------------------------------------------------

READS = ["status", "cache", "cache/AAPL"]


@pytest.mark.parametrize("path", READS)
def test_reads_are_open_to_anonymous_when_allowed(client, path):
    seed_price("AAPL")
    assert client.get(f"{API}/{path}").status_code == 200


@pytest.mark.parametrize("path", READS)
def test_reads_refuse_anonymous_when_not_allowed(client, anonymous_refused, path):
    seed_price("AAPL")
    response = client.get(f"{API}/{path}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("path", READS)
def test_reads_allow_a_plain_user_session_when_anonymous_is_refused(
    client, anonymous_refused, path
):
    seed_price("AAPL")
    client.force_login(make_user())
    assert client.get(f"{API}/{path}").status_code == 200


@pytest.mark.parametrize("path", READS)
def test_reads_allow_a_plain_user_token_when_anonymous_is_refused(
    client, anonymous_refused, path
):
    seed_price("AAPL")
    headers = {"Authorization": f"Token {make_token(make_user())}"}
    assert client.get(f"{API}/{path}", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["subscribe", "unsubscribe"])
def test_writes_refuse_anonymous_even_when_anonymous_reads_are_allowed(client, path):
    response = post_json(client, f"{API}/{path}", ["AAPL"])
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()
    assert PinnedSubscription.objects.count() == 0


@pytest.mark.parametrize("path", ["subscribe", "unsubscribe"])
def test_writes_refuse_a_plain_user_session(client, path):
    client.force_login(make_user())
    response = post_json(client, f"{API}/{path}", ["AAPL"])
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]


def test_writes_refuse_a_non_staff_token(client):
    headers = {"Authorization": f"Token {make_token(make_user())}"}
    response = post_json(client, f"{API}/subscribe", ["AAPL"], headers=headers)
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]
    assert PinnedSubscription.objects.count() == 0


def test_writes_refuse_an_unknown_token(client):
    headers = {"Authorization": "Token not-a-real-token"}
    response = post_json(client, f"{API}/subscribe", ["AAPL"], headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Invalid token."


def test_writes_accept_a_staff_token_without_csrf(token_headers):
    client = Client(enforce_csrf_checks=True)
    response = post_json(client, f"{API}/subscribe", ["AAPL"], headers=token_headers)
    assert response.status_code == 200
    assert PinnedSubscription.objects.get().created_by.username == "staff"


def test_staff_session_needs_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    response = post_json(client, f"{API}/subscribe", ["AAPL"])
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert PinnedSubscription.objects.count() == 0

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = post_json(
        client, f"{API}/subscribe", ["AAPL"], headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert PinnedSubscription.objects.count() == 1


def test_an_inactive_staff_users_token_is_refused(client, staff, token_headers):
    staff.is_active = False
    staff.save()
    response = post_json(client, f"{API}/subscribe", ["AAPL"], headers=token_headers)
    assert response.status_code == 401


# --- the guide's curl commands --------------------------------------------------------


def test_guide_curl_commands_produce_the_documented_shapes(token_headers):
    """Section "수동 테스트 (cURL)": the same URLs, bodies and headers, as curl sends
    them (no trailing slash, no redirects), with a staff token for the write."""
    publish_status(subscribed_symbols=["AAPL", "MSFT"])
    seed_price("AAPL")
    curl = Client()

    health = curl.get(f"{API}/health")
    assert health.status_code == 200
    assert HEALTH_KEYS <= health.json().keys()

    status = curl.get(f"{API}/status")
    assert status.status_code == 200
    assert {"timestamp", "connection_status", "cached_data"} <= status.json().keys()

    subscribe = curl.post(
        f"{API}/subscribe",
        data='["AAPL", "MSFT"]',
        content_type="application/json",
        headers=token_headers,
    )
    assert subscribe.status_code == 200
    assert subscribe.json() == {
        "status": "success",
        "message": "Subscribed to 2 symbols",
        "symbols": ["AAPL", "MSFT"],
        "subscribed_total": 2,
        "changed": ["AAPL", "MSFT"],
    }

    cache = curl.get(f"{API}/cache")
    assert cache.status_code == 200
    assert cache.json()["total"] == 1
    assert cache.json()["data"]["AAPL"]["type"] == "Q"

    one = curl.get(f"{API}/cache/AAPL")
    assert one.status_code == 200
    assert one.json()["data"]["symbol"] == "AAPL"
