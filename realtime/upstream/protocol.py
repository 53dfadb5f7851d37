"""FMP frames <-> typed values. Pure functions, no I/O (FMP_UPSTREAM.md).

Everything FMP-specific about the wire format (lower-case tickers, timestamp units,
two login-result shapes, two protocol generations) stays in this module. The
client uses the parsing half and the frame builders; the simulator uses the
encoders and ``parse_client_frame``, so both ends share one reading of the spec.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

TickKind = Literal["T", "Q", "B"]


@dataclass(frozen=True, slots=True)
class Tick:
    """One upstream market-data message, normalised.

    ``symbol`` is upper case; ``timestamp`` is milliseconds since the Unix epoch;
    the fields a message did not carry are ``None``. ``kind`` decides which fields
    the message updates (a quote never changes the last trade, and vice versa).
    """

    symbol: str
    timestamp: int
    kind: TickKind
    last_price: float | None = None
    last_size: float | None = None
    ask_price: float | None = None
    ask_size: float | None = None
    bid_price: float | None = None
    bid_size: float | None = None
    exchange: str | None = None


# --- control events (server -> client) ------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``{"event": "login", ...}`` in either documented shape."""

    ok: bool
    status: int | None
    message: str


@dataclass(frozen=True, slots=True)
class SubscriptionAck:
    """Reply to a subscribe/unsubscribe request (exact text unconfirmed)."""

    event: str
    ok: bool
    status: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Server liveness signal; ``timestamp`` in ms when the frame carried one."""

    timestamp: int | None


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """``{"event": "error"}`` or any object with ``status >= 400``."""

    status: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ParseError:
    """A frame (or one element of it) that could not be understood."""

    reason: str
    frame: str


Event = Tick | LoginResult | SubscriptionAck | Heartbeat | UpstreamError | ParseError

FRAME_EXCERPT = 500
# A timestamp is plausible between 2000-01-01 and 2100-01-01 (in ms).
PLAUSIBLE_MIN_MS = 946_684_800_000
PLAUSIBLE_MAX_MS = 4_102_444_800_000

# Message texts that make a login result fatal for the key (FMP_UPSTREAM.md).
UNAUTHORIZED_TEXTS = ("unauthorized", "not authorized")
KICKED_TEXT = "connected from another location"
MAX_CONNECTIONS_TEXT = "maximum number of connections"


def _excerpt(raw: str | bytes) -> str:
    if isinstance(raw, bytes | bytearray | memoryview):
        text = bytes(raw).decode("utf-8", errors="replace")
    else:
        text = str(raw)
    if len(text) > FRAME_EXCERPT:
        return text[:FRAME_EXCERPT] + "..."
    return text


def _loads(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson rejects integers beyond 64 bits; the stdlib parser does not.
        # NaN/Infinity are not JSON and stay rejected.
        def reject(name: str) -> Any:
            raise ValueError(f"not JSON: {name}")

        return json.loads(raw, parse_constant=reject)


def _is_number(value: Any) -> bool:
    # bool is an int subclass but never a number on FMP's wire.
    return isinstance(value, int | float) and not isinstance(value, bool)


_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _number(value: Any) -> int | float | None:
    """A number, or a string holding one ("189.45", "1700000000000"): some feeds
    quote their numbers. Anything else (bools, "NaN", "", "12abc") is None."""
    if _is_number(value):
        return value
    if isinstance(value, str) and len(value) < 40 and _NUMERIC.match(value):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
        try:
            return float(text)
        except (ValueError, OverflowError):
            return None
    return None


def _price(value: Any) -> float | None:
    value = _number(value)
    if value is None:
        return None
    try:
        price = float(value)
    except OverflowError:
        return None
    return price if math.isfinite(price) else None


def _size(value: Any) -> int | float | None:
    """Sizes stay integers when integral; crypto sizes may be fractional."""
    value = _number(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() else value
    return None


def _status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 6:
        return int(value)
    return None


def _message(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)[:FRAME_EXCERPT]


def normalize_timestamp(t: Any, now_ms: int) -> int:
    """Milliseconds since the epoch from a timestamp of unknown unit.

    The unit is guessed by magnitude (FMP_UPSTREAM.md): 19 digits are
    nanoseconds (stocks), 16 microseconds, 13 milliseconds (forex), 10 seconds
    (standard socket). Longer values (the 20-digit crypto sample) are divided by
    ten until they have 19 digits. When the result is not a date between 2000 and
    2100 -- or ``t`` is not a number at all -- the receive time ``now_ms`` is used.
    A string holding a number counts as that number.
    """
    t = _number(t)
    if t is None:
        return now_ms
    if isinstance(t, float):
        if not math.isfinite(t) or t <= 0:
            return now_ms
        if t >= 1e30:
            return now_ms
        value: int | float = t
        magnitude = int(t)
    else:
        if t <= 0 or t >= 10**30:
            return now_ms
        value = magnitude = t
    digits = len(str(magnitude)) if magnitude > 0 else 1
    if digits > 19:
        value = value // 10 ** (digits - 19)
        digits = 19
    if digits >= 19:
        ms = value // 1_000_000 if isinstance(value, int) else value / 1_000_000
    elif digits >= 16:
        ms = value // 1_000 if isinstance(value, int) else value / 1_000
    elif digits >= 13:
        ms = value
    elif digits >= 10:
        ms = value * 1_000
    else:
        return now_ms
    result = int(ms)
    if PLAUSIBLE_MIN_MS <= result < PLAUSIBLE_MAX_MS:
        return result
    return now_ms


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_frame(raw: str | bytes, *, now_ms: int | None = None) -> list[Event]:
    """Every event in one server frame; never raises.

    A frame is a JSON object or a JSON array of objects. Anything that cannot be
    understood becomes a ``ParseError`` carrying an excerpt of the frame, so the
    caller can log it and go on with the stream. ``now_ms`` is the receive time,
    used when a timestamp is missing or implausible.
    """
    try:
        if now_ms is None:
            now_ms = _now_ms()
        try:
            data = _loads(raw)
        except Exception as exc:  # any undecodable input, by contract
            return [ParseError(f"invalid JSON: {type(exc).__name__}", _excerpt(raw))]
        if isinstance(data, list):
            if not data:
                return [ParseError("empty array", _excerpt(raw))]
            return [_parse_object(item, now_ms, raw) for item in data]
        return [_parse_object(data, now_ms, raw)]
    except Exception as exc:  # pragma: no cover - belt and braces for the contract
        return [ParseError(f"unexpected {type(exc).__name__}", _excerpt(raw))]


def _parse_object(obj: Any, now_ms: int, raw: str | bytes) -> Event:
    if not isinstance(obj, dict):
        return ParseError(f"not an object: {type(obj).__name__}", _excerpt(raw))
    event = obj.get("event")
    data = obj.get("data")
    nested = data if isinstance(data, dict) else {}
    status = _status(obj.get("status"))
    if status is None:
        status = _status(nested.get("status"))
    message = _message(obj.get("message", nested.get("message")))
    if event is not None:
        if not isinstance(event, str):
            return ParseError("event is not a string", _excerpt(raw))
        name = event.lower()
        if name == "login":
            return LoginResult(_login_ok(status, message), status, message)
        if name in ("subscribe", "unsubscribe"):
            ok = (status is None or status < 400) and not _mentions(
                message, UNAUTHORIZED_TEXTS
            )
            return SubscriptionAck(name, ok, status, message)
        if name == "heartbeat":
            ts = obj.get("timestamp", nested.get("timestamp"))
            return Heartbeat(
                normalize_timestamp(ts, now_ms) if _number(ts) is not None else None
            )
        if name == "error":
            return UpstreamError(status, message)
        if status is not None and status >= 400:
            return UpstreamError(status, message or f"{event}: status {status}")
        return ParseError(f"unknown event {event[:50]!r}", _excerpt(raw))
    if "s" in obj and "type" in obj:
        return _parse_legacy_tick(obj, now_ms, raw)
    if "symbol" in obj and "price" in obj:
        return _parse_quote_object(obj, now_ms, raw)
    if status is not None and status >= 400:
        return UpstreamError(status, message)
    return ParseError("unrecognised object", _excerpt(raw))


def _mentions(message: str, texts: Iterable[str]) -> bool:
    lowered = message.lower()
    return any(text in lowered for text in texts)


def _login_ok(status: int | None, message: str) -> bool:
    if status is not None:
        return status < 400
    # No status: only the message can tell (legacy variants are unconfirmed).
    return not _mentions(
        message, (*UNAUTHORIZED_TEXTS, KICKED_TEXT, MAX_CONNECTIONS_TEXT)
    )


def _parse_legacy_tick(obj: dict[str, Any], now_ms: int, raw: str | bytes) -> Event:
    symbol = obj.get("s")
    if not isinstance(symbol, str) or not symbol.strip():
        return ParseError("tick without a symbol", _excerpt(raw))
    kind = obj.get("type")
    if not isinstance(kind, str) or kind.upper() not in ("T", "Q", "B"):
        return ParseError(f"unknown tick type {str(kind)[:20]!r}", _excerpt(raw))
    kind = kind.upper()
    last_price = _price(obj.get("lp"))
    ask_price = _price(obj.get("ap"))
    bid_price = _price(obj.get("bp"))
    if kind == "T" and last_price is None:
        return ParseError("trade without lp", _excerpt(raw))
    if kind == "Q" and ask_price is None and bid_price is None:
        return ParseError("quote without ap/bp", _excerpt(raw))
    exchange = obj.get("e")
    return Tick(
        symbol=symbol.strip().upper(),
        timestamp=normalize_timestamp(obj.get("t"), now_ms),
        kind=kind,  # type: ignore[arg-type]
        last_price=last_price,
        last_size=_size(obj.get("ls")),
        ask_price=ask_price,
        ask_size=_size(obj.get("as")),
        bid_price=bid_price,
        bid_size=_size(obj.get("bs")),
        exchange=exchange if isinstance(exchange, str) else None,
    )


def _parse_quote_object(obj: dict[str, Any], now_ms: int, raw: str | bytes) -> Event:
    """A standard-socket quote: a trade-like update (``last_price`` = ``price``).

    ``volume`` is the cumulative day volume, not a trade size, so it stays out.
    """
    symbol = obj.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        return ParseError("quote without a symbol", _excerpt(raw))
    price = _price(obj.get("price"))
    if price is None:
        return ParseError("quote without a numeric price", _excerpt(raw))
    exchange = obj.get("exchange")
    return Tick(
        symbol=symbol.strip().upper(),
        timestamp=normalize_timestamp(obj.get("timestamp"), now_ms),
        kind="T",
        last_price=price,
        exchange=exchange if isinstance(exchange, str) else None,
    )


def named_in(message: str, candidates: Iterable[str]) -> frozenset[str]:
    """The candidates (tickers or stream names) that ``message`` names as whole
    words, case-insensitively: "you are not authorized to access aapl" -> AAPL."""
    lowered = message.lower()
    found = set()
    for name in candidates:
        pattern = rf"(?<![\w.\-^/=]){re.escape(name.lower())}(?![\w.\-^/=])"
        if re.search(pattern, lowered):
            found.add(name)
    return frozenset(found)


# --- asset classes (legacy clusters serve one each) ----------------------------------

FOREX_CODES = frozenset(
    "USD EUR JPY GBP CHF CAD AUD NZD CNH CNY HKD SGD SEK NOK DKK MXN ZAR TRY PLN "
    "INR BRL KRW HUF CZK ILS THB".split()
)
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")


def guess_asset_class(symbol: str) -> str | None:
    """``stocks``, ``forex`` or ``crypto`` by the symbol's shape, or None if unsure.

    US tickers have at most five letters (plus ``.``/``-`` classes, ``^`` indices);
    a six-letter pair of currency codes is forex; a longer all-letter symbol ending
    in a quote currency is crypto. Reference data, when configured, knows better.
    """
    s = symbol.strip().upper()
    if not s:
        return None
    if not s.isalpha():
        return "stocks" if any(c in s for c in ".-^") else None
    if len(s) <= 5:
        return "stocks"
    if len(s) == 6 and s[:3] in FOREX_CODES and s[3:] in FOREX_CODES:
        return "forex"
    for quote in CRYPTO_QUOTES:
        if s.endswith(quote) and len(s) - len(quote) >= 2:
            return "crypto"
    return None


# --- client -> server frames ------------------------------------------------------


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def login_frame(api_key: str) -> str:
    return _dumps({"event": "login", "data": {"apiKey": api_key}})


def _ticker_frames(event: str, symbols: Iterable[str], batch: int) -> list[str]:
    if batch < 1:
        raise ValueError(f"batch={batch}: must be at least 1")
    tickers = sorted({s.strip().lower() for s in symbols if s and s.strip()})
    return [
        _dumps({"event": event, "data": {"ticker": tickers[i : i + batch]}})
        for i in range(0, len(tickers), batch)
    ]


def subscribe_frames(symbols: Iterable[str], batch: int = 100) -> list[str]:
    """Subscribe frames, tickers lower case, at most ``batch`` per frame."""
    return _ticker_frames("subscribe", symbols, batch)


def unsubscribe_frames(symbols: Iterable[str], batch: int = 100) -> list[str]:
    return _ticker_frames("unsubscribe", symbols, batch)


def stream_subscribe_frame(stream: str) -> str:
    return _dumps({"event": "subscribe", "data": {"stream": stream}})


# --- simulator side: reading client frames, writing server frames -------------------


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A client request as the server reads it; tickers upper case."""

    event: str
    api_key: str | None = None
    tickers: tuple[str, ...] = ()
    stream: str | None = None


def parse_client_frame(raw: str | bytes) -> ClientFrame | None:
    """A login/subscribe/unsubscribe request, or ``None`` if not one. Never raises."""
    try:
        obj = _loads(raw)
    except Exception:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    event = obj["event"]
    data = obj.get("data")
    data = data if isinstance(data, dict) else {}
    if event == "login":
        key = data.get("apiKey")
        return ClientFrame("login", api_key=key if isinstance(key, str) else None)
    if event in ("subscribe", "unsubscribe"):
        ticker = data.get("ticker")
        items = [ticker] if isinstance(ticker, str) else ticker
        tickers: tuple[str, ...] = ()
        if isinstance(items, list):
            tickers = tuple(
                t.strip().upper() for t in items if isinstance(t, str) and t.strip()
            )
        stream = data.get("stream")
        return ClientFrame(
            event, tickers=tickers, stream=stream if isinstance(stream, str) else None
        )
    return ClientFrame(event)


def login_result_frame(status: int, message: str) -> str:
    return _dumps({"event": "login", "status": status, "message": message})


def subscription_ack_frame(event: str, status: int, message: str) -> str:
    return _dumps({"event": event, "status": status, "message": message})


def heartbeat_frame(timestamp_ms: int) -> str:
    return _dumps({"event": "heartbeat", "timestamp": timestamp_ms})


def encode_tick_legacy(
    symbol: str,
    kind: TickKind,
    t_ns: int,
    *,
    lp: float | None = None,
    ls: float | None = None,
    ap: float | None = None,
    as_: float | None = None,
    bp: float | None = None,
    bs: float | None = None,
    e: str | None = None,
) -> str:
    """A legacy compact tick: ``s`` lower case, ``t`` in nanoseconds."""
    frame: dict[str, Any] = {"s": symbol.lower(), "t": t_ns, "type": kind}
    for key, value in (
        ("ap", ap),
        ("as", as_),
        ("bp", bp),
        ("bs", bs),
        ("lp", lp),
        ("ls", ls),
        ("e", e),
    ):
        if value is not None:
            frame[key] = value
    return _dumps(frame)


QUOTE_OBJECT_FIELDS: Sequence[str] = (
    "symbol",
    "name",
    "price",
    "changesPercentage",
    "change",
    "dayLow",
    "dayHigh",
    "open",
    "previousClose",
    "volume",
    "timestamp",
)


def encode_quote_object(quote: dict[str, Any]) -> str:
    """A standard-socket quote object (no ``event`` key, ``timestamp`` seconds)."""
    return _dumps({key: quote[key] for key in QUOTE_OBJECT_FIELDS if key in quote})
