"""Writes of price alerts (HackSoft style: REST views and the admin call these).

Every change that can alter what the feed evaluates tells the feed to reload its
alerts after the transaction commits (``feed.alerts`` on FEED_CHANNEL), as pins
do (realtime/services.py); the feed also reloads them periodically, so a lost
message only delays a change.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from realtime.alerts.evaluator import PCT_ABOVE, PCT_BELOW, Firing
from realtime.alerts.models import (
    AlertEvent,
    Condition,
    DeliveryState,
    Frequency,
    PriceAlert,
    idempotency_key,
)
from realtime.alerts.webhook import InvalidWebhookUrl, check_url
from realtime.events import FEED_CHANNEL, AlertsChangedEvent
from realtime.symbols import normalize_symbol

logger = logging.getLogger(__name__)

PCT_CONDITIONS = (PCT_ABOVE, PCT_BELOW)
# What decides when an alert fires; the admin lists these columns too.
RULE_FIELDS = ("symbol", "condition", "threshold", "frequency", "hysteresis")
EDITABLE = (*RULE_FIELDS, "active", "note", "webhook_url")


class AlertInvalid(ValueError):
    """A field of an alert is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AlertLimitReached(Exception):
    """The owner already has ``REALTIME_MAX_ACTIVE_ALERTS_PER_USER`` active alerts."""


def alert_max_active_per_user() -> int:
    """Every active alert is evaluated by the feed and keeps its symbol
    subscribed upstream: bounded per account."""
    return settings.REALTIME_MAX_ACTIVE_ALERTS_PER_USER


def feed_notify_alerts_changed() -> None:
    """Ask the feed to reload active alerts now; log, never raise."""
    event: AlertsChangedEvent = {"type": "feed.alerts"}
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.send)(FEED_CHANNEL, event)
    except Exception as exc:  # the feed's periodic reload covers a lost message
        logger.warning("event=alerts_notify_failed error=%r", exc)


def _decimal(field: str, raw: Any) -> Decimal:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise AlertInvalid(field, f"{field} must be a number, got {raw!r}") from exc
    if not value.is_finite() or abs(value) >= Decimal("1e12"):
        raise AlertInvalid(field, f"{field} is out of range: {raw!r}")
    return value.quantize(Decimal("1e-8"))


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the editable fields present in ``values``."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in EDITABLE:
            raise AlertInvalid(name, f"unknown field {name!r}")
        if name == "symbol":
            try:
                out[name] = normalize_symbol(raw)
            except ValueError as exc:
                raise AlertInvalid(name, str(exc)) from exc
        elif name == "condition":
            if raw not in Condition.values:
                raise AlertInvalid(
                    name, f"condition must be one of {', '.join(Condition.values)}"
                )
            out[name] = raw
        elif name == "frequency":
            if raw not in Frequency.values:
                raise AlertInvalid(
                    name, f"frequency must be one of {', '.join(Frequency.values)}"
                )
            out[name] = raw
        elif name in ("threshold", "hysteresis"):
            value = _decimal(name, raw)
            if name == "hysteresis" and value < 0:
                raise AlertInvalid(name, f"hysteresis must be >= 0, got {raw!r}")
            out[name] = value
        elif name == "active":
            if not isinstance(raw, bool):
                raise AlertInvalid(name, f"active must be true or false, got {raw!r}")
            out[name] = raw
        elif name == "note":
            if not isinstance(raw, str) or len(raw) > 200:
                raise AlertInvalid(name, "note must be a string of at most 200 chars")
            out[name] = raw
        elif name == "webhook_url":
            if raw in (None, ""):
                out[name] = ""
                continue
            try:
                out[name] = check_url(str(raw))
            except InvalidWebhookUrl as exc:
                raise AlertInvalid(name, str(exc)) from exc
    return out


def _check_limit(owner: AbstractBaseUser, *, excluding: int | None = None) -> None:
    limit = alert_max_active_per_user()
    active = PriceAlert.objects.filter(owner=owner, active=True)
    if excluding is not None:
        active = active.exclude(pk=excluding)
    if active.count() >= limit:
        raise AlertLimitReached(
            f"An account may have at most {limit} active alerts; pause or delete one"
        )


def alert_create(*, owner: AbstractBaseUser, **values: Any) -> PriceAlert:
    """Create an alert (``symbol``, ``condition`` and ``threshold`` required).

    Raises ``AlertInvalid`` (naming the field) and ``AlertLimitReached``.
    """
    for required in ("symbol", "condition", "threshold"):
        if values.get(required) in (None, ""):
            raise AlertInvalid(required, f"{required} is required")
    fields = _clean(values)
    with transaction.atomic():
        if fields.get("active", True):
            _check_limit(owner)
        alert = PriceAlert.objects.create(owner=owner, **fields)
        transaction.on_commit(feed_notify_alerts_changed)
    logger.info(
        "event=alert_created alert_id=%s user_id=%s symbol=%s condition=%s",
        alert.pk,
        owner.pk,
        alert.symbol,
        alert.condition,
    )
    return alert


def alert_update(*, alert: PriceAlert, **values: Any) -> PriceAlert:
    """Change some fields of ``alert``; activating one checks the limit."""
    fields = _clean(values)
    with transaction.atomic():
        if fields.get("active") and not alert.active:
            _check_limit(alert.owner, excluding=alert.pk)
        for name, value in fields.items():
            setattr(alert, name, value)
        alert.save()
        transaction.on_commit(feed_notify_alerts_changed)
    logger.info("event=alert_updated alert_id=%s fields=%s", alert.pk, ",".join(fields))
    return alert


def alert_delete(*, alert: PriceAlert) -> None:
    pk = alert.pk
    with transaction.atomic():
        alert.delete()
        transaction.on_commit(feed_notify_alerts_changed)
    logger.info("event=alert_deleted alert_id=%s", pk)


def alert_events_record(*, firings: list[Firing]) -> list[AlertEvent]:
    """Write one ``AlertEvent`` per firing; return those written now.

    Called by the engine's writer task, off the tick path. A firing whose
    idempotency key is already recorded (an update replayed after a feed
    takeover) or whose alert was deleted meanwhile is skipped. A ``once`` alert
    that fired is deactivated here.
    """
    created: list[AlertEvent] = []
    for firing in firings:
        spec = firing.alert
        key = idempotency_key(spec.id, firing.epoch, firing.seq)
        try:
            with transaction.atomic():
                if not PriceAlert.objects.filter(pk=spec.id).exists():
                    continue
                event = AlertEvent.objects.create(
                    alert_id=spec.id,
                    symbol=spec.symbol,
                    condition=spec.condition,
                    threshold=Decimal(repr(spec.threshold)),
                    price=Decimal(repr(firing.price)).quantize(Decimal("1e-8")),
                    value=(
                        Decimal(repr(firing.value)).quantize(Decimal("1e-8"))
                        if spec.condition in PCT_CONDITIONS
                        else None
                    ),
                    tick_ts=firing.tick_ts,
                    seq=firing.seq,
                    epoch=firing.epoch,
                    idempotency_key=key,
                    webhook_state=(
                        DeliveryState.PENDING
                        if spec.webhook_url
                        else DeliveryState.NONE
                    ),
                )
                if spec.frequency == Frequency.ONCE:
                    PriceAlert.objects.filter(pk=spec.id).update(active=False)
        except IntegrityError:
            logger.info("event=alert_event_duplicate key=%s", key)
            continue
        created.append(event)
        logger.info(
            "event=alert_fired alert_id=%s symbol=%s price=%s key=%s",
            spec.id,
            spec.symbol,
            firing.price,
            key,
        )
    return created


def alert_event_webhook_attempt(
    *, event_id: int, attempt: int, error: str | None, final: bool
) -> None:
    """Record one webhook attempt of an event (state, attempts, last error)."""
    fields: dict[str, Any] = {"webhook_attempts": attempt}
    if error is None:
        fields["webhook_state"] = DeliveryState.DELIVERED
        fields["webhook_delivered_at"] = timezone.now()
        fields["webhook_last_error"] = ""
    else:
        fields["webhook_last_error"] = error[:500]
        fields["webhook_state"] = (
            DeliveryState.FAILED if final else DeliveryState.PENDING
        )
    AlertEvent.objects.filter(pk=event_id).update(**fields)


def alert_events_webhook_take_over(
    *, retry_for: float
) -> tuple[list[tuple[AlertEvent, str, float]], int]:
    """The webhook deliveries a previous feed leadership left ``pending``, for a
    new one to resume: ``(event, url, seconds left of the retry bound)`` each,
    the bound counted from the firing. Those already past it (or whose alert no
    longer has a URL) are closed as failed here; returns how many."""
    now = timezone.now()
    resumable: list[tuple[AlertEvent, str, float]] = []
    expired: list[int] = []
    pending = AlertEvent.objects.filter(
        webhook_state=DeliveryState.PENDING
    ).select_related("alert")
    for event in pending:
        left = retry_for - (now - event.fired_at).total_seconds()
        url = event.alert.webhook_url
        if left <= 0 or not url:
            expired.append(event.pk)
        else:
            resumable.append((event, url, left))
    if expired:
        AlertEvent.objects.filter(
            pk__in=expired, webhook_state=DeliveryState.PENDING
        ).update(
            webhook_state=DeliveryState.FAILED,
            webhook_last_error="retry bound passed before a feed leader resumed it",
        )
        logger.info("event=alert_webhooks_expired events=%d", len(expired))
    return resumable, len(expired)
