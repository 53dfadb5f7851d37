"""REST for alerts: token users' CRUD of their own alerts and their events."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from realtime.alerts import services
from realtime.alerts.evaluator import AlertSpec, Firing
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


def test_strings_must_be_strings_and_an_unknown_api_path_is_json_404():
    """Found by schemathesis: a JSON number for ``note`` was stored as its text
    (likewise ``0`` taken as false, ``"1.5"`` as a number), and a DELETE with a
    session cookie to an unknown path got the HTML CSRF page instead of the
    API's JSON 404."""
    api = client_for(make_user())
    body = {"symbol": "AAPL", "condition": "crosses_above", "threshold": 1}
    for field, bad in [
        ("note", 0),
        ("symbol", 7),
        ("webhook_url", 1),
        ("active", 0),
        ("active", "true"),
        ("threshold", "1.5"),
        ("threshold", True),
        ("hysteresis", "0"),
    ]:
        response = api.post(BASE, {**body, field: bad}, format="json")
        assert response.status_code == 400, (field, response.json())
        assert response.json()["detail"].startswith(f"{field}:")
    created = api.post(BASE, body, format="json").json()
    assert created["webhook_url"] == ""  # a plain string in the schema, not a uri
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.cookies["sessionid"] = "not-a-session"
    missing = csrf_client.delete(f"{BASE}/null,null")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/json")
