from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from dashboard.models import DashboardPreference, Watchlist, WatchlistItem
from dashboard.services import (
    WatchlistLimitReached,
    watchlist_check_room,
    watchlist_max_symbols,
)


class WatchlistAdminForm(forms.ModelForm):
    """A new watchlist (or one moved to another user) obeys the per-user limit
    ``watchlist_create`` enforces (REALTIME_MAX_WATCHLISTS_PER_USER)."""

    class Meta:
        model = Watchlist
        fields = ["user", "name", "position"]

    def clean(self) -> dict:
        cleaned = super().clean()
        user = cleaned.get("user")
        moved = self.instance.pk is None or self.instance.user_id != getattr(
            user, "pk", None
        )
        if user is not None and moved:
            try:
                watchlist_check_room(user_id=user.pk)
            except WatchlistLimitReached as exc:
                raise ValidationError(str(exc), code="too_many_watchlists") from exc
        return cleaned


class WatchlistItemFormSet(BaseInlineFormSet):
    """Refuses more symbols than the dashboard may subscribe on one connection,
    the same limit ``watchlist_add_symbol`` enforces: a list the admin saved past
    it showed "not subscribed" symbols with frozen prices that looked live."""

    def clean(self) -> None:
        super().clean()
        limit = watchlist_max_symbols()
        kept = [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if len(kept) > limit:
            raise ValidationError(
                f"A watchlist holds at most {limit} symbols "
                f"(REALTIME_MAX_SYMBOLS_PER_CONNECTION); this one would have "
                f"{len(kept)}. Remove {len(kept) - limit} before saving.",
                code="too_many_symbols",
            )


class WatchlistItemInline(admin.TabularInline):
    model = WatchlistItem
    formset = WatchlistItemFormSet
    extra = 1
    fields = ["symbol", "position"]
    ordering = ["position", "id"]


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
    form = WatchlistAdminForm
    list_display = ["name", "user", "position", "symbol_count", "created"]
    list_select_related = ["user"]
    list_filter = ["created"]
    search_fields = ["name", "user__username", "items__symbol"]
    ordering = ["user__username", "position", "id"]
    raw_id_fields = ["user"]
    readonly_fields = ["created"]
    inlines = [WatchlistItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Watchlist]:
        return super().get_queryset(request).annotate(symbol_count=Count("items"))

    @admin.display(description="symbols", ordering="symbol_count")
    def symbol_count(self, obj: Watchlist) -> int:
        return obj.symbol_count  # type: ignore[attr-defined]


@admin.register(DashboardPreference)
class DashboardPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "view", "sort_key", "sort_dir", "updated"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
