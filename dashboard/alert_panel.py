"""What the dashboard's alerts panel shows: the user's alerts and the events
they fired, as display rows (templates/dashboard/_alerts.html).

Apart from the views so that the page's view (dashboard/views.py) and the alert
endpoints (dashboard/alert_views.py) both render it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser

from dashboard.alert_forms import AlertForm
from dashboard.selectors import format_price
from realtime.alerts import selectors, services
from realtime.alerts.models import AlertEvent, Condition, Frequency, PriceAlert

# How many fired events the bell lists (the REST API pages through all of them).
EVENTS_SHOWN = 50
PCT_CONDITIONS = (Condition.PCT_CHANGE_DAY_ABOVE, Condition.PCT_CHANGE_DAY_BELOW)
# What the panel says for each condition: "AAPL crosses above 200.00".
VERBS = {
    Condition.CROSSES_ABOVE: "crosses above",
    Condition.CROSSES_BELOW: "crosses below",
    Condition.PCT_CHANGE_DAY_ABOVE: "day change crosses above",
    Condition.PCT_CHANGE_DAY_BELOW: "day change crosses below",
}


def _threshold_display(condition: str, value: Decimal | float) -> str:
    if condition in PCT_CONDITIONS:
        return f"{float(value):+,.2f}%"
    return format_price(float(value))


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One of the user's alerts as the panel lists it."""

    id: int
    symbol: str
    condition: str
    verb: str
    threshold: str
    frequency: str
    active: bool
    note: str
    has_webhook: bool


@dataclass(frozen=True, slots=True)
class EventRow:
    """One fired event under the bell."""

    id: int
    symbol: str
    verb: str
    threshold: str
    price: str
    fired_at: datetime


def alert_row(alert: PriceAlert) -> AlertRow:
    """One alert as the panel lists it (also the wording of a view's message)."""
    return AlertRow(
        id=alert.pk,
        symbol=alert.symbol,
        condition=alert.condition,
        verb=VERBS.get(alert.condition, alert.condition),
        threshold=_threshold_display(alert.condition, alert.threshold),
        frequency=Frequency(alert.frequency).label,
        active=alert.active,
        note=alert.note,
        has_webhook=bool(alert.webhook_url),
    )


def _event_row(event: AlertEvent) -> EventRow:
    return EventRow(
        id=event.pk,
        symbol=event.symbol,
        verb=VERBS.get(event.condition, event.condition),
        threshold=_threshold_display(event.condition, event.threshold),
        price=format_price(float(event.price)),
        fired_at=event.fired_at,
    )


def alert_panel_context(*, user: AbstractBaseUser) -> dict[str, object]:
    """What templates/dashboard/_alerts.html renders for ``user``."""
    alerts = [alert_row(a) for a in selectors.alert_list(owner=user)]
    events = [
        _event_row(e) for e in selectors.alert_event_list(owner=user)[:EVENTS_SHOWN]
    ]
    return {
        "alert_rows": alerts,
        "alert_events": events,
        "alert_latest_event_id": events[0].id if events else 0,
        "alert_form": AlertForm(),
        "alert_active_count": sum(1 for a in alerts if a.active),
        "alert_max_active": services.alert_max_active_per_user(),
    }
