"""The latest merged price state of a symbol, and its two wire shapes.

Pure functions over frozen values: the feed, the cache and the tests share them.
PROTOCOL.md fixes both shapes: cache entries name the message type ``type`` while
``price_update`` messages name it ``data_type`` (their ``type`` is the message kind).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from realtime.upstream.protocol import Tick, TickKind


@dataclass(frozen=True, slots=True)
class TradeBreak:
    price: float | None
    size: float | None


@dataclass(frozen=True, slots=True)
class PriceState:
    symbol: str
    timestamp: int
    data_type: TickKind
    last_price: float | None
    last_size: float | None
    ask_price: float | None
    ask_size: float | None
    bid_price: float | None
    bid_size: float | None
    cached_at: str
    trade_break: TradeBreak | None = None


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def merge_tick(previous: PriceState | None, tick: Tick, cached_at: str) -> PriceState:
    """Apply one tick to the previous state of its symbol.

    A quote changes only the quote fields and a trade only the trade fields. A break
    cancels an earlier trade: the last price stays at the last valid trade so a
    display never shows a cancelled price, and the break is carried alongside
    (FMP_UPSTREAM.md, "A break (B) cancels a trade").
    """
    last_price = previous.last_price if previous else None
    last_size = previous.last_size if previous else None
    ask_price = previous.ask_price if previous else None
    ask_size = previous.ask_size if previous else None
    bid_price = previous.bid_price if previous else None
    bid_size = previous.bid_size if previous else None
    trade_break = None
    if tick.kind == "T":
        if tick.last_price is not None:
            last_price = tick.last_price
        if tick.last_size is not None:
            last_size = tick.last_size
    elif tick.kind == "Q":
        if tick.ask_price is not None:
            ask_price = tick.ask_price
        if tick.ask_size is not None:
            ask_size = tick.ask_size
        if tick.bid_price is not None:
            bid_price = tick.bid_price
        if tick.bid_size is not None:
            bid_size = tick.bid_size
    else:
        trade_break = TradeBreak(price=tick.last_price, size=tick.last_size)
    return PriceState(
        symbol=tick.symbol,
        timestamp=tick.timestamp,
        data_type=tick.kind,
        last_price=last_price,
        last_size=last_size,
        ask_price=ask_price,
        ask_size=ask_size,
        bid_price=bid_price,
        bid_size=bid_size,
        cached_at=cached_at,
        trade_break=trade_break,
    )


def _fields(state: PriceState) -> dict[str, Any]:
    return {
        "last_price": state.last_price,
        "last_size": state.last_size,
        "ask_price": state.ask_price,
        "ask_size": state.ask_size,
        "bid_price": state.bid_price,
        "bid_size": state.bid_size,
        "cached_at": state.cached_at,
    }


def _break(state: PriceState) -> dict[str, Any]:
    tb = state.trade_break
    return {"price": tb.price, "size": tb.size} if tb else {}


def to_price_update(state: PriceState, *, snapshot: bool = False) -> dict[str, Any]:
    """The ``price_update`` message of PROTOCOL.md, keys in the documented order."""
    message: dict[str, Any] = {
        "type": "price_update",
        "symbol": state.symbol,
        "timestamp": state.timestamp,
        "data_type": state.data_type,
        **_fields(state),
    }
    if state.trade_break:
        message["break"] = _break(state)
    if snapshot:
        message["snapshot"] = True
    return message


def encode_price_update(state: PriceState, *, snapshot: bool = False) -> str:
    """Serialise once; every client of the symbol receives these exact bytes."""
    return orjson.dumps(to_price_update(state, snapshot=snapshot)).decode()


def to_cache_entry(state: PriceState) -> dict[str, Any]:
    """The cache entry shape of ``GET /cache`` (message type under ``type``)."""
    entry: dict[str, Any] = {
        "symbol": state.symbol,
        "timestamp": state.timestamp,
        "type": state.data_type,
        **_fields(state),
    }
    if state.trade_break:
        entry["break"] = _break(state)
    return entry


def from_cache_entry(entry: dict[str, Any]) -> PriceState:
    tb = entry.get("break")
    return PriceState(
        symbol=entry["symbol"],
        timestamp=entry["timestamp"],
        data_type=entry["type"],
        last_price=entry.get("last_price"),
        last_size=entry.get("last_size"),
        ask_price=entry.get("ask_price"),
        ask_size=entry.get("ask_size"),
        bid_price=entry.get("bid_price"),
        bid_size=entry.get("bid_size"),
        cached_at=entry["cached_at"],
        trade_break=TradeBreak(tb.get("price"), tb.get("size")) if tb else None,
    )


def encode_upstream_status(status: str) -> str:
    """**Extension** message telling clients the upstream feed's state changed.

    Sent to every client when the FMP connection goes down or comes back, so a
    display can say "feed reconnecting" instead of looking frozen; clients of the
    original guide ignore unknown message types.
    """
    return orjson.dumps(
        {
            "type": "upstream_status",
            "status": status,
            "timestamp": int(time.time() * 1000),
        }
    ).decode()
