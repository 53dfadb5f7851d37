"""The simulator's market: the symbols it knows, with names and price levels.

FMP only sends ticks for symbols it lists, and its REST API answers ``[]`` for the
rest; the simulator does the same with the product's universe (realtime/universe.py:
symbols, names, exchanges, asset classes). Each symbol has a stable level: the
typical price in ``universe.csv`` beside this module for well-known symbols, else
one derived from a hash of the symbol, so a simulated price is the same kind of
number after every restart (issue 16: no "crash" in the sparkline). The seed only
drives the random walk around that level, never the level itself.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from datetime import date
from importlib import resources

from realtime import universe as listed
from realtime.marketday import NEW_YORK, SESSION_START, trading_day
from realtime.universe import ASSET_CLASSES

__all__ = [
    "ASSET_CLASSES",
    "INSTRUMENTS",
    "NEW_YORK",
    "SESSION_START",
    "SYMBOLS",
    "DayReference",
    "Instrument",
    "day_reference",
    "instrument",
    "synthetic_instrument",
    "trading_day",
    "unit_hash",
]


@dataclass(frozen=True, slots=True)
class Instrument(listed.Instrument):
    """A listed symbol with the typical price its simulated prices centre on."""

    level: float

    @property
    def tick_size(self) -> float:
        """The price grid: cents for stocks, pips (1e-5) for forex, finer below 1."""
        if self.asset_class == "forex":
            return 0.001 if self.level >= 20 else 0.00001
        if self.level < 0.001:
            return 0.00000001
        if self.level < 1:
            return 0.00001
        if self.level < 10 and self.asset_class in ("crypto", "commodity"):
            return 0.0001
        return 0.01

    @property
    def decimals(self) -> int:
        return max(0, round(-math.log10(self.tick_size)))


def _load() -> dict[str, Instrument]:
    """The product's listing of each symbol with its level from ``universe.csv``."""
    text = resources.files(__package__).joinpath("universe.csv").read_text("utf-8")
    levels = {
        row["symbol"]: float(row["level"]) for row in csv.DictReader(text.splitlines())
    }
    if levels.keys() != listed.INSTRUMENTS.keys():
        missing = levels.keys() ^ listed.INSTRUMENTS.keys()
        raise ValueError(f"universe.csv and realtime/universe.csv differ: {missing}")
    return {
        symbol: Instrument(
            inst.symbol, inst.name, inst.exchange, inst.asset_class, levels[symbol]
        )
        for symbol, inst in listed.INSTRUMENTS.items()
    }


INSTRUMENTS: dict[str, Instrument] = _load()
SYMBOLS: frozenset[str] = listed.SYMBOLS


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) from ``parts``, the same in every process and run.

    (Python's ``hash`` is salted per process, so it cannot give a stable level.)
    """
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def instrument(symbol: str) -> Instrument | None:
    """The universe's instrument for ``symbol`` (upper case), or None."""
    return INSTRUMENTS.get(symbol)


def synthetic_instrument(symbol: str) -> Instrument:
    """An instrument for a symbol outside the universe (the any-symbol switch).

    Its level is log-uniform in a plausible range for what the symbol looks like
    (``^`` an index, else a stock), derived from the symbol alone.
    """
    known = INSTRUMENTS.get(symbol)
    if known is not None:
        return known
    u = unit_hash("level", symbol)
    if symbol.startswith("^"):
        low, high, asset_class, exchange = 500.0, 20_000.0, "index", "INDEX"
    else:
        low, high, asset_class, exchange = 10.0, 500.0, "stock", "NASDAQ"
    level = round(low * (high / low) ** u, 2)
    return Instrument(symbol, f"{symbol} (simulated)", exchange, asset_class, level)


@dataclass(frozen=True, slots=True)
class DayReference:
    """A symbol's reference prices for one trading day (stable across restarts)."""

    previous_close: float
    open: float
    year_high: float
    year_low: float
    price_avg50: float
    price_avg200: float
    shares: int  # outstanding (market cap = price * shares); 0 where FMP has none
    avg_volume: int


def day_reference(inst: Instrument, day: date) -> DayReference:
    """Previous close within 3 % of the level and an opening gap within 0.8 %."""

    def jitter(what: str, width: float) -> float:
        return 1 + width * (2 * unit_hash(what, inst.symbol, day.isoformat()) - 1)

    def grid(price: float) -> float:
        tick = inst.tick_size
        return round(max(tick, round(price / tick) * tick), inst.decimals)

    previous_close = grid(inst.level * jitter("close", 0.03))
    opening = grid(previous_close * jitter("open", 0.008))
    spread = 0.15 + 0.25 * unit_hash("range", inst.symbol)
    has_cap = inst.asset_class in ("stock", "etf", "crypto")
    market_cap = 10 ** (9 + 3.5 * unit_hash("cap", inst.symbol)) if has_cap else 0
    shares = int(market_cap / inst.level)
    volume = int(10 ** (5 + 3 * unit_hash("volume", inst.symbol)))
    return DayReference(
        previous_close=previous_close,
        open=opening,
        year_high=grid(inst.level * (1 + spread)),
        year_low=grid(inst.level * (1 - spread)),
        price_avg50=round(inst.level * jitter("avg50", 0.04), inst.decimals + 2),
        price_avg200=round(inst.level * jitter("avg200", 0.08), inst.decimals + 2),
        shares=shares,
        avg_volume=volume,
    )
