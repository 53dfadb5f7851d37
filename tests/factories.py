"""Plain factory functions for tests: users, tokens, cached prices, feed status."""

from __future__ import annotations

import itertools
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from realtime.backends import backends
from realtime.events import Update
from realtime.feed.state import PriceState, merge_tick, utc_now_iso
from realtime.feed.status import FeedStatus
from realtime.upstream.protocol import Tick

PASSWORD = "pw-12345-secret"
_names = itertools.count(1)


def make_user(username: str | None = None, *, is_staff: bool = False) -> User:
    name = username or f"user{next(_names)}"
    return User.objects.create_user(username=name, password=PASSWORD, is_staff=is_staff)


def make_token(user: User) -> str:
    return Token.objects.create(user=user).key


def seed_price(
    symbol: str = "AAPL",
    *,
    price: float = 189.45,
    size: float = 1000,
    ask: float | None = 189.46,
    bid: float | None = 189.44,
    timestamp: int = 1699564800000,
) -> PriceState:
    """Put a trade (and a quote, unless ask/bid are None) into the tick cache."""
    cache = backends().cache
    state = merge_tick(
        cache.get(symbol),
        Tick(symbol, timestamp, "T", last_price=price, last_size=size),
        utc_now_iso(),
    )
    if ask is not None or bid is not None:
        state = merge_tick(
            state,
            Tick(
                symbol,
                timestamp + 1,
                "Q",
                ask_price=ask,
                ask_size=5000,
                bid_price=bid,
                bid_size=3000,
            ),
            utc_now_iso(),
        )
    cache.put(state)
    return state


def publish_status(**overrides: Any) -> FeedStatus:
    """Publish a feed status (fresh and connected unless overridden)."""
    fields: dict[str, Any] = {
        "state": "connected",
        "source": "simulator",
        "is_running": True,
        "api_configured": False,
        "subscribed_symbols": ["AAPL", "MSFT"],
        "reconnect_attempts": 0,
        "callbacks_registered": 1,
        "total_clients": 5,
        "last_tick_at": time.time(),
        "heartbeat_at": time.time(),
        "ticks_received": 42,
        "owner": "test",
        "updated_at": time.time(),
    }
    fields.update(overrides)
    status = FeedStatus(**fields)
    async_to_sync(backends().status.publish)(status)
    return status


def update(
    symbol: str,
    text: str,
    tick_ts: int = 0,
    *,
    seq: int = 1,
    epoch: str = "test-epoch",
    replayed: bool = False,
) -> Update:
    """A numbered update as the broker hands it to a hub."""
    return Update(symbol, seq, epoch, text, tick_ts, replayed)
