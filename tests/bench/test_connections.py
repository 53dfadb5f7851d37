"""The connection ladder's pure parts: who subscribes to what, from where, and
how a run becomes the table in docs/benchmarks.md (bench/connections.py,
bench/report.py). The ladder itself runs servers; it is a benchmark, not a test."""

from __future__ import annotations

import socket
from collections import Counter

from bench import report
from bench.connections import Ladder
from bench.procs import PAGE_SIZE, sockstat
from bench.runner import Scenario, Step, delivers, step_ok


def test_every_symbol_gets_the_same_number_of_subscribers() -> None:
    sc = Ladder().scenario(15_000)
    assignments = sc.assignments()
    assert len(assignments) == 15_000
    assert all(len(set(symbols)) == 5 for symbols in assignments)
    per_symbol = Counter(s for symbols in assignments for s in symbols)
    assert len(per_symbol) == 500
    assert set(per_symbol.values()) == {150}
    assert sc.subscribers_per_symbol() == 150


def test_a_later_step_keeps_the_earlier_connections_symbols() -> None:
    ladder = Ladder()
    small, large = ladder.scenario(1000), ladder.scenario(5000)
    assert large.assignments()[:1000] == small.assignments()


def test_connections_spread_over_the_loopback_source_addresses() -> None:
    ladder = Ladder(sources=8)
    sources = Counter(ladder.source(i) for i in range(16_000))
    assert sorted(sources) == [f"127.0.0.{i}" for i in range(2, 10)]
    assert set(sources.values()) == {2000}


def _step(share: float, p99: float | None) -> Step:
    return Step(
        rate=1.0,
        offered=1000.0,
        delivered=1000.0 * share,
        share=share,
        p50_ms=1.0,
        p99_ms=p99,
        max_ms=p99 or 0.0,
        server_cpu_s=0.1,
        server_cpu_per_10k=0.1,
        server_cpu_util=0.1,
        client_cpu_util=0.1,
        sim_cpu_util=0.0,
        redis_cpu_util=None,
        secs=10.0,
        starved=0,
        open=1000,
        ticks_measured=None,
    )


def test_the_ramp_climbs_on_share_and_a_late_step_is_not_sustained() -> None:
    sc = Scenario()
    late = _step(0.99, sc.p99_limit_ms + 1)
    assert delivers(sc, late) and not step_ok(sc, late)
    short = _step(sc.share_floor - 0.01, 5.0)
    assert not delivers(sc, short) and not step_ok(sc, short)
    assert step_ok(sc, _step(1.0, 5.0))


def _ladder_results() -> dict:
    step = {
        "connections": 1000,
        "open": 1000,
        "failed": 0,
        "handshakes_per_s": 900.0,
        "rss_per_connection": 38 * 1024,
        "tcp_mem_per_connection": 0.0,
        "socket_slab_per_connection": 6.5 * 1024,
        "msgs_per_connection_per_s": 20.0,
        "delivered": 20_000.0,
        "share": 1.0,
        "p50_ms": 3.0,
        "p99_ms": 6.0,
        "server_cpu_us_per_msg": 13.1,
        "client_cpu_us_per_msg": 10.6,
        "server_cpu_util": 0.26,
        "client_cpu_util": 0.21,
    }
    return {
        "started_at": "2026-12-07T11:51:21Z",
        "host": {"cpus": 2, "cpu_model": "test CPU", "python": "3.11"},
        "nofile": [20000, 20000],
        "secs": 100.0,
        "ladder": {
            "symbols": 500,
            "per_client": 5,
            "offered": 20_000.0,
            "step_secs": 10.0,
            "sources": 8,
        },
        "targets": {
            "fmpsite-embedded": {
                "label": "fmpsite embedded",
                "ok": True,
                "steps": [step, {**step, "connections": 5000, "open": 4990}],
            },
            "fmpsite-scaled": {
                "label": "fmpsite scaled",
                "ok": False,
                "error": "RuntimeError('web0 exited')",
                "steps": [],
            },
        },
    }


def test_the_ladder_table_has_a_row_per_step_and_says_what_failed() -> None:
    text = report.ladder_markdown(_ladder_results())
    lines = text.splitlines()
    assert lines[0] == report.LADDER_BEGIN and lines[-1] == report.LADDER_END
    rows = [line for line in lines if line.startswith("| fmpsite")]
    assert len(rows) == 3
    header = next(line for line in lines if line.startswith("| server"))
    columns = header.count("|")
    assert columns == report.LADDER_COLUMNS + 1
    assert all(row.count("|") == columns for row in rows)
    assert "| 4,990 |" in rows[1]
    assert "| 38.0 |" in rows[0] and "| 6.5 |" in rows[0]
    assert "failed: `RuntimeError('web0 exited')`" in rows[2]


def test_sockstat_reads_the_kernels_tcp_counters() -> None:
    with socket.create_server(("127.0.0.1", 0)):
        counters = sockstat()
    assert counters["inuse"] >= 1  # the listening socket, at least
    assert counters["mem_bytes"] == counters["mem"] * PAGE_SIZE
