"""Bar intervals and bar stream keys.

A bar stream is one (symbol, interval) pair. It travels through the broker, the
history and the hubs as its own *key*, ``<SYMBOL>@<interval>`` (``AAPL@1m``),
so numbering, recording, recovery and delivery are the tick machinery unchanged
(docs/decisions/0005-bars.md). ``@`` is never part of a symbol
(realtime/symbols.py), so a key is never mistaken for one.
"""

from __future__ import annotations

import re

SEPARATOR = "@"
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
_INTERVAL = re.compile(r"([1-9][0-9]{0,3})([smh])")


class InvalidInterval(ValueError):
    """An interval name that is not ``<n>s``, ``<n>m`` or ``<n>h``."""


def interval_ms(name: str) -> int:
    """``"1m"`` -> 60000. Raises ``InvalidInterval``."""
    match = _INTERVAL.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise InvalidInterval(f"invalid bar interval {str(name)[:20]!r}")
    ms = int(match.group(1)) * _UNITS[match.group(2)]
    if 86_400_000 % ms:
        raise InvalidInterval(f"bar interval {name!r} does not divide a day")
    return ms


def parse_intervals(raw: str) -> dict[str, int]:
    """``"1s,1m"`` -> ``{"1s": 1000, "1m": 60000}`` (the setting's form)."""
    names = [part.strip() for part in raw.split(",") if part.strip()]
    return {name: interval_ms(name) for name in names}


def stream_key(symbol: str, interval: str) -> str:
    return f"{symbol}{SEPARATOR}{interval}"


def is_stream_key(key: str) -> bool:
    return SEPARATOR in key


def split_key(key: str) -> tuple[str, str]:
    """``"AAPL@1m"`` -> ``("AAPL", "1m")``; raises ValueError for a symbol."""
    symbol, sep, interval = key.rpartition(SEPARATOR)
    if not sep or not symbol:
        raise ValueError(f"not a bar stream key: {key!r}")
    return symbol, interval


def base_symbol(key: str) -> str:
    """The symbol a key (or a plain symbol) needs from upstream."""
    return key.partition(SEPARATOR)[0]
