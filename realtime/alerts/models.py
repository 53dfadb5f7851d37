"""Price alerts and the events they fire (registered in the realtime app).

An alert is a *crossing*, never a level: the evaluator (evaluator.py) fires when
the price (or the day's percent change) moves through the threshold, not while
it stays beyond it. ``AlertEvent.idempotency_key`` (alert id, epoch, seq of the
crossing update) is unique, so an update a new feed leader replays after a
takeover can fire again and still be written once.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from realtime.symbols import SymbolModelMixin


class Condition(models.TextChoices):
    CROSSES_ABOVE = "crosses_above", "Price crosses above"
    CROSSES_BELOW = "crosses_below", "Price crosses below"
    PCT_CHANGE_DAY_ABOVE = "pct_change_day_above", "Day change (%) crosses above"
    PCT_CHANGE_DAY_BELOW = "pct_change_day_below", "Day change (%) crosses below"


class Frequency(models.TextChoices):
    ONCE = "once", "Once (then deactivated)"
    ONCE_PER_DAY = "once_per_day", "At most once per trading day"
    EVERY_CROSS = "every_cross", "Every crossing (after re-arming)"


class DeliveryState(models.TextChoices):
    NONE = "none", "No webhook"
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class PriceAlert(SymbolModelMixin, models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="price_alerts"
    )
    symbol = models.CharField(max_length=20)
    condition = models.CharField(max_length=24, choices=Condition.choices)
    threshold = models.DecimalField(max_digits=20, decimal_places=8)
    frequency = models.CharField(
        max_length=16, choices=Frequency.choices, default=Frequency.ONCE
    )
    # Re-arm distance: after firing, the value must move back this far past the
    # threshold before the next crossing counts (price units, or percent points).
    hysteresis = models.DecimalField(
        max_digits=20,
        decimal_places=8,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, default="")
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "active"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hysteresis__gte=0), name="alert_hysteresis_gte_0"
            )
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.condition} {self.threshold}"


class AlertEvent(models.Model):
    alert = models.ForeignKey(
        PriceAlert, on_delete=models.CASCADE, related_name="events"
    )
    symbol = models.CharField(max_length=20)
    condition = models.CharField(max_length=24, choices=Condition.choices)
    threshold = models.DecimalField(max_digits=20, decimal_places=8)
    price = models.DecimalField(max_digits=20, decimal_places=8)
    # The day's percent change at the crossing (pct conditions only).
    value = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    tick_ts = models.BigIntegerField(help_text="Exchange time of the tick (ms)")
    seq = models.BigIntegerField()
    epoch = models.CharField(max_length=64)
    fired_at = models.DateTimeField(auto_now_add=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    webhook_state = models.CharField(
        max_length=12, choices=DeliveryState.choices, default=DeliveryState.NONE
    )
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_last_error = models.CharField(max_length=500, blank=True, default="")
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]

    def __str__(self) -> str:
        return self.idempotency_key


def idempotency_key(alert_id: int, epoch: str, seq: int) -> str:
    """One firing per alert per crossing update (its symbol's epoch and seq)."""
    return f"{alert_id}:{epoch}:{seq}"
