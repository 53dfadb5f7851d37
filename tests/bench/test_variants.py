"""The comparison runs' pure parts: which runs one invocation makes, what they are
called, and how two runs become ratios (bench/variants.py, bench/compare.py,
bench/report.py). The runs themselves start servers; they are benchmarks, not
tests."""

from __future__ import annotations

from typing import Any

import pytest

from bench import compare, report
from bench.__main__ import client_counts, parse_args, scenario, web_procs
from bench.runner import CONNS_PER_CLIENT_PROC, Scenario, source_address
from bench.variants import Variant, parse_counts, plan


def test_counts_are_distinct_and_ascending_so_the_first_is_the_base() -> None:
    assert parse_counts("4, 2,4", "--web-procs") == [2, 4]
    assert parse_counts("10000,1000", "--clients") == [1000, 10000]


@pytest.mark.parametrize("text", ["", "two", "2,0", "-1"])
def test_a_bad_count_names_the_option_and_the_value(text: str) -> None:
    with pytest.raises(SystemExit, match="--web-procs"):
        parse_counts(text, "--web-procs")


def test_web_procs_runs_the_scaled_target_once_per_value_back_to_back() -> None:
    runs = plan(["fmpsite-embedded", "fmpsite-scaled"], [1000], [2, 4])
    assert [r.name for r in runs] == [
        "fmpsite-embedded",
        "fmpsite-scaled-2web",
        "fmpsite-scaled-4web",
    ]
    assert [r.webs for r in runs] == [None, 2, 4]


def test_client_counts_run_every_target_once_per_count() -> None:
    runs = plan(["plain", "fmpsite-embedded"], [1000, 10000], None)
    assert [r.name for r in runs] == [
        "plain-1000clients",
        "plain-10000clients",
        "fmpsite-embedded-1000clients",
        "fmpsite-embedded-10000clients",
    ]
    assert runs[3].label("fmpsite embedded (1 daphne)") == (
        "fmpsite embedded (1 daphne), 10,000 clients"
    )


def test_without_lists_the_runs_keep_their_old_names() -> None:
    runs = plan(["fmpsite-embedded", "fmpsite-scaled"], [1000], None)
    assert [r.name for r in runs] == ["fmpsite-embedded", "fmpsite-scaled"]
    assert runs[1].webs == 2
    assert runs[0].label("x") == "x"


def test_web_procs_without_the_scaled_target_is_refused() -> None:
    with pytest.raises(SystemExit, match="fmpsite-scaled"):
        plan(["fmpsite-embedded"], [1000], [2, 4])


def test_the_cli_passes_the_lists_and_the_scenario_takes_the_smallest() -> None:
    args = parse_args(["--clients", "10000,1000", "--web-procs", "4,2"])
    sc = scenario(args)
    assert client_counts(args, sc) == [1000, 10000]
    assert sc.clients == 1000
    assert web_procs(args) == [2, 4]
    plain = parse_args([])
    assert client_counts(plain, scenario(plain)) == [Scenario().clients]
    assert web_procs(plain) is None


def test_ten_thousand_clients_get_enough_load_client_processes() -> None:
    assert Scenario(clients=1000).load_client_procs() == 2
    big = Scenario(clients=10_000)
    assert big.load_client_procs() == 3
    assert big.clients / big.load_client_procs() <= CONNS_PER_CLIENT_PROC
    assert {source_address(i, 8) for i in range(16)} == {
        f"127.0.0.{i}" for i in range(2, 10)
    }


# --- comparisons --------------------------------------------------------------


def _step(offered: float, share: float, server: float, redis: float | None) -> dict:
    return {
        "offered": offered,
        "delivered": offered * share,
        "share": share,
        "server_cpu_util": server,
        "redis_cpu_util": redis,
        "after_backlog": False,
    }


def _run(target: str, clients: int, webs: int | None, **fields: Any) -> dict:
    return {
        "label": f"{target} {webs} {clients}",
        "ok": True,
        "target": target,
        "clients": clients,
        "web_procs": webs,
        "cpu_counted": f"{webs} daphne web processes + 1 feed worker + redis-server",
        **fields,
    }


def _scaled(webs: int, saturation: float, steps: list[dict]) -> dict:
    return _run(
        "fmpsite-scaled",
        1000,
        webs,
        saturation_msgs_per_s=saturation,
        saturated=True,
        steps=steps,
    )


def _web_procs_results() -> dict:
    two = _scaled(
        2,
        200_000.0,
        [
            _step(1000, 1.0, 0.04, 0.01),  # 50 µs/msg
            _step(128_000, 1.0, 1.0, 0.28),  # 10 µs/msg
            _step(256_000, 0.78, 1.5, 0.06),
        ],
    )
    four = _scaled(
        4,
        210_000.0,
        [
            _step(1000, 1.0, 0.05, 0.01),  # 60 µs/msg
            _step(128_000, 1.0, 1.1, 0.308),  # 11 µs/msg
            _step(256_000, 0.82, 1.6, 0.08),
            _step(181_000, 0.95, 1.4, 0.1),  # a bisection step: 2web did not run it
        ],
    )
    return {
        "scenario": {"share_floor": 0.9, "clients": 1000},
        "targets": {"fmpsite-scaled-2web": two, "fmpsite-scaled-4web": four},
    }


def test_web_procs_pair_reads_cpu_per_message_at_the_highest_full_common_load() -> None:
    (c,) = compare.comparisons(_web_procs_results())
    assert c["axis"] == "web_procs" and compare.key(c) == "scaled_4web_vs_2web"
    assert c["base"]["name"] == "fmpsite-scaled-2web"
    assert c["cpu_ratio_offered"] == 128_000  # not 256k: neither delivered 90 %
    assert c["cpu_ratio"] == pytest.approx(1.1)
    assert c["saturation_ratio"] == pytest.approx(1.05)
    rows = {r["offered"]: r for r in c["steps"]}
    assert sorted(rows) == [1000, 128_000, 256_000]  # common steps only
    assert rows[1000]["base_cpu_us"] == pytest.approx(50.0)
    assert rows[1000]["other_cpu_us"] == pytest.approx(60.0)
    assert rows[1000]["ratio"] == pytest.approx(1.2)


def test_the_summary_line_and_the_printout_carry_the_pair() -> None:
    results = _web_procs_results()
    s = report.summary(results)
    assert s["scaled"] == 200_000.0  # the base run: 2 web processes
    line = report.summary_line(s)
    assert line.endswith("scaled_4web_vs_2web_cpu=1.10 scaled_4web_vs_2web_sat=1.05")
    out = compare.text(compare.comparisons(results))
    assert "fmpsite-scaled: 4 vs 2 web processes, 1,000 clients each" in out
    assert "server CPU counted: 4 daphne web processes + 1 feed worker" in out
    assert "4web / 2web: 1.10 at 128,000 msgs/s offered" in out
    assert "saturation 2web: 200,000 msgs/s (true ceiling)" in out


def test_client_counts_pair_per_target_and_a_ramp_without_ceiling_is_a_floor() -> None:
    small = _run(
        "fmpsite-embedded",
        1000,
        None,
        saturation_msgs_per_s=250_000.0,
        saturated=True,
        steps=[_step(1000, 1.0, 0.03, None)],
        half_load={"p99_ms": 30.0},
    )
    large = _run(
        "fmpsite-embedded",
        10_000,
        None,
        saturation_msgs_per_s=200_000.0,
        saturated=False,
        steps=[_step(1000, 1.0, 0.045, None)],
    )
    failed = {**_run("plain", 10_000, None), "ok": False, "error": "RuntimeError()"}
    results = {
        "scenario": {"share_floor": 0.9, "clients": 1000},
        "targets": {
            "fmpsite-embedded-1000clients": small,
            "fmpsite-embedded-10000clients": large,
            "plain-1000clients": _run(
                "plain", 1000, None, saturation_msgs_per_s=1.0, steps=[]
            ),
            "plain-10000clients": failed,
        },
    }
    by_key = {compare.key(c): c for c in compare.comparisons(results)}
    assert set(by_key) == {"embedded_10000c_vs_1000c", "plain_10000c_vs_1000c"}
    emb = by_key["embedded_10000c_vs_1000c"]
    assert emb["saturation_ratio"] == pytest.approx(0.8)
    assert emb["cpu_ratio"] == pytest.approx(1.5)
    out = compare.text([emb])
    assert "fmpsite-embedded: 10,000 vs 1,000 clients" in out
    assert "200,000 msgs/s (harness top: a floor)" in out
    assert by_key["plain_10000c_vs_1000c"]["saturation_ratio"] is None
    assert "failed (RuntimeError())" in compare.text([by_key["plain_10000c_vs_1000c"]])
    s = report.summary(results)
    assert s["fmpsite"] == 250_000.0 and s["p99_ms"] == 30.0  # the 1,000 run


def test_old_results_without_run_fields_compare_nothing() -> None:
    results = {
        "scenario": {"share_floor": 0.9},
        "targets": {"fmpsite-scaled": {"ok": True, "steps": []}},
    }
    assert compare.comparisons(results) == []
    assert report.summary(results)["comparisons"] == []


def test_the_generated_block_has_a_comparison_row_per_pair() -> None:
    rows = [
        line
        for line in compare.markdown(compare.comparisons(_web_procs_results()))
        if line.startswith("| fmpsite-scaled")
    ]
    assert rows == [
        "| fmpsite-scaled: 4 vs 2 web processes, 1,000 clients each "
        "| 200,000 msgs/s (true ceiling) | 210,000 msgs/s (true ceiling) "
        "| 1.05 | 1.10 | 128,000 |"
    ]


def test_variant_names_are_the_results_keys() -> None:
    assert Variant("fmpsite-scaled", 10_000, 4, tag_clients=True).name == (
        "fmpsite-scaled-4web-10000clients"
    )


def test_many_clients_start_the_ramp_where_a_step_counts_enough_ticks() -> None:
    assert Scenario().first_offered() == 1000.0  # 10 ticks/s x 10 s: unchanged
    many = Scenario(clients=10_000)  # 1,000 subscribers per symbol
    assert many.first_offered() == 8000.0  # 8 ticks/s: the first >= 50 per step
    assert many.first_offered() / many.subscribers_per_symbol() * many.step_secs >= (
        many.min_ticks_per_step
    )
