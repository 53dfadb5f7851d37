"""FMP frames <-> typed values. Pure functions, no I/O (FMP_UPSTREAM.md).

Everything FMP-specific about the wire format (lower-case tickers, timestamp units,
two login-result shapes, two protocol generations) stays in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
