"""Typed messages of fmpsite's price stream (docs/protocol.md).

The server's protocol is additive: a message may carry fields this client does
not know, and new message types may appear. Every message therefore keeps the
decoded object as ``raw``, and an unknown ``type`` becomes a plain
:class:`Message` instead of an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ErrorMessage",
    "Gap",
    "Message",
    "PriceUpdate",
    "Reset",
    "StreamMessage",
    "UpstreamStatus",
    "decode",
]


@dataclass(frozen=True, slots=True)
class Message:
    """A server message this client has no class for (kept whole in ``raw``)."""

    type: str
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """The merged latest state of one symbol after one upstream message.

    ``seq``/``epoch`` place it in the symbol's sequence (``epoch`` is only on
    snapshots; the stream fills it in from the subscription otherwise).
    ``snapshot``: the state at subscribe time; ``recovered``: replayed by the
    server after a reconnect; ``from_history``: fetched by this client from the
    history endpoint to fill a gap.
    """

    symbol: str
    seq: int | None
    epoch: str | None
    timestamp: int | None
    data_type: str | None
    last_price: float | None
    last_size: float | None
    bid_price: float | None
    bid_size: float | None
    ask_price: float | None
    ask_size: float | None
    snapshot: bool
    recovered: bool
    from_history: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def type(self) -> str:
        return "price_update"


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """The server's own upstream (FMP) connection changed state; prices are stale
    while ``status`` is not ``"connected"``."""

    status: str
    timestamp: int | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def type(self) -> str:
        return "upstream_status"


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """An ``error`` reply; the connection stays open."""

    code: str | None
    message: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def type(self) -> str:
        return "error"


@dataclass(frozen=True, slots=True)
class Reset:
    """The symbol's sequence restarted (a new epoch: the server lost its history,
    e.g. an embedded server restarted). What was drawn from the old sequence
    cannot be continued; the updates that follow start the new one."""

    symbol: str
    epoch: str | None
    reason: Literal["epoch", "not_recovered"]

    @property
    def type(self) -> str:
        return "reset"


@dataclass(frozen=True, slots=True)
class Gap:
    """Updates after ``after_seq`` and before ``before_seq`` were missed and could
    not all be fetched (the history no longer holds them, or it could not be
    read); ``missing`` lists the seqs still absent."""

    symbol: str
    epoch: str | None
    after_seq: int
    before_seq: int
    missing: tuple[int, ...]

    @property
    def type(self) -> str:
        return "gap"


StreamMessage = PriceUpdate | UpstreamStatus | ErrorMessage | Reset | Gap | Message


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) else None


def price_update(
    raw: dict[str, Any], *, epoch: str | None = None, from_history: bool = False
) -> PriceUpdate:
    """A :class:`PriceUpdate` from a decoded ``price_update`` object."""
    get = raw.get
    seq = get("seq")
    return PriceUpdate(
        symbol=raw["symbol"],
        seq=seq if type(seq) is int else None,
        epoch=get("epoch") or epoch,
        timestamp=get("timestamp"),
        data_type=get("data_type"),
        last_price=_number(get("last_price")),
        last_size=_number(get("last_size")),
        bid_price=_number(get("bid_price")),
        bid_size=_number(get("bid_size")),
        ask_price=_number(get("ask_price")),
        ask_size=_number(get("ask_size")),
        snapshot=get("snapshot") is True,
        recovered=get("recovered") is True,
        from_history=from_history,
        raw=raw,
    )


def decode(
    raw: dict[str, Any],
) -> PriceUpdate | UpstreamStatus | ErrorMessage | Message:
    """The typed form of one decoded server message (unknown types as Message)."""
    kind = raw.get("type")
    if kind == "price_update" and isinstance(raw.get("symbol"), str):
        return price_update(raw)
    if kind == "upstream_status":
        return UpstreamStatus(
            status=str(raw.get("status")), timestamp=raw.get("timestamp"), raw=raw
        )
    if kind == "error":
        return ErrorMessage(
            code=raw.get("code"), message=str(raw.get("message", "")), raw=raw
        )
    return Message(type=str(kind), raw=raw)
