"""The well-known symbols and their names, as FMP names them: one table.

A few hundred US stocks and ETFs, indices, crypto pairs, forex pairs and commodity
futures (``universe.csv`` beside this module, read once). The product suggests
them in symbol boxes and names them when FMP cannot be asked; the simulator lists
exactly these (realtime/upstream/simulator/universe.py adds their price levels).
It suggests, it never decides what is valid: the stream and FMP do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

ASSET_CLASSES = ("stock", "etf", "index", "crypto", "forex", "commodity")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One symbol of the universe, as FMP's quote endpoint describes it."""

    symbol: str
    name: str
    exchange: str
    asset_class: str


def _load() -> dict[str, Instrument]:
    text = resources.files(__package__).joinpath("universe.csv").read_text("utf-8")
    instruments: dict[str, Instrument] = {}
    for row in csv.DictReader(text.splitlines()):
        inst = Instrument(
            row["symbol"], row["name"], row["exchange"], row["asset_class"]
        )
        if inst.asset_class not in ASSET_CLASSES or inst.symbol in instruments:
            raise ValueError(f"universe.csv: bad row {row!r}")
        instruments[inst.symbol] = inst
    return instruments


INSTRUMENTS: dict[str, Instrument] = _load()
SYMBOLS: frozenset[str] = frozenset(INSTRUMENTS)
NAMES: dict[str, str] = {s: i.name for s, i in INSTRUMENTS.items()}
