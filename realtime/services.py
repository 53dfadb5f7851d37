"""Writes of realtime's state: pinned (server-side) subscriptions.

A pin is a symbol the feed keeps subscribed upstream with no client connected; pins
live in the database so they survive restarts. After a change the feed is told to
reload them (``feed.pins`` on FEED_CHANNEL). That message is an optimisation: the
feed also reloads pins periodically, so a lost message (channel layer down, channel
full) only delays the change and never fails the request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from realtime.backends import backends
from realtime.events import FEED_CHANNEL, PinsChangedEvent
from realtime.models import PinnedSubscription
from realtime.selectors import pinned_symbols
from realtime.stores import STORE_ERRORS
from realtime.symbols import normalize_symbol

logger = logging.getLogger(__name__)


def _normalized(symbols: Iterable[str]) -> list[str]:
    """Canonical symbols in request order without duplicates (raises InvalidSymbol)."""
    return list(dict.fromkeys(normalize_symbol(s) for s in symbols))


def feed_notify_pins_changed() -> None:
    """Ask the feed to reload pins now; log, never raise, if the layer fails."""
    event: PinsChangedEvent = {"type": "feed.pins"}
    try:
        layer = get_channel_layer()
        if layer is None:
            logger.warning("event=pins_notify_skipped reason=no_channel_layer")
            return
        async_to_sync(layer.send)(FEED_CHANNEL, event)
    except Exception as exc:  # the feed's periodic pin reload covers a lost message
        logger.warning("event=pins_notify_failed error=%r", exc)


def pins_add(
    *, symbols: list[str], user: AbstractBaseUser | AnonymousUser | None
) -> list[str]:
    """Pin ``symbols``; return the symbols that were not pinned before.

    Idempotent: pinning a pinned symbol changes nothing. The feed is notified after
    the transaction commits, so its reload sees the new rows.
    """
    wanted = _normalized(symbols)
    created_by = user if user is not None and user.is_authenticated else None
    with transaction.atomic():
        existing = set(
            PinnedSubscription.objects.filter(symbol__in=wanted).values_list(
                "symbol", flat=True
            )
        )
        added = [s for s in wanted if s not in existing]
        PinnedSubscription.objects.bulk_create(
            [PinnedSubscription(symbol=s, created_by=created_by) for s in added],
            ignore_conflicts=True,  # a concurrent request pinned it first
        )
        if added:
            transaction.on_commit(feed_notify_pins_changed)
    logger.info(
        "event=pins_added symbols=%s user=%s",
        ",".join(added) or "-",
        getattr(created_by, "pk", "-"),
    )
    return added


def pins_remove(
    *, symbols: list[str], user: AbstractBaseUser | AnonymousUser | None
) -> list[str]:
    """Unpin ``symbols``; return the symbols that were pinned before."""
    wanted = _normalized(symbols)
    with transaction.atomic():
        pins = PinnedSubscription.objects.filter(symbol__in=wanted)
        existing = set(pins.values_list("symbol", flat=True))
        pins.delete()
        removed = [s for s in wanted if s in existing]
        if removed:
            transaction.on_commit(feed_notify_pins_changed)
    logger.info(
        "event=pins_removed symbols=%s user=%s",
        ",".join(removed) or "-",
        getattr(user, "pk", None) or "-",
    )
    return removed


def subscribed_total() -> int:
    """Symbols subscribed server-side: pins ∪ what the feed last reported upstream.

    Read right after a pin change, the feed may not have reloaded yet; the union
    counts the new pins at once. A read, kept beside the writes it reports on.
    """
    try:
        status = backends().status.read()
    except STORE_ERRORS as exc:
        logger.warning("event=status_read_failed error=%r", exc)
        status = None
    upstream = set(status.subscribed_symbols) if status is not None else set()
    return len(upstream | set(pinned_symbols()))
