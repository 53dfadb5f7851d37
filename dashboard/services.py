"""Writes to watchlists (HackSoft style: views and the admin's actions call these).

Symbol rules are realtime's (``realtime.symbols``); they are never restated here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from dashboard.models import Watchlist, WatchlistItem
from realtime.symbols import normalize_symbol

logger = logging.getLogger(__name__)

DEFAULT_WATCHLIST_NAME = "My watchlist"
# The guide's React example subscribes to these on open; a new user sees them.
DEFAULT_WATCHLIST_SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "GOOGL", "AMZN", "TSLA")


class WatchlistFull(Exception):
    """Adding would exceed what one dashboard connection may subscribe to."""


def watchlist_max_symbols() -> int:
    """The dashboard subscribes a whole watchlist on one WebSocket connection, so a
    watchlist may not hold more symbols than the per-connection limit."""
    return settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION


def watchlist_get_or_create_default(*, user: AbstractBaseUser) -> Watchlist:
    """The user's first watchlist; on first use, a new one with the default symbols.

    Two first visits at once (two tabs) both reach ``get_or_create``; the unique
    (user, name) constraint lets exactly one of them create the list.
    """
    existing = Watchlist.objects.filter(user=user).order_by("position", "id").first()
    if existing is not None:
        return existing
    with transaction.atomic():
        watchlist, created = Watchlist.objects.get_or_create(
            user=user, name=DEFAULT_WATCHLIST_NAME
        )
        if created:
            WatchlistItem.objects.bulk_create(
                WatchlistItem(watchlist=watchlist, symbol=symbol, position=index)
                for index, symbol in enumerate(DEFAULT_WATCHLIST_SYMBOLS)
            )
            logger.info(
                "event=watchlist_default_created user_id=%s watchlist_id=%s",
                user.pk,
                watchlist.pk,
            )
    return watchlist


def watchlist_add_symbol(
    *, watchlist: Watchlist, symbol: str
) -> tuple[WatchlistItem, bool]:
    """Append ``symbol`` to the watchlist; return ``(item, created)``.

    Adding a symbol already present is not an error: the existing item comes back
    with ``created=False``. Raises ``InvalidSymbol`` (message names the value) and
    ``WatchlistFull``.
    """
    symbol = normalize_symbol(symbol)
    existing = WatchlistItem.objects.filter(watchlist=watchlist, symbol=symbol).first()
    if existing is not None:
        return existing, False
    limit = watchlist_max_symbols()
    if watchlist.items.count() >= limit:
        raise WatchlistFull(
            f"Cannot add {symbol}: a watchlist holds at most {limit} symbols"
        )
    next_position = (watchlist.items.aggregate(m=Max("position"))["m"] or 0) + 1
    try:
        with transaction.atomic():
            item = WatchlistItem.objects.create(
                watchlist=watchlist, symbol=symbol, position=next_position
            )
    except IntegrityError:
        # The same symbol added from another tab between our check and insert.
        return WatchlistItem.objects.get(watchlist=watchlist, symbol=symbol), False
    logger.info(
        "event=watchlist_symbol_added watchlist_id=%s symbol=%s", watchlist.pk, symbol
    )
    return item, True


def watchlist_remove_symbol(*, watchlist: Watchlist, symbol: str) -> bool:
    """Remove ``symbol``; return whether it was there. Raises ``InvalidSymbol``."""
    symbol = normalize_symbol(symbol)
    deleted, _ = WatchlistItem.objects.filter(
        watchlist=watchlist, symbol=symbol
    ).delete()
    if deleted:
        logger.info(
            "event=watchlist_symbol_removed watchlist_id=%s symbol=%s",
            watchlist.pk,
            symbol,
        )
    return bool(deleted)
