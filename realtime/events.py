"""Channel-layer messages between web processes and the feed, in one place.

Every message type sent to a channel or group is declared here as a TypedDict, so
senders and handlers agree on the payload (STYLE.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NotRequired, TypedDict


class UpstreamState(StrEnum):
    """The FMP connection's state: the one list the client, the feed's status,
    the REST serializers, the metrics and ``upstream_status`` messages share."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


UPSTREAM_STATES: tuple[str, ...] = tuple(state.value for state in UpstreamState)

# The channel the feed host reads (``manage.py runworker fmp-feed``).
FEED_CHANNEL = "fmp-feed"
# Every web process's fan-out hub is a member; the feed asks them to re-send leases.
HUBS_GROUP = "realtime.hubs"


class PriceUpdateEvent(TypedDict):
    """Feed -> symbol group. ``text`` is the encoded client message, built once."""

    type: Literal["price.update"]
    symbol: str
    text: str
    tick_ts: int  # upstream tick timestamp (ms), for latency metrics


class PriceBatchEvent(TypedDict):
    """Feed -> one web process's hub channel: every update of one feed flush that
    this process's lease asks for, in order, as ``[symbol, text, tick_ts]``."""

    type: Literal["price.batch"]
    updates: list[tuple[str, str, int]]


class LeaseEvent(TypedDict):
    """Web process -> feed: the symbols its clients need, valid for ``ttl`` s.

    ``channel`` is the hub's channel-layer channel: the feed sends it the
    ``price.batch`` messages of those symbols and, when the lease expires, takes
    it out of every group."""

    type: Literal["feed.lease"]
    owner: str
    symbols: list[str]
    clients: int
    ttl: float
    channel: NotRequired[str]


class LeaseReleaseEvent(TypedDict):
    """Web process -> feed on clean shutdown: drop my lease now."""

    type: Literal["feed.release"]
    owner: str


class PinsChangedEvent(TypedDict):
    """REST / admin -> feed: pinned subscriptions changed; reload them."""

    type: Literal["feed.pins"]


class LeaseRequestEvent(TypedDict):
    """Feed -> every hub: send your lease now (feed started or took over)."""

    type: Literal["hub.lease_request"]


class UpstreamStatusEvent(TypedDict):
    """Feed -> every hub: the upstream state changed; ``text`` is the client message."""

    type: Literal["hub.upstream"]
    status: str
    text: str


class UpstreamRefusedEvent(TypedDict):
    """Feed -> every hub: FMP refused these symbols (a refused subscription, or a
    symbol the configured legacy cluster cannot serve). Each hub sends its clients
    of those symbols an ``error`` with code ``upstream_refused``
    (``realtime.feed.state.encode_upstream_refused``)."""

    type: Literal["hub.refused"]
    symbols: list[str]
    message: str
