"""The FMP simulator: a stand-in for FMP on loopback, for tests, benchmarks and
embedded mode without an API key.

- ``universe``: the symbols it lists (the product's realtime/universe.py) with
  their price levels (``universe.csv``) and each day's reference prices;
- ``market``: the random walk of each symbol and the faults switched on;
- ``ws``: FMP's WebSocket (login, subscriptions, ticks, heartbeats);
- ``rest``: FMP's REST quote and search endpoints;
- ``server``: ``FmpSimulator``, all of it started and stopped together.
"""

from realtime.upstream.simulator.server import DEFAULT_STREAM_SYMBOLS, FmpSimulator

__all__ = ["DEFAULT_STREAM_SYMBOLS", "FmpSimulator"]
