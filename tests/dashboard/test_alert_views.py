"""The dashboard's price alert endpoints (issue 25, dashboard part): create from
the panel's form (fetch() and plain posts), the per-user active limit, pause and
resume, delete, someone else's alert, the panel on the page and its lists."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from realtime.alerts.models import AlertEvent, PriceAlert

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
NEW = {
    "symbol": "aapl",
    "condition": "crosses_above",
    "threshold": "201.5",
    "frequency": "every_cross",
    "note": "take profit",
}


def create(client: Client, **fields: str):  # noqa: ANN201 - a test response
    return client.post(reverse("dashboard:alert-new"), {**NEW, **fields}, **JSON)


def test_create_stores_the_alert_and_answers_the_lists(user_client, user) -> None:
    response = create(user_client)
    assert response.status_code == 201, response.content
    body = response.json()
    alert = PriceAlert.objects.get(pk=body["id"])
    assert (alert.owner, alert.symbol, alert.condition) == (
        user,
        "AAPL",
        "crosses_above",
    )
    assert alert.threshold == Decimal("201.5")
    assert alert.frequency == "every_cross" and alert.active
    assert alert.note == "take profit"
    assert body["message"] == "Alert set: AAPL crosses above 201.50."
    assert f'data-alert-id="{alert.pk}"' in body["html"]
    assert "take profit" in body["html"]
    assert body["active_count"] == 1


def test_a_plain_form_post_redirects_home_with_a_message(user_client) -> None:
    response = user_client.post(reverse("dashboard:alert-new"), NEW, follow=True)
    assert response.redirect_chain == [(reverse("dashboard:home"), 302)]
    html = response.content.decode()
    assert "Alert set: AAPL crosses above 201.50." in html
    assert 'class="alert-item" data-alert-id=' in html


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"threshold": "abc"}, "Threshold:"),
        ({"threshold": ""}, "Threshold:"),
        ({"condition": "crosses_sideways"}, "When:"),
        ({"frequency": "hourly"}, "Frequency:"),
        ({"symbol": "NOT A SYMBOL!"}, "symbol:"),
        ({"webhook_url": "http://127.0.0.1/hook"}, "webhook_url:"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url:"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(user_client, fields, named) -> None:
    response = create(user_client, **fields)
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]
    assert not PriceAlert.objects.exists()


def test_the_active_limit_refuses_a_new_alert_and_a_resume(
    user_client, user, settings
) -> None:
    settings.REALTIME_MAX_ACTIVE_ALERTS_PER_USER = 1
    assert create(user_client).status_code == 201
    refused = create(user_client, symbol="MSFT")
    assert refused.status_code == 409
    assert "at most 1 active alerts" in refused.json()["error"]
    # A paused one may be created and is not counted; resuming it is refused.
    paused = PriceAlert.objects.create(
        owner=user,
        symbol="MSFT",
        condition="crosses_below",
        threshold=Decimal("300"),
        active=False,
    )
    url = reverse("dashboard:alert-active", args=[paused.pk])
    response = user_client.post(url, {"active": "true"}, **JSON)
    assert response.status_code == 409
    paused.refresh_from_db()
    assert paused.active is False


def test_pause_and_resume(user_client, user) -> None:
    alert_id = create(user_client).json()["id"]
    url = reverse("dashboard:alert-active", args=[alert_id])
    response = user_client.post(url, {"active": "false"}, **JSON)
    assert response.status_code == 200
    assert response.json()["message"] == "Paused the alert on AAPL."
    assert PriceAlert.objects.get(pk=alert_id).active is False
    assert "Resume the alert on AAPL" in response.json()["html"]
    response = user_client.post(url, {"active": "true"}, **JSON)
    assert response.json()["active"] is True
    assert PriceAlert.objects.get(pk=alert_id).active is True
    assert user_client.post(url, {"active": "maybe"}, **JSON).status_code == 400


def test_delete_removes_the_alert_and_its_events(user_client) -> None:
    alert_id = create(user_client).json()["id"]
    AlertEvent.objects.create(
        alert_id=alert_id,
        symbol="AAPL",
        condition="crosses_above",
        threshold=Decimal("201.5"),
        price=Decimal("201.6"),
        tick_ts=1,
        seq=1,
        epoch="e",
        idempotency_key=f"{alert_id}:e:1",
    )
    response = user_client.post(
        reverse("dashboard:alert-delete", args=[alert_id]), **JSON
    )
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    assert not PriceAlert.objects.filter(pk=alert_id).exists()
    assert not AlertEvent.objects.exists()


def test_someone_elses_alert_is_a_404(user_client, make_user) -> None:
    other = Client()
    other.force_login(make_user("bob"))
    alert_id = create(other).json()["id"]
    for name, data in [("alert-active", {"active": "false"}), ("alert-delete", {})]:
        url = reverse(f"dashboard:{name}", args=[alert_id])
        assert user_client.post(url, data, **JSON).status_code == 404
    assert PriceAlert.objects.get(pk=alert_id).active is True


def test_alert_endpoints_need_a_session(client: Client) -> None:
    response = client.post(reverse("dashboard:alert-new"), NEW, **JSON)
    assert response.status_code == 401
    assert response.json()["session_ended"] is True
    assert client.get(reverse("dashboard:alerts"), **JSON).status_code == 401
    assert not PriceAlert.objects.exists()


def test_the_page_has_the_panel_and_a_bell_button_per_card(user_client, user) -> None:
    alert_id = create(user_client).json()["id"]
    AlertEvent.objects.create(
        alert_id=alert_id,
        symbol="AAPL",
        condition="crosses_above",
        threshold=Decimal("201.5"),
        price=Decimal("201.62"),
        tick_ts=1,
        seq=7,
        epoch="e",
        idempotency_key=f"{alert_id}:e:7",
    )
    html = user_client.get(reverse("dashboard:home")).content.decode()
    assert 'id="alerts-panel"' in html
    assert 'aria-label="Set a price alert on AAPL"' in html
    assert "<strong>AAPL</strong> crosses above 201.50: price 201.62" in html
    assert "dashboard/alerts.css" in html
    # CSP: no inline script or style on the page.
    assert "<script>" not in html and " style=" not in html and "<style" not in html


def test_the_panel_endpoint_lists_only_the_users_alerts(user_client, make_user) -> None:
    create(user_client)
    other = Client()
    other.force_login(make_user("bob"))
    create(other, symbol="TSLA")
    body = user_client.get(reverse("dashboard:alerts"), **JSON).json()
    assert "AAPL" in body["html"] and "TSLA" not in body["html"]
    assert body["latest_event_id"] == 0
