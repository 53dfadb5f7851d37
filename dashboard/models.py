"""Per-user watchlists: the symbols the dashboard shows and subscribes to."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from realtime.symbols import SymbolModelMixin


class Watchlist(models.Model):
    """A named, ordered list of symbols owned by one user.

    A user may have several; the dashboard opens the first by ``position``. The
    default one is created lazily on the first dashboard visit
    (``dashboard.services.watchlist_get_or_create_default``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlists"
    )
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "position", "id"]
        constraints = [
            # Also what makes the lazy creation of the default list race-free.
            models.UniqueConstraint(
                fields=["user", "name"], name="dashboard_watchlist_unique_user_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class WatchlistItem(SymbolModelMixin, models.Model):
    """One symbol of a watchlist, stored in its canonical (normalised) form."""

    watchlist = models.ForeignKey(
        Watchlist, on_delete=models.CASCADE, related_name="items"
    )
    symbol = models.CharField(max_length=20)
    position = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["watchlist", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["watchlist", "symbol"],
                name="dashboard_watchlistitem_unique_watchlist_symbol",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class DashboardPreference(models.Model):
    """How one user likes the dashboard laid out, kept on the server so the choice
    follows the person to every browser and tab (localStorage would not)."""

    VIEW_CARDS = "cards"
    VIEW_TABLE = "table"
    VIEW_CHOICES = [(VIEW_CARDS, "Cards"), (VIEW_TABLE, "Table")]
    # The table's sortable columns; "" keeps the watchlist's own order.
    SORT_KEYS = (
        "",
        "symbol",
        "name",
        "last",
        "change",
        "change_pct",
        "bid",
        "ask",
        "time",
        "day_high",
        "day_low",
        "day_volume",
    )
    SORT_DIRS = ("asc", "desc")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="dashboard_preference",
    )
    view = models.CharField(max_length=10, choices=VIEW_CHOICES, default=VIEW_CARDS)
    sort_key = models.CharField(max_length=20, blank=True, default="")
    sort_dir = models.CharField(max_length=4, default="asc")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.view} {self.sort_key} {self.sort_dir}".strip()
