"""Writes to watchlists (HackSoft style: views and the admin's actions call these).

Symbol rules are realtime's (``realtime.symbols``); they are never restated here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from dashboard.models import DashboardPreference, Watchlist, WatchlistItem
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
    *, watchlist: Watchlist, symbol: str, index: int | None = None
) -> tuple[WatchlistItem, bool]:
    """Append ``symbol`` to the watchlist (or insert it at ``index``, which is how
    the dashboard's Undo puts a removed symbol back where it was); return
    ``(item, created)``.

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
    if index is not None:
        _reorder(watchlist, item.symbol, index)
        item.refresh_from_db()
    logger.info(
        "event=watchlist_symbol_added watchlist_id=%s symbol=%s", watchlist.pk, symbol
    )
    return item, True


def _reorder(watchlist: Watchlist, symbol: str, index: int) -> list[str]:
    """Put ``symbol`` at ``index`` (clamped) and renumber the positions 0..n-1."""
    items = list(watchlist.items.order_by("position", "id"))
    moving = next(item for item in items if item.symbol == symbol)
    items.remove(moving)
    items.insert(max(0, min(index, len(items))), moving)
    for position, item in enumerate(items):
        item.position = position
    WatchlistItem.objects.bulk_update(items, ["position"])
    return [item.symbol for item in items]


class WatchlistNameTaken(Exception):
    """The user already has a watchlist with that name."""


class WatchlistLimitReached(Exception):
    """The user already has ``REALTIME_MAX_WATCHLISTS_PER_USER`` watchlists."""


def watchlist_max_per_user() -> int:
    """Each watchlist is a row, a tab and a broadcast to every open tab: bounded so
    that one account cannot grow them (and every page that lists them) forever."""
    return settings.REALTIME_MAX_WATCHLISTS_PER_USER


def watchlist_check_room(*, user_id: object) -> None:
    """Raise ``WatchlistLimitReached`` if the user may not have one more list.

    Called by ``watchlist_create`` and by the admin's form, so the limit is the
    same wherever a watchlist is made.
    """
    limit = watchlist_max_per_user()
    if Watchlist.objects.filter(user_id=user_id).count() >= limit:
        raise WatchlistLimitReached(
            f"You already have {limit} watchlists, the most one account may have "
            "(REALTIME_MAX_WATCHLISTS_PER_USER). Delete one to create another."
        )


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValueError("Enter a name for the watchlist.")
    if len(name) > 100:
        raise ValueError("A watchlist name has at most 100 characters.")
    return name


def watchlist_create(*, user: AbstractBaseUser, name: str) -> Watchlist:
    """A new, empty watchlist after the user's others. Raises ``ValueError`` for a
    blank or over-long name, ``WatchlistNameTaken`` and ``WatchlistLimitReached``."""
    name = _clean_name(name)
    watchlist_check_room(user_id=user.pk)
    if Watchlist.objects.filter(user=user, name=name).exists():
        raise WatchlistNameTaken(f"You already have a watchlist named {name!r}.")
    position = (
        Watchlist.objects.filter(user=user).aggregate(m=Max("position"))["m"] or 0
    ) + 1
    try:
        with transaction.atomic():
            watchlist = Watchlist.objects.create(
                user=user, name=name, position=position
            )
    except IntegrityError as exc:  # the same name created from another tab
        raise WatchlistNameTaken(
            f"You already have a watchlist named {name!r}."
        ) from exc
    logger.info(
        "event=watchlist_created user_id=%s watchlist_id=%s", user.pk, watchlist.pk
    )
    return watchlist


def watchlist_rename(*, watchlist: Watchlist, name: str) -> Watchlist:
    """Raises ``ValueError`` for a blank or too long name, ``WatchlistNameTaken``."""
    name = _clean_name(name)
    if name == watchlist.name:
        return watchlist
    taken = Watchlist.objects.filter(user_id=watchlist.user_id, name=name)
    if taken.exclude(pk=watchlist.pk).exists():
        raise WatchlistNameTaken(f"You already have a watchlist named {name!r}.")
    watchlist.name = name
    try:
        with transaction.atomic():
            watchlist.save(update_fields=["name"])
    except IntegrityError as exc:
        raise WatchlistNameTaken(
            f"You already have a watchlist named {name!r}."
        ) from exc
    logger.info("event=watchlist_renamed watchlist_id=%s", watchlist.pk)
    return watchlist


def watchlist_delete(*, watchlist: Watchlist) -> None:
    """Delete the list and its items. Deleting the last one is allowed: the next
    dashboard visit creates the default list again."""
    pk = watchlist.pk
    watchlist.delete()
    logger.info("event=watchlist_deleted watchlist_id=%s", pk)


def watchlist_move_symbol(
    *, watchlist: Watchlist, symbol: str, offset: int
) -> list[str]:
    """Move ``symbol`` ``offset`` places (-1 up, +1 down); return the new order.
    Raises ``InvalidSymbol`` and ``WatchlistItem.DoesNotExist``."""
    symbol = normalize_symbol(symbol)
    with transaction.atomic():
        order = watchlist_symbols_ordered(watchlist)
        if symbol not in order:
            raise WatchlistItem.DoesNotExist(f"{symbol} is not in this watchlist.")
        return _reorder(watchlist, symbol, order.index(symbol) + offset)


def watchlist_symbols_ordered(watchlist: Watchlist) -> list[str]:
    return list(
        watchlist.items.order_by("position", "id").values_list("symbol", flat=True)
    )


def preference_update(
    *,
    user: AbstractBaseUser,
    view: str | None = None,
    sort_key: str | None = None,
    sort_dir: str | None = None,
) -> DashboardPreference:
    """Save the user's view and table sort; ``None`` leaves a field as it is.
    Raises ``ValueError`` naming an unknown value."""
    preference, _ = DashboardPreference.objects.get_or_create(user=user)
    if view is not None:
        if view not in dict(DashboardPreference.VIEW_CHOICES):
            raise ValueError(f"Unknown view: {view!r} (use cards or table).")
        preference.view = view
    if sort_key is not None:
        if sort_key not in DashboardPreference.SORT_KEYS:
            raise ValueError(f"Unknown sort column: {sort_key!r}.")
        preference.sort_key = sort_key
    if sort_dir is not None:
        if sort_dir not in DashboardPreference.SORT_DIRS:
            raise ValueError(f"Unknown sort direction: {sort_dir!r} (use asc or desc).")
        preference.sort_dir = sort_dir
    preference.save()
    return preference


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
