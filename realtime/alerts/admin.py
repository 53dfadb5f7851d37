"""Admin for price alerts and their events; every alert change reaches the feed."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from realtime.alerts.models import AlertEvent, PriceAlert
from realtime.alerts.services import RULE_FIELDS, feed_notify_alerts_changed


@admin.register(PriceAlert)
class PriceAlertAdmin(admin.ModelAdmin):
    """Alerts edited here are reloaded by the feed at once, as REST's are."""

    list_display = ["id", "owner", *RULE_FIELDS, "active", "updated_at"]
    list_select_related = ["owner"]
    list_filter = ["active", "condition", "frequency", "created_at"]
    search_fields = ["symbol", "owner__username", "note"]
    readonly_fields = ["created_at", "updated_at"]
    raw_id_fields = ["owner"]

    def save_model(
        self, request: HttpRequest, obj: PriceAlert, form: ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        self._notify()

    def delete_model(self, request: HttpRequest, obj: PriceAlert) -> None:
        super().delete_model(request, obj)
        self._notify()

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[PriceAlert]
    ) -> None:
        super().delete_queryset(request, queryset)
        self._notify()

    @staticmethod
    def _notify() -> None:
        transaction.on_commit(feed_notify_alerts_changed)


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    """Fired events are a record: read-only here."""

    list_display = [
        "id",
        "alert",
        "symbol",
        "price",
        "fired_at",
        "webhook_state",
        "webhook_attempts",
    ]
    list_select_related = ["alert"]
    list_filter = ["webhook_state", "condition", "fired_at"]
    search_fields = ["symbol", "idempotency_key", "alert__owner__username"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
