"""Reads for the dashboard: the user's watchlists and the cards to render.

A card shows the cached latest state at page load, so a visitor sees a price
before the first tick arrives over the WebSocket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from dashboard.models import Watchlist
from realtime.feed.cache import get_tick_cache
from realtime.feed.state import PriceState

logger = logging.getLogger(__name__)

EMPTY = "\u2014"  # an em dash where a value has never been seen


def watchlist_list(*, user: AbstractBaseUser) -> QuerySet[Watchlist]:
    return Watchlist.objects.filter(user=user).order_by("position", "id")


def watchlist_get(*, user: AbstractBaseUser, watchlist_id: int) -> Watchlist:
    """The user's watchlist with that id; 404 for anyone else's."""
    return get_object_or_404(Watchlist, pk=watchlist_id, user=user)


def watchlist_symbols(*, watchlist: Watchlist) -> list[str]:
    return list(
        watchlist.items.order_by("position", "id").values_list("symbol", flat=True)
    )


def format_price(value: float | None) -> str:
    """Two decimals like the guide; four below 10 so forex and penny prices move."""
    if value is None:
        return EMPTY
    return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"


def format_size(value: float | None) -> str:
    if value is None:
        return EMPTY
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


@dataclass(frozen=True, slots=True)
class PriceCard:
    """What ``dashboard/_price_card.html`` renders for one symbol."""

    symbol: str
    state: PriceState | None

    @property
    def last_price(self) -> float | None:
        return self.state.last_price if self.state else None

    @property
    def last_price_display(self) -> str:
        return format_price(self.last_price)

    @property
    def ask_price_display(self) -> str:
        return format_price(self.state.ask_price if self.state else None)

    @property
    def bid_price_display(self) -> str:
        return format_price(self.state.bid_price if self.state else None)

    @property
    def ask_size_display(self) -> str:
        return format_size(self.state.ask_size if self.state else None)

    @property
    def bid_size_display(self) -> str:
        return format_size(self.state.bid_size if self.state else None)

    @property
    def updated_at(self) -> datetime | None:
        if self.state is None:
            return None
        return datetime.fromtimestamp(self.state.timestamp / 1000, tz=UTC)


def _cached_state(symbol: str) -> PriceState | None:
    try:
        return get_tick_cache().get(symbol)
    except (redis.RedisError, OSError) as exc:
        # The page must render without prices rather than fail; the socket fills in.
        logger.warning(
            "event=dashboard_cache_read_failed symbol=%s error=%r", symbol, exc
        )
        return None


def price_card(*, symbol: str) -> PriceCard:
    return PriceCard(symbol=symbol, state=_cached_state(symbol))


def watchlist_cards(*, watchlist: Watchlist) -> list[PriceCard]:
    return [price_card(symbol=s) for s in watchlist_symbols(watchlist=watchlist)]
