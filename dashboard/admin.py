from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from dashboard.models import Watchlist, WatchlistItem


class WatchlistItemInline(admin.TabularInline):
    model = WatchlistItem
    extra = 1
    fields = ["symbol", "position"]
    ordering = ["position", "id"]


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
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
