"""Channel-layer messages between web processes and the feed, in one place.

Every message type sent to a channel or group is declared here as a TypedDict, so
senders and handlers agree on the payload (STYLE.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal, NamedTuple, NotRequired, Protocol, TypedDict


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


class Update(NamedTuple):
    """One numbered price update, from the broker to every hub.

    ``text`` is the client ``price_update`` message, encoded once by the feed
    (its ``seq`` is inside it too, for the client); the position travels beside
    it as data, so no one has to find ``seq``, ``epoch`` or the replay mark in the
    text. ``replayed``: a new feed leader re-published it from the history at
    takeover (realtime/feed/broker.py); a hub that already sent it drops it.
    A tuple, so the channel layer carries it as one msgpack array.
    """

    symbol: str
    seq: int
    epoch: str
    text: str
    tick_ts: int  # upstream tick timestamp (ms), for latency metrics
    replayed: bool = False


class Fanout(Protocol):
    """Where a broker hands what it published: this process's hub (embedded
    mode) or the channel layer to every web process's hub (scaled mode)."""

    def deliver(self, update: Update) -> None: ...
    def deliver_upstream(self, status: str, text: str) -> None: ...
    def deliver_refused(self, symbols: Sequence[str], message: str) -> None: ...


class PriceBatchEvent(TypedDict):
    """Feed -> one web process's hub channel: every update of one feed flush that
    this process's lease asks for, in order, each an ``Update`` (an array on the
    wire: ``[symbol, seq, epoch, text, tick_ts, replayed]``)."""

    type: Literal["price.batch"]
    updates: list[Update]


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


class AlertsChangedEvent(TypedDict):
    """REST / admin -> feed: price alerts changed; reload the active ones."""

    type: Literal["feed.alerts"]


class AlertDeliveryEvent(TypedDict):
    """Feed -> every hub: an alert fired; ``text`` is the client ``alert`` message
    for every open connection of principal ``user`` (``user:<pk>``) only."""

    type: Literal["hub.alert"]
    user: str
    text: str
