"""A new feed leader's alert engine: it evaluates the history tail the killed
leader left (a crossing it had not written is written, one it had is not written
twice), and it resumes the webhook deliveries left pending
(realtime/alerts/engine.py ``start``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone

from realtime.alerts import services
from realtime.alerts.engine import AlertEngine
from realtime.alerts.evaluator import AlertSpec, Firing
from realtime.alerts.models import AlertEvent, DeliveryState
from realtime.alerts.webhook import WebhookConfig
from realtime.events import Update
from tests.factories import make_user
from tests.live import async_wait_until
from tests.realtime.alerts.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

EPOCH = "ep-takeover"
T0 = 1_700_000_000_000


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


def update(seq: int, price: float, symbol: str = "AAPL") -> Update:
    text = orjson.dumps(
        {
            "type": "price_update",
            "symbol": symbol,
            "timestamp": T0 + seq,
            "data_type": "T",
            "last_price": price,
            "seq": seq,
        }
    ).decode()
    return Update(symbol, seq, EPOCH, text, T0 + seq, True)


def engine(tail: list[Update]) -> AlertEngine:
    async def history_tail() -> list[Update]:
        return tail

    return AlertEngine(
        epoch=lambda: EPOCH, route=None, webhook=config(), history_tail=history_tail
    )


async def events() -> list[AlertEvent]:
    return await sync_to_async(lambda: list(AlertEvent.objects.order_by("seq")))()


async def test_a_crossing_in_the_history_tail_is_written_once_across_takeovers():
    user = await sync_to_async(make_user)()
    alert = await sync_to_async(services.alert_create)(
        owner=user,
        symbol="AAPL",
        condition="crosses_above",
        threshold=200,
        frequency="every_cross",
    )
    # The killed leader recorded these updates; the crossing is at seq 3.
    tail = [update(1, 198.0), update(2, 199.5), update(3, 200.5), update(4, 201.0)]
    first = engine(tail)
    await first.start()
    try:
        await async_wait_until(lambda: first.batches_written >= 1, 60, "the write")
    finally:
        await first.aclose()
    written = await events()
    assert [(e.alert_id, e.seq, e.epoch) for e in written] == [(alert.pk, 3, EPOCH)]
    assert written[0].tick_ts == T0 + 3

    # Another takeover replays the same tail: evaluated again, not written again.
    second = engine(tail)
    await second.start()
    try:
        assert second.fired == 1
        await async_wait_until(lambda: second.batches_written >= 1, 60, "the write")
    finally:
        await second.aclose()
    assert [e.pk for e in await events()] == [written[0].pk]


async def test_the_tail_only_positions_symbols_and_live_ticks_continue_from_it():
    user = await sync_to_async(make_user)()
    await sync_to_async(services.alert_create)(
        owner=user,
        symbol="AAPL",
        condition="crosses_above",
        threshold=200,
        frequency="every_cross",
    )
    eng = engine([update(1, 201.0), update(2, 202.0)])  # already above: no event
    await eng.start()
    try:
        assert eng.fired == 0
        # The next live tick falls below: the tail's position is where it starts.
        assert eng.evaluator.watches["AAPL"].last == 202.0
    finally:
        await eng.aclose()
    assert await events() == []


@override_settings(REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE=True)
async def test_pending_webhook_deliveries_are_resumed_and_stale_ones_closed():
    with Receiver("s3cret") as receiver:
        user = await sync_to_async(make_user)()
        alert = await sync_to_async(services.alert_create)(
            owner=user,
            symbol="AAPL",
            condition="crosses_above",
            threshold=200,
            frequency="every_cross",
            webhook_url=receiver.url,
        )
        spec = AlertSpec(
            alert.pk,
            user.pk,
            "AAPL",
            "crosses_above",
            200.0,
            "every_cross",
            webhook_url=receiver.url,
        )
        # Two events a killed leader wrote but did not deliver: one recent, one
        # fired longer ago than the retry bound.
        record = sync_to_async(services.alert_events_record)
        fresh, stale = [
            (await record(firings=[Firing(spec, 200.5, 200.5, T0, seq, EPOCH)]))[0]
            for seq in (10, 11)
        ]
        await sync_to_async(
            lambda: AlertEvent.objects.filter(pk=stale.pk).update(
                fired_at=timezone.now() - timedelta(hours=2)
            )
        )()
        eng = AlertEngine(epoch=lambda: EPOCH, route=None, webhook=config())
        await eng.start()
        try:
            await async_wait_until(lambda: receiver.received, 60, "the resumed POST")

            async def delivered() -> AlertEvent:
                return await sync_to_async(AlertEvent.objects.get)(pk=fresh.pk)

            for _ in range(3000):
                event = await delivered()
                if event.webhook_state == DeliveryState.DELIVERED:
                    break
                await asyncio.sleep(0.02)
        finally:
            await eng.aclose()
    assert event.webhook_state == DeliveryState.DELIVERED
    assert event.webhook_attempts == 1
    assert len(receiver.received) == 1
    body = receiver.received[0]["body"]
    assert receiver.received[0]["signature_ok"] is True
    assert body["idempotency_key"] == fresh.idempotency_key
    old = await sync_to_async(AlertEvent.objects.get)(pk=stale.pk)
    assert old.webhook_state == DeliveryState.FAILED
    assert "retry bound" in old.webhook_last_error
