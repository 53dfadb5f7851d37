"""The latest merged price state of a symbol, and its two wire shapes.

Pure functions over frozen values: the feed, the cache and the tests share them.
docs/protocol.md fixes both shapes: cache entries name the message type ``type`` while
``price_update`` messages name it ``data_type`` (their ``type`` is the message kind).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from realtime.upstream.protocol import Tick, TickKind


@dataclass(frozen=True, slots=True)
class TradeBreak:
    price: float | None
    size: float | None


Trade = tuple[float, float | None]  # (price, size) of one valid trade
TRADE_HISTORY = 5  # valid trades kept per symbol, so a break can fall back


@dataclass(frozen=True, slots=True)
class PriceState:
    """The merged state of one symbol.

    ``last_price``/``last_size`` are what clients display: the last valid trade,
    or -- for a symbol that has quotes but no valid trade (forex and crypto quote
    streams, or after its only trade was broken) -- the quote's mid price with a
    null size, marked ``price_source="mid"``. ``trades`` (newest last) is the short
    history a break falls back on; it stays in the feed process (not serialised).
    """

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
    mid_price: float | None = None
    price_source: str | None = None  # "trade" | "mid" | None (no price yet)
    trades: tuple[Trade, ...] = field(default=(), compare=False, repr=False)
    # **Extension**: the feed's per-symbol sequence number (realtime/feed/history.py).
    seq: int | None = field(default=None, compare=False)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def mid_price(bid: float | None, ask: float | None) -> float | None:
    """(bid + ask) / 2 when the book has both sides, else None (12 decimals, so
    1.07856/1.07865 reads 1.078605, not 1.0786049999999)."""
    if bid is None or ask is None:
        return None
    return round((bid + ask) / 2, 12)


def _without(trades: tuple[Trade, ...], price: float | None, size: float | None):
    """``trades`` minus the newest trade a break names (price, and size if given)."""
    for i in range(len(trades) - 1, -1, -1):
        p, s = trades[i]
        if p == price and (size is None or s == size):
            return trades[:i] + trades[i + 1 :]
    return trades


def merge_tick(
    previous: PriceState | None, tick: Tick, cached_at: str, seq: int | None = None
) -> PriceState:
    """Apply one tick to the previous state of its symbol.

    A quote changes the quote fields; a trade the trade fields. ``lp``/``ls`` are
    taken from any trade or quote that carries them (FMP's stock quotes do), and a
    price never pairs with an older size: a trade without ``ls`` has a null size.
    A break cancels an earlier trade: it is removed from the short trade history
    and the display falls back to the newest trade left, so no display keeps a
    cancelled price; the break itself is carried alongside (FMP_UPSTREAM.md).
    """
    kind = tick.kind
    if previous is None:
        trades: tuple[Trade, ...] = ()
        ask_price = ask_size = bid_price = bid_size = mid = None
    else:
        trades = previous.trades
        ask_price, ask_size = previous.ask_price, previous.ask_size
        bid_price, bid_size = previous.bid_price, previous.bid_size
        mid = previous.mid_price
    trade_break = None
    last_price = tick.last_price
    if kind == "B":
        trade_break = TradeBreak(price=last_price, size=tick.last_size)
        trades = _without(trades, last_price, tick.last_size)
    else:
        if kind == "Q":
            if tick.ask_price is not None:
                ask_price, ask_size = tick.ask_price, tick.ask_size
            if tick.bid_price is not None:
                bid_price, bid_size = tick.bid_price, tick.bid_size
            mid = mid_price(bid_price, ask_price)
        if last_price is not None:
            trade = (last_price, tick.last_size)
            # A trade is always a new trade; a quote repeats the newest one.
            if kind == "T" or not trades or trades[-1] != trade:
                trades = (*trades[1 - TRADE_HISTORY :], trade)
    if trades:
        last_price, last_size = trades[-1]
        source: str | None = "trade"
    else:
        last_price = (
            mid if mid is not None else (bid_price if ask_price is None else ask_price)
        )
        last_size = None
        source = "mid" if last_price is not None else None
    return PriceState(
        tick.symbol,
        tick.timestamp,
        kind,
        last_price,
        last_size,
        ask_price,
        ask_size,
        bid_price,
        bid_size,
        cached_at,
        trade_break,
        mid,
        source,
        trades,
        seq,
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


def _extensions(state: PriceState, out: dict[str, Any]) -> None:
    """**Extension** keys, present only when they say something: ``mid_price``
    when the book has both sides; ``price_source: "mid"`` when ``last_price`` is
    the mid (or one-sided) quote price because the symbol has no valid trade."""
    if state.mid_price is not None:
        out["mid_price"] = state.mid_price
    if state.price_source == "mid":
        out["price_source"] = "mid"


def to_price_update(state: PriceState, *, snapshot: bool = False) -> dict[str, Any]:
    """The ``price_update`` message of docs/protocol.md, keys in documented order."""
    message: dict[str, Any] = {
        "type": "price_update",
        "symbol": state.symbol,
        "timestamp": state.timestamp,
        "data_type": state.data_type,
        **_fields(state),
    }
    if state.trade_break:
        message["break"] = _break(state)
    _extensions(state, message)
    if state.seq is not None:
        message["seq"] = state.seq
    if snapshot:
        message["snapshot"] = True
    return message


def encode_price_update(state: PriceState, *, snapshot: bool = False) -> str:
    """Serialise once; every client of the symbol receives these exact bytes."""
    return orjson.dumps(to_price_update(state, snapshot=snapshot)).decode()


# What a replayed update gains for the client (docs/protocol.md, recovery).
RECOVERED: dict[str, Any] = {"recovered": True}


def add_fields(text: str, fields: dict[str, Any]) -> str:
    """``text`` (an encoded JSON object, e.g. ``encode_price_update``'s) with
    ``fields`` appended, without decoding and re-encoding it.

    The one place that edits an encoded message: a replayed update gains
    ``"recovered": true``, a re-sent state ``"snapshot": true`` and its epoch.
    ``fields`` must not repeat a key of ``text`` (JSON would then hold it twice).
    """
    if not fields:
        return text
    if not text.endswith("}") or text == "{}":
        raise ValueError(f"not an encoded JSON object with fields: {text[:40]!r}")
    return text[:-1] + "," + orjson.dumps(fields).decode()[1:]


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
    _extensions(state, entry)
    if state.seq is not None:
        entry["seq"] = state.seq
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
        mid_price=entry.get("mid_price"),
        price_source=entry.get("price_source")
        or ("trade" if entry.get("last_price") is not None else None),
        seq=entry.get("seq"),
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


def encode_upstream_refused(symbols: list[str] | tuple[str, ...], message: str) -> str:
    """**Extension** ``error`` telling a client FMP will not send these symbols.

    Sent (by the fan-out hub) to each client subscribed to a refused symbol, naming
    only that client's symbols: ``{"type": "error", "code": "upstream_refused",
    "message": "...", "symbols": [...]}``.
    """
    names = sorted(symbols)
    return orjson.dumps(
        {
            "type": "error",
            "code": "upstream_refused",
            "message": f"FMP does not send {', '.join(names)}: {message}",
            "symbols": names,
        }
    ).decode()
