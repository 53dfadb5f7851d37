"""Benchmark harness: ``python -m bench`` (full) or ``python -m bench --quick``.

fmpsite (embedded and scaled) against two baselines, a minimal ``websockets``
broadcast server (``bench/plain.py``) and the Channels tutorial design
(``bench/naive/``), all fed by the FMP simulator and driven by picows load
clients in separate processes on 127.0.0.1. See docs/benchmarks.md.
"""
