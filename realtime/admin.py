"""Admin for pinned subscriptions; every change tells the feed to reload pins."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from realtime.models import PinnedSubscription
from realtime.services import feed_notify_pins_changed


@admin.register(PinnedSubscription)
class PinnedSubscriptionAdmin(admin.ModelAdmin):
    """Pins edited here reach the feed at once, as pins made through the API do."""

    list_display = ["symbol", "created_by", "created_at"]
    list_select_related = ["created_by"]
    list_filter = ["created_at"]
    search_fields = ["symbol", "created_by__username"]
    ordering = ["symbol"]
    fields = ["symbol", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(
        self,
        request: HttpRequest,
        obj: PinnedSubscription,
        form: ModelForm,
        change: bool,
    ) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        self._notify()

    def delete_model(self, request: HttpRequest, obj: PinnedSubscription) -> None:
        super().delete_model(request, obj)
        self._notify()

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[PinnedSubscription]
    ) -> None:
        super().delete_queryset(request, queryset)
        self._notify()

    @staticmethod
    def _notify() -> None:
        # After the admin's transaction commits, so the feed's reload sees it.
        transaction.on_commit(feed_notify_pins_changed)


# Price alerts' admin lives in their room; imported so the admin site finds it.
import realtime.alerts.admin  # noqa: E402, F401
