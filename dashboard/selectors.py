"""Reads for the dashboard: the user's watchlists and the cards to render.

A card shows the cached latest state at page load, so a visitor sees a price
before the first tick arrives over the WebSocket.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from dashboard.models import DashboardPreference, Watchlist
from realtime.backends import backends
from realtime.feed.state import PriceState
from realtime.universe import NAMES

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


def bar_intervals() -> list[str]:
    """The bar intervals this server streams (``REALTIME_BAR_INTERVALS``), for the
    page to know whether to offer the chart and day statistics at all (bars are
    off by default, and /bars then answers 404 for every symbol)."""
    return list(backends().bar_intervals)


def format_price(value: float | None) -> str:
    """Two decimals like the guide; four below 10 so forex and penny prices move."""
    if value is None:
        return EMPTY
    return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"


def format_size(value: float | None) -> str:
    if value is None:
        return EMPTY
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def format_change(
    value: float | None, *, percent: bool = False, price: float | None = None
) -> str:
    """Signed, like every watchlist people know: +1.23 / -0.45%; an amount has the
    precision of its price (``format_price``: four decimals below 10)."""
    if value is None:
        return EMPTY
    if percent:
        return f"{value:+,.2f}%"
    small = price is not None and abs(price) < 10
    return f"{value:+,.4f}" if small else f"{value:+,.2f}"


@dataclass(frozen=True, slots=True)
class Reference:
    """The slow-moving facts of a symbol: its name and where the day started."""

    name: str = ""
    previous_close: float | None = None
    simulated: bool = False


def _field(source: Any, key: str) -> Any:
    if isinstance(source, dict):
        return source.get(key)
    return getattr(source, key, None)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# How long a page render waits for reference data it does not have yet; the
# page's JS fetches what is still missing from the reference endpoint.
REFERENCE_WAIT_SECONDS = 1.0


def _reference_source() -> Any:
    """``realtime.reference.selectors.get_references_sync`` when the realtime
    reference data exists; ``None`` otherwise (the dashboard then uses the names
    of realtime/universe.py and shows "—" for the change)."""
    try:
        from realtime.reference.selectors import get_references_sync
    except ImportError:
        return None
    return get_references_sync


def _directory_source() -> Any:
    """``realtime.reference.selectors.symbol_directory`` when it exists."""
    try:
        from realtime.reference.selectors import symbol_directory
    except ImportError:
        return None
    return symbol_directory


def reference_for(symbols: Iterable[str]) -> dict[str, Reference]:
    """Names and previous closes from the realtime reference data when that module
    exists; otherwise names from the product's symbol table and no previous
    close (the page shows "—").

    Never raises: the page must render whatever the reference source does.
    """
    symbols = list(symbols)
    result = {s: Reference(name=NAMES.get(s, "")) for s in symbols}
    source = _reference_source()
    if source is None or not symbols:
        return result
    try:
        found = source(symbols, wait=REFERENCE_WAIT_SECONDS)
        items = list(found.items()) if isinstance(found, dict) else []
        for symbol, ref in items:
            if symbol not in result or ref is None:
                continue
            result[symbol] = Reference(
                name=str(_field(ref, "name") or result[symbol].name),
                previous_close=_number(_field(ref, "previous_close")),
                simulated=bool(_field(ref, "simulated")),
            )
    except Exception as exc:  # noqa: BLE001 - reference data is optional for the page
        logger.warning("event=dashboard_reference_failed error=%r", exc)
    return result


def _directory() -> dict[str, str]:
    source = _directory_source()
    if source is None:
        return NAMES
    try:
        entries = {
            str(_field(e, "symbol")): str(_field(e, "name") or "") for e in source()
        }
    except Exception as exc:  # noqa: BLE001 - fall back to the table
        logger.warning("event=dashboard_symbol_directory_failed error=%r", exc)
        return NAMES
    return {**NAMES, **entries}


def symbol_suggestions(query: str, *, limit: int = 10) -> list[dict[str, str]]:
    """Known symbols whose symbol or name contains ``query``, with their names:
    symbol-prefix matches first, then symbol matches, then name matches, each in
    the table's order (best known first: "AA" suggests AAPL before AAL). Known
    means the realtime symbol directory when it exists, plus realtime/universe.py."""
    query = query.strip()
    if not query:
        return []
    directory = _directory()
    upper = query.upper()
    lower = query.lower()
    ranked = sorted(
        (0 if symbol.startswith(upper) else 1 if upper in symbol else 2, i, symbol)
        for i, (symbol, name) in enumerate(directory.items())
        if upper in symbol or lower in name.lower()
    )
    return [{"symbol": s, "name": directory[s]} for _, _, s in ranked[:limit]]


def preference_get(*, user: AbstractBaseUser) -> DashboardPreference:
    """The user's saved layout, or unsaved defaults for someone who never chose."""
    try:
        return DashboardPreference.objects.get(user=user)
    except DashboardPreference.DoesNotExist:
        return DashboardPreference(user=user)


@dataclass(frozen=True, slots=True)
class PriceCard:
    """What ``dashboard/_price_card.html`` renders for one symbol."""

    symbol: str
    state: PriceState | None
    reference: Reference = field(default_factory=Reference)

    @property
    def name(self) -> str:
        return self.reference.name

    @property
    def previous_close(self) -> float | None:
        return self.reference.previous_close

    @property
    def change(self) -> float | None:
        if self.last_price is None or not self.previous_close:
            return None
        return self.last_price - self.previous_close

    @property
    def change_pct(self) -> float | None:
        change = self.change
        return None if change is None else change / self.previous_close * 100

    @property
    def direction(self) -> str:
        change = self.change
        if change is None or change == 0:
            return "flat"
        return "up" if change > 0 else "down"

    @property
    def change_display(self) -> str:
        return format_change(self.change, price=self.last_price)

    @property
    def change_pct_display(self) -> str:
        return format_change(self.change_pct, percent=True)

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
        return backends().cache.get(symbol)
    except (redis.RedisError, OSError) as exc:
        # The page must render without prices rather than fail; the socket fills in.
        logger.warning(
            "event=dashboard_cache_read_failed symbol=%s error=%r", symbol, exc
        )
        return None


def price_card(*, symbol: str) -> PriceCard:
    return PriceCard(
        symbol=symbol,
        state=_cached_state(symbol),
        reference=reference_for([symbol])[symbol],
    )


def watchlist_cards(*, watchlist: Watchlist) -> list[PriceCard]:
    symbols = watchlist_symbols(watchlist=watchlist)
    references = reference_for(symbols)
    return [
        PriceCard(symbol=s, state=_cached_state(s), reference=references[s])
        for s in symbols
    ]
