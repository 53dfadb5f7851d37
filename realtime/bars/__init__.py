"""OHLCV bars built from the feed's trades (docs/decisions/0005-bars.md).

``keys`` names a bar stream (``AAPL@1m``) and parses intervals, ``aggregate`` is
the pure aggregator, ``feed`` wires it to the feed leader and a broker.
"""
