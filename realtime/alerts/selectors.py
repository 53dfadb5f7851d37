"""Reads of price alerts: the REST views and the feed's alert engine call these."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from realtime.alerts.evaluator import AlertSpec
from realtime.alerts.models import AlertEvent, PriceAlert


def alert_list(*, owner: AbstractBaseUser) -> QuerySet[PriceAlert]:
    return PriceAlert.objects.filter(owner=owner)


def alert_get(*, owner: AbstractBaseUser, pk: int) -> PriceAlert | None:
    return PriceAlert.objects.filter(owner=owner, pk=pk).first()


def alert_event_list(
    *, owner: AbstractBaseUser, alert_id: int | None = None
) -> QuerySet[AlertEvent]:
    events = AlertEvent.objects.filter(alert__owner=owner)
    if alert_id is not None:
        events = events.filter(alert_id=alert_id)
    return events


def active_alert_specs() -> list[AlertSpec]:
    """Every active alert as the evaluator's plain value. Called by the feed at
    start, on change and periodically; never per tick."""
    rows = PriceAlert.objects.filter(active=True).values(
        "id",
        "owner_id",
        "symbol",
        "condition",
        "threshold",
        "frequency",
        "hysteresis",
        "webhook_url",
    )
    return [
        AlertSpec(
            id=row["id"],
            owner_id=row["owner_id"],
            symbol=row["symbol"],
            condition=row["condition"],
            threshold=float(row["threshold"]),
            frequency=row["frequency"],
            hysteresis=float(row["hysteresis"]),
            webhook_url=row["webhook_url"],
        )
        for row in rows
    ]
