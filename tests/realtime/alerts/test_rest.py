"""REST for alerts: token users' CRUD of their own alerts and their events."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from realtime.alerts import services
from realtime.alerts.evaluator import AlertSpec, Firing
from realtime.api.exceptions import json_csrf_failure
from tests.factories import make_token, make_user

pytestmark = pytest.mark.django_db

BASE = "/api/v2/realtime/alerts"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    return client


def test_crud_of_ones_own_alerts():
    user = make_user()
    api = client_for(user)
    created = api.post(
        BASE,
        {"symbol": "msft", "condition": "crosses_below", "threshold": 400.5},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["symbol"], body["threshold"], body["frequency"]) == (
        "MSFT",
        400.5,
        "once",
    )
    pk = body["id"]
    assert api.get(BASE).json()["count"] == 1
    paused = api.patch(f"{BASE}/{pk}", {"active": False}, format="json")
    assert paused.status_code == 200 and paused.json()["active"] is False
    assert api.delete(f"{BASE}/{pk}").status_code == 204
    assert api.get(f"{BASE}/{pk}").status_code == 404


def test_bad_values_are_400_naming_the_field_and_others_alerts_are_404():
    owner, other = make_user(), make_user()
    api = client_for(owner)
    bad = api.post(
        BASE, {"symbol": "AAPL", "condition": "up", "threshold": 1}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["detail"].startswith("condition")
    refused = api.post(
        BASE,
        {
            "symbol": "AAPL",
            "condition": "crosses_above",
            "threshold": 1,
            "webhook_url": "http://10.0.0.1/hook",
        },
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("webhook_url")
    alert = services.alert_create(
        owner=other, symbol="AAPL", condition="crosses_above", threshold=1
    )
    assert api.get(f"{BASE}/{alert.pk}").status_code == 404
    assert api.delete(f"{BASE}/{alert.pk}").status_code == 404


def test_anonymous_gets_401():
    assert APIClient().get(BASE).status_code == 401


def test_events_list_shows_ones_own_events_newest_first():
    user = make_user()
    alert = services.alert_create(
        owner=user,
        symbol="AAPL",
        condition="crosses_above",
        threshold=200,
        frequency="every_cross",
    )
    spec = AlertSpec(alert.pk, user.pk, "AAPL", "crosses_above", 200.0, "every_cross")
    services.alert_events_record(
        firings=[Firing(spec, 200.5, 200.5, 1, seq, "ep") for seq in (3, 9)]
    )
    api = client_for(user)
    events = api.get(f"{BASE}/events", {"alert": alert.pk}).json()
    assert events["count"] == 2
    assert {e["seq"] for e in events["events"]} == {3, 9}
    assert client_for(make_user()).get(f"{BASE}/events").json()["count"] == 0
    assert api.get(f"{BASE}/events", {"limit": "x"}).status_code == 400


def test_text_fields_take_json_strings_only_and_no_webhook_reads_as_empty():
    """Each field takes only its schema's JSON type (0 is not stored as "0" or
    False, "1.5" is not a number); an alert without a webhook answers "" (the
    response schema is a plain string, not a ``uri``)."""
    api = client_for(make_user())
    for field, value in [
        ("note", 0),
        ("symbol", 0),
        ("note", 1.5),
        ("active", 0),
        ("active", "yes"),
        ("threshold", "1.5"),
        ("threshold", True),
        ("hysteresis", "0"),
    ]:
        body = {"symbol": "AAPL", "condition": "crosses_above", "threshold": 1}
        body[field] = value
        response = api.post(BASE, body, format="json")
        assert response.status_code == 400, (field, value, response.json())
        assert response.json()["detail"].startswith(field)
    created = api.post(
        BASE,
        {"symbol": "AAPL", "condition": "crosses_above", "threshold": 1},
        format="json",
    )
    assert created.status_code == 201 and created.json()["webhook_url"] == ""
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    field = schema["components"]["schemas"]["Alert"]["properties"]["webhook_url"]
    assert "format" not in field


def test_a_session_write_without_csrf_under_api_is_json_403_and_unknown_paths_404():
    """A browser session (cookie, no CSRF token) gets JSON, as every API error:
    an unknown path is a 404 (nothing to protect), a failed check a JSON 403."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user())
    unknown = browser.delete(f"{BASE}/null,null")
    assert unknown.status_code == 404
    assert unknown["Content-Type"] == "application/json"
    request = RequestFactory().post(BASE)
    answer = json_csrf_failure(request, reason="CSRF token missing.")
    assert answer.status_code == 403 and answer["Content-Type"] == "application/json"
    assert "CSRF token missing" in answer.content.decode()
