"""The simulator's market: a random walk per symbol around its day's reference.

Prices are a mean-reverting random walk per symbol on the instrument's price grid
(cents, pips), around the day's opening price. The levels, the previous close and
the open come from the symbol and the trading day alone (universe.py), so prices
are plausible (AAPL near 190, EURUSD near 1.08) and the same kind of number after
a restart; with a ``seed`` the sequence of prices of each symbol is deterministic
too. The WebSocket (ws.py) and the REST API (rest.py) read the same walks, so a
quote and a tick of one symbol agree.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from realtime.upstream import protocol
from realtime.upstream.simulator import universe
from realtime.upstream.simulator.universe import DayReference, Instrument

# Reference prices are a pure function of (instrument, day): compute each once.
_day_reference = functools.lru_cache(maxsize=8192)(universe.day_reference)

STREAM_DUPLICATE_PROBABILITY = 0.2
# Walk: each step moves by a share of the price (per asset class) and is pulled
# back toward the day's open, so prices wander about half a percent and never
# run away from their level however long the simulator runs.
VOLATILITY = {"forex": 0.0001, "index": 0.0002}
DEFAULT_VOLATILITY = 0.0004
REVERSION = 0.003
SPREAD = 0.00003  # of the price, per spread step (1-5 steps)


@dataclass
class Faults:
    """What the tests switched on; the WebSocket and the REST API obey it."""

    refuse_logins: bool = False  # answer logins with 401 and close
    silent: bool = False  # send nothing at all, keep sockets open
    rest_batch_status: int | None = None  # e.g. 402: batch is "Premium"


class Walk:
    """Random walk of one symbol; all its randomness comes from its own RNG."""

    def __init__(
        self,
        symbol: str,
        seed: int | None,
        inst: Instrument,
        day: date,
        ref: DayReference,
    ) -> None:
        self.rng = random.Random(f"{seed}:{symbol}" if seed is not None else None)
        self.inst = inst
        self.tick = inst.tick_size
        self.decimals = inst.decimals
        self.trades: list[tuple[float, float]] = []
        self.last_trade: tuple[float, float] | None = None
        self.last_quote: dict[str, Any] | None = None
        self.volume = 0
        self.anchor(day, ref)
        self.units = self.open_units
        self.day_low = self.day_high = self.open

    def anchor(self, day: date, ref: DayReference) -> None:
        """Take a (new) trading day's reference prices; the walk drifts to them."""
        self.day = day
        self.ref = ref
        self.open = ref.open
        self.previous_close = ref.previous_close
        self.open_units = max(1, round(ref.open / self.tick))
        share = VOLATILITY.get(self.inst.asset_class, DEFAULT_VOLATILITY)
        self.sigma = max(1.0, self.open_units * share)

    @property
    def price(self) -> float:
        return round(self.units * self.tick, self.decimals)

    def step(self) -> None:
        pull = -REVERSION * (self.units - self.open_units)
        self.units = max(1, self.units + round(self.rng.gauss(pull, self.sigma)))

    def size(self) -> float:
        """A trade or quote size in the asset class's usual lots."""
        rng = self.rng
        asset_class = self.inst.asset_class
        if asset_class == "crypto":
            return round(rng.uniform(0.0005, 2.0), 8)
        if asset_class == "forex":
            return 1_000_000 * rng.randint(1, 5)
        return 100 * rng.randint(1, 10)

    def trade(self) -> tuple[float, float]:
        price = self.price
        self.day_low = min(self.day_low, price)
        self.day_high = max(self.day_high, price)
        trade = (price, self.size())
        self.volume += trade[1]
        return trade

    def legacy_frame(
        self,
        symbol: str,
        t_ns: int,
        quote_ratio: float,
        break_probability: float,
        late_probability: float = 0.0,
    ) -> str:
        rng = self.rng
        self.step()
        exchange = "binance" if self.inst.asset_class == "crypto" else None
        if self.trades and rng.random() < break_probability:
            lp, ls = rng.choice(self.trades)
            return protocol.encode_tick_legacy(symbol, "B", t_ns, lp=lp, ls=ls)
        # A symbol's first tick is a trade, so a client (the guide's example prints
        # ``last_price`` of every update) never shows a quote-only "None" price.
        if self.last_trade is not None and rng.random() < quote_ratio:
            spread = max(1, round(self.open_units * SPREAD * rng.randint(1, 5)))
            bid = max(1, self.units - spread // 2 - 1)
            ask = bid + spread
            lp, ls = self.last_trade
            return protocol.encode_tick_legacy(
                symbol,
                "Q",
                t_ns,
                ap=round(ask * self.tick, self.decimals),
                as_=self.size(),
                bp=round(bid * self.tick, self.decimals),
                bs=self.size(),
                lp=lp,
                ls=ls,
                e=exchange,
            )
        trade = self.trade()
        self.last_trade = trade
        self.trades.append(trade)
        if len(self.trades) > 5:
            del self.trades[0]
        if late_probability and rng.random() < late_probability:
            t_ns -= int(rng.uniform(0.2, 1.5) * 1e9)  # a late print
        return protocol.encode_tick_legacy(
            symbol, "T", t_ns, lp=trade[0], ls=trade[1], e=exchange
        )

    def stream_frame(self, symbol: str, now_s: int) -> str:
        if self.last_quote is not None and (
            self.rng.random() < STREAM_DUPLICATE_PROBABILITY
        ):
            return protocol.encode_quote_object(self.last_quote)  # re-broadcast
        self.step()
        price, _ = self.trade()
        change = round(price - self.previous_close, self.decimals)
        self.last_quote = {
            "symbol": symbol,
            "name": self.inst.name,
            "price": price,
            "changesPercentage": round(100 * change / self.previous_close, 4),
            "change": change,
            "dayLow": self.day_low,
            "dayHigh": self.day_high,
            "open": self.open,
            "previousClose": self.previous_close,
            "volume": self.volume,
            "timestamp": now_s,
        }
        return protocol.encode_quote_object(self.last_quote)

    def rest_quote(self, now_s: int) -> dict[str, Any]:
        """FMP's ``/stable/quote`` object for this symbol right now."""
        inst, ref = self.inst, self.ref
        price = self.price if self.last_trade is not None else self.open
        change = round(price - self.previous_close, self.decimals)
        return {
            "symbol": inst.symbol,
            "name": inst.name,
            "price": price,
            "changePercentage": round(100 * change / self.previous_close, 5),
            "change": change,
            "volume": round(self.volume + ref.avg_volume // 4, 8),
            "dayLow": min(self.day_low, price),
            "dayHigh": max(self.day_high, price),
            "yearHigh": max(ref.year_high, self.day_high, price),
            "yearLow": min(ref.year_low, self.day_low, price),
            "marketCap": round(price * ref.shares),
            "priceAvg50": ref.price_avg50,
            "priceAvg200": ref.price_avg200,
            "exchange": inst.exchange,
            "open": self.open,
            "previousClose": self.previous_close,
            "timestamp": now_s,
        }


class Market:
    """The walks of every symbol seen, for the lifetime of the simulator.

    Walks outlive connections and restarts, so a reconnecting feed sees prices
    carry on where they were instead of jumping.
    """

    def __init__(
        self, *, seed: int | None, any_symbol: bool, trading_day: date | None
    ) -> None:
        self.seed = seed
        self.any_symbol = any_symbol
        self._fixed_day = trading_day
        self._day: tuple[float, date] | None = None
        self._walks: dict[str, Walk] = {}

    def knows(self, symbol: str) -> bool:
        """Whether FMP (this simulator) lists ``symbol`` (upper case)."""
        return self.any_symbol or symbol in universe.SYMBOLS

    def instrument(self, symbol: str) -> Instrument | None:
        if self.any_symbol:
            return universe.synthetic_instrument(symbol)
        return universe.instrument(symbol)

    def trading_day(self) -> date:
        """The trading day of the reference prices (recomputed once a second)."""
        if self._fixed_day is not None:
            return self._fixed_day
        now = time.monotonic()
        if self._day is None or now - self._day[0] > 1.0:
            self._day = (now, universe.trading_day())
        return self._day[1]

    def reference(self, symbol: str) -> DayReference | None:
        """The day's previous close, open, ... of a known symbol."""
        inst = self.instrument(symbol)
        return None if inst is None else _day_reference(inst, self.trading_day())

    def walk(self, key: str, symbol: str) -> Walk | None:
        """The shared walk of ``symbol`` (``key`` separates the stream's walks)."""
        walk = self._walks.get(key)
        day = self.trading_day()
        if walk is None:
            inst = self.instrument(symbol)
            if inst is None:
                return None
            walk = self._walks[key] = Walk(
                key, self.seed, inst, day, _day_reference(inst, day)
            )
        elif walk.day != day:
            walk.anchor(day, _day_reference(walk.inst, day))
        return walk

    def legacy_frames(
        self,
        symbols: Sequence[str],
        count: int,
        rng: random.Random,
        quote_ratio: float,
        break_probability: float,
        late_probability: float = 0.0,
    ) -> list[str]:
        """``count`` compact ticks of symbols drawn from ``symbols`` (all known);
        ``late_probability`` of the trades are stamped 0.2-1.5 s in the past."""
        frames: list[str] = []
        walks, day = self._walks, self.trading_day()
        for _ in range(count):
            symbol = symbols[rng.randrange(len(symbols))]
            walk = walks.get(symbol)
            if walk is None or walk.day != day:
                walk = self.walk(symbol, symbol)
                assert walk is not None  # known symbols only
            frames.append(
                walk.legacy_frame(
                    symbol,
                    time.time_ns(),
                    quote_ratio,
                    break_probability,
                    late_probability,
                )
            )
        return frames

    def stream_frames(
        self, symbols: Sequence[str], count: int, rng: random.Random
    ) -> list[str]:
        """``count`` standard-socket quote objects of symbols drawn from ``symbols``."""
        now_s = int(time.time())
        frames: list[str] = []
        for _ in range(count):
            symbol = symbols[rng.randrange(len(symbols))]
            walk = self.walk(f"stream:{symbol}", symbol)
            assert walk is not None
            frames.append(walk.stream_frame(symbol, now_s))
        return frames

    def quote(self, symbol: str) -> dict[str, Any] | None:
        """FMP's quote object for ``symbol`` now, or None when FMP would not know it."""
        symbol = symbol.strip().upper()
        if not symbol or not self.knows(symbol):
            return None
        walk = self._walks.get(symbol) or self._walks.get(f"stream:{symbol}")
        if walk is None:  # not streamed yet: the day's open, without keeping a walk
            inst = self.instrument(symbol)
            if inst is None:
                return None
            day = self.trading_day()
            walk = Walk(symbol, self.seed, inst, day, _day_reference(inst, day))
        return walk.rest_quote(int(time.time()))
