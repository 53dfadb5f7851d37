"""Server-side subscriptions that hold with no client connected and survive restarts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from realtime.symbols import SymbolModelMixin


class PinnedSubscription(SymbolModelMixin, models.Model):
    symbol = models.CharField(max_length=20, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["symbol"]
        verbose_name = "pinned subscription"

    def __str__(self) -> str:
        return self.symbol


# Price alerts live in their own room (realtime/alerts/); imported here so the
# realtime app registers them and their one migration stays in realtime/.
from realtime.alerts.models import AlertEvent, PriceAlert  # noqa: E402, F401
