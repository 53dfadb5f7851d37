"""Alert writes and the webhook's rules: validation, the active limit, one event
per idempotency key, SSRF refusal, signing, retry until the receiver is up."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.test import override_settings

from realtime.alerts import services
from realtime.alerts.evaluator import AlertSpec, Firing
from realtime.alerts.models import AlertEvent, DeliveryState, PriceAlert
from realtime.alerts.webhook import (
    InvalidWebhookUrl,
    WebhookConfig,
    check_url,
    deliver,
    resolve_target,
    sign,
    verify,
)
from tests.factories import make_user
from tests.live import free_port
from tests.realtime.alerts.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


def config(**overrides) -> WebhookConfig:
    values = {
        "secret": "s3cret",
        "allow_private": True,
        "timeout": 5.0,
        "max_response_bytes": 1024,
        "retry_for": 60.0,
    }
    values.update(overrides)
    return WebhookConfig(**values)


def test_create_normalises_and_validates_naming_the_field():
    user = make_user()
    alert = services.alert_create(
        owner=user, symbol="aapl", condition="crosses_above", threshold="200.5"
    )
    assert (alert.symbol, alert.threshold, alert.active) == (
        "AAPL",
        Decimal("200.5"),
        True,
    )
    for field, bad in [
        ("condition", "above"),
        ("threshold", "abc"),
        ("frequency", "hourly"),
        ("hysteresis", "-1"),
        ("symbol", "NOT A SYMBOL!"),
    ]:
        values = {"symbol": "AAPL", "condition": "crosses_above", "threshold": 1}
        values[field] = bad
        with pytest.raises(services.AlertInvalid) as info:
            services.alert_create(owner=user, **values)
        assert info.value.field == field


@override_settings(REALTIME_MAX_ACTIVE_ALERTS_PER_USER=2)
def test_active_limit_per_user_counts_only_active_alerts():
    user, other = make_user(), make_user()
    values = {"symbol": "AAPL", "condition": "crosses_above", "threshold": 1}
    first = services.alert_create(owner=user, **values)
    services.alert_create(owner=user, **values)
    with pytest.raises(services.AlertLimitReached):
        services.alert_create(owner=user, **values)
    services.alert_create(owner=other, **values)  # per user
    paused = services.alert_create(owner=user, active=False, **values)
    services.alert_update(alert=first, active=False)
    services.alert_update(alert=paused, active=True)
    with pytest.raises(services.AlertLimitReached):
        services.alert_update(alert=first, active=True)


def test_a_replayed_firing_is_recorded_once_and_a_once_alert_deactivates():
    user = make_user()
    alert = services.alert_create(
        owner=user, symbol="AAPL", condition="crosses_above", threshold=200
    )
    spec = AlertSpec(alert.pk, user.pk, "AAPL", "crosses_above", 200.0, "once")
    firing = Firing(spec, 200.25, 200.25, 1_700_000_000_000, 42, "ep1")
    assert len(services.alert_events_record(firings=[firing])) == 1
    assert services.alert_events_record(firings=[firing]) == []  # replayed
    event = AlertEvent.objects.get()
    assert event.idempotency_key == f"{alert.pk}:ep1:42"
    assert event.price == Decimal("200.25")
    assert event.webhook_state == DeliveryState.NONE
    assert PriceAlert.objects.get(pk=alert.pk).active is False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost:8000/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ],
)
def test_webhook_targets_refused_by_default(url):
    with override_settings(REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE=False):
        with pytest.raises(InvalidWebhookUrl):
            check_url(url)
        with pytest.raises(services.AlertInvalid) as info:
            services.alert_create(
                owner=make_user(),
                symbol="AAPL",
                condition="crosses_above",
                threshold=1,
                webhook_url=url,
            )
        assert info.value.field == "webhook_url"


@pytest.mark.parametrize(
    "url", ["http://0/hook", "http://127.1/hook", "http://2130706433/hook"]
)
def test_ipv4_spellings_only_the_resolver_reads_are_refused_before_connecting(url):
    """Accepted when saved (the schema's pattern allows them, and a name is only
    checked once resolved), refused at the attempt: they resolve to 0.0.0.0 or
    loopback."""
    check_url(url, allow_private=False)
    with pytest.raises(InvalidWebhookUrl):
        resolve_target(url, allow_private=False)


def test_private_targets_allowed_by_the_setting():
    with override_settings(REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE=True):
        assert check_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"
    assert check_url("https://hooks.example.com/x", allow_private=False)


async def test_delivery_to_a_loopback_receiver_is_refused_and_never_sent():
    attempts = []

    async def on_attempt(attempt, error, final):
        attempts.append((attempt, error, final))

    with Receiver("s3cret") as receiver:
        ok = await deliver(
            receiver.url,
            b"{}",
            config(allow_private=False),
            on_attempt=on_attempt,
        )
    assert ok is False
    assert receiver.received == []
    assert len(attempts) == 1 and attempts[0][2] is True
    assert attempts[0][1].startswith("refused:")


def test_signature_covers_timestamp_and_body():
    header = sign("k", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert not verify("k", header, b'{"a":1}')  # too old for the default tolerance
    assert verify("k", header, b'{"a":1}', tolerance=10**10)
    assert not verify("k", header, b'{"a":2}', tolerance=10**10)
    assert not verify("other", header, b'{"a":1}', tolerance=10**10)


async def test_receiver_down_then_up_is_retried_and_delivered_once():
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    attempts = []
    started: list[Receiver] = []

    async def on_attempt(attempt, error, final):
        attempts.append((attempt, error, final))

    async def back_off(seconds: float) -> None:
        # The receiver comes up during the first back-off (a real one, so the
        # retry reaches a real socket); the wait itself is not the test's.
        if not started:
            started.append(Receiver("s3cret", port=port).__enter__())
        await asyncio.sleep(0)

    try:
        ok = await deliver(
            url, b'{"type":"alert"}', config(), on_attempt=on_attempt, sleep=back_off
        )
        assert ok is True
        receiver = started[0]
        assert len(receiver.received) == 1
        assert receiver.received[0]["signature_ok"] is True
        assert receiver.received[0]["body"] == {"type": "alert"}
        assert attempts[0][1] is not None and attempts[0][2] is False
        assert attempts[-1] == (2, None, True)
    finally:
        for receiver in started:
            receiver.__exit__(None, None, None)


async def test_a_receiver_that_keeps_failing_is_given_up_after_the_bound():
    attempts = []

    async def on_attempt(attempt, error, final):
        attempts.append((attempt, error, final))

    now = [0.0]

    async def no_wait(seconds: float) -> None:
        now[0] += seconds  # the back-off's clock, without waiting it out
        await asyncio.sleep(0)

    with Receiver("s3cret", status=500) as receiver:
        ok = await deliver(
            receiver.url,
            b"{}",
            config(retry_for=10.0),
            on_attempt=on_attempt,
            sleep=no_wait,
            clock=lambda: now[0],
        )
    assert ok is False
    # back-off 1, 2, 4 s fit in 10 s; the 8 s one would not: 4 attempts.
    assert [a[0] for a in attempts] == [1, 2, 3, 4]
    assert attempts[-1][2] is True and "HTTP 500" in attempts[-1][1]
    assert len(receiver.received) == 4
