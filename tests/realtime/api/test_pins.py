"""Pinned subscriptions: the services, the feed notification, the admin, and pins
surviving a restart (the feed reads them back from the database)."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.test import Client
from django.urls import reverse

from realtime import services
from realtime.events import FEED_CHANNEL
from realtime.models import PinnedSubscription
from realtime.selectors import pinned_symbols
from realtime.services import pins_add, pins_remove
from realtime.symbols import InvalidSymbol
from tests.factories import make_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def layer():
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield layer
    async_to_sync(layer.flush)()


def feed_messages(layer) -> list[dict]:
    """Drain what was sent to the feed's channel, without ever blocking."""
    messages = []
    while FEED_CHANNEL in layer.channels:
        messages.append(async_to_sync(layer.receive)(FEED_CHANNEL))
    return messages


def test_pins_add_normalises_and_never_duplicates():
    user = make_user()
    assert pins_add(symbols=["aapl", " MSFT", "AAPL"], user=user) == ["AAPL", "MSFT"]
    assert pins_add(symbols=["msft", "TSLA"], user=user) == ["TSLA"]
    assert pinned_symbols() == ["AAPL", "MSFT", "TSLA"]
    assert PinnedSubscription.objects.get(symbol="AAPL").created_by == user


def test_pins_add_by_anonymous_records_no_user():
    from django.contrib.auth.models import AnonymousUser

    pins_add(symbols=["AAPL"], user=AnonymousUser())
    assert PinnedSubscription.objects.get().created_by is None


def test_pins_remove_deletes_only_what_was_pinned():
    pins_add(symbols=["AAPL", "MSFT"], user=None)
    assert pins_remove(symbols=["aapl", "TSLA"], user=None) == ["AAPL"]
    assert pinned_symbols() == ["MSFT"]


def test_services_refuse_invalid_symbols_and_change_nothing():
    with pytest.raises(InvalidSymbol, match="'A A'"):
        pins_add(symbols=["AAPL", "A A"], user=None)
    assert PinnedSubscription.objects.count() == 0


def test_pin_changes_notify_the_feed_after_commit(
    layer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pins_add(symbols=["AAPL"], user=None)
    assert len(callbacks) == 1
    assert feed_messages(layer) == [{"type": "feed.pins"}]

    with django_capture_on_commit_callbacks(execute=True):
        pins_remove(symbols=["AAPL"], user=None)
    assert feed_messages(layer) == [{"type": "feed.pins"}]


def test_no_change_sends_no_notification(layer, django_capture_on_commit_callbacks):
    pins_add(symbols=["AAPL"], user=None)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pins_add(symbols=["AAPL"], user=None)
        pins_remove(symbols=["MSFT"], user=None)
    assert callbacks == []
    assert feed_messages(layer) == []


def test_no_notification_when_the_transaction_rolls_back(
    layer, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                pins_add(symbols=["AAPL"], user=None)
                raise RuntimeError("rollback")
    assert callbacks == []
    assert PinnedSubscription.objects.count() == 0


def test_rest_subscribe_notifies_the_feed(layer, django_capture_on_commit_callbacks):
    headers = {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v2/realtime/subscribe",
            json.dumps(["AAPL", "MSFT"]),
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 200
    assert feed_messages(layer) == [{"type": "feed.pins"}]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v2/realtime/unsubscribe",
            json.dumps({"symbols": ["AAPL"]}),
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 200
    assert feed_messages(layer) == [{"type": "feed.pins"}]
    assert pinned_symbols() == ["MSFT"]


def test_a_channel_layer_failure_never_fails_the_request(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    class BrokenLayer:
        async def send(self, channel, message):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(services, "get_channel_layer", lambda: BrokenLayer())
    headers = {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            "/api/v2/realtime/subscribe",
            json.dumps(["AAPL"]),
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 200
    assert pinned_symbols() == ["AAPL"]
    assert "event=pins_notify_failed" in caplog.text
    assert "redis is down" in caplog.text


def test_a_full_feed_channel_is_logged_not_raised(layer, caplog):
    capacity = layer.get_capacity(FEED_CHANNEL)
    for _ in range(capacity):
        services.feed_notify_pins_changed()
    services.feed_notify_pins_changed()  # one over capacity
    assert "event=pins_notify_failed" in caplog.text
    assert len(feed_messages(layer)) == capacity


@pytest.mark.django_db(transaction=True)
def test_pins_survive_a_restart():
    """The feed reloads pins with ``pinned_symbols`` on a fresh database connection
    (a restarted process, or the worker's ``database_sync_to_async`` thread): they
    come from committed rows, not from anything the pinning process holds."""
    pins_add(symbols=["TSLA", "AAPL"], user=None)
    result: list[list[str]] = []

    def new_process() -> None:
        try:
            result.append(pinned_symbols())
        finally:
            connection.close()

    thread = threading.Thread(target=new_process)
    thread.start()
    thread.join(10)
    assert result == [["AAPL", "TSLA"]]


# --- admin ----------------------------------------------------------------------------


@pytest.fixture
def admin_user_client(client):
    admin = make_user("super", is_staff=True)
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    return client


def test_admin_changelist_lists_and_searches_pins(admin_user_client):
    pins_add(symbols=["AAPL", "MSFT"], user=make_user("carol"))
    url = reverse("admin:realtime_pinnedsubscription_changelist")
    response = admin_user_client.get(url)
    assert response.status_code == 200
    assert b"AAPL" in response.content
    assert b"carol" in response.content
    response = admin_user_client.get(url, {"q": "msf"})
    assert response.context["cl"].result_count == 1


def test_admin_add_normalises_records_the_user_and_notifies(
    admin_user_client, layer, django_capture_on_commit_callbacks
):
    url = reverse("admin:realtime_pinnedsubscription_add")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_user_client.post(url, {"symbol": " brk.b "})
    assert response.status_code == 302, response.content
    pin = PinnedSubscription.objects.get()
    assert pin.symbol == "BRK.B"
    assert pin.created_by.username == "super"
    assert feed_messages(layer) == [{"type": "feed.pins"}]


def test_admin_add_refuses_an_invalid_symbol(admin_user_client):
    url = reverse("admin:realtime_pinnedsubscription_add")
    response = admin_user_client.post(url, {"symbol": "A A"})
    assert response.status_code == 200
    assert b"Invalid symbol" in response.content
    assert PinnedSubscription.objects.count() == 0


def test_admin_delete_notifies_the_feed(
    admin_user_client, layer, django_capture_on_commit_callbacks
):
    pins_add(symbols=["AAPL"], user=None)
    pin = PinnedSubscription.objects.get()
    url = reverse("admin:realtime_pinnedsubscription_delete", args=[pin.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_user_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert PinnedSubscription.objects.count() == 0
    assert feed_messages(layer) == [{"type": "feed.pins"}]


def test_admin_bulk_delete_notifies_the_feed(
    admin_user_client, layer, django_capture_on_commit_callbacks
):
    pins_add(symbols=["AAPL", "MSFT"], user=None)
    url = reverse("admin:realtime_pinnedsubscription_changelist")
    ids = list(PinnedSubscription.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_user_client.post(
            url,
            {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
        )
    assert response.status_code == 302
    assert PinnedSubscription.objects.count() == 0
    assert feed_messages(layer) == [{"type": "feed.pins"}]
