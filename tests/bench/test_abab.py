"""bench/abab.py: alternating before/after runs read as medians with their
spread (the runs themselves are benchmarks, not tests)."""

from __future__ import annotations

import json
from typing import Any

from bench import abab


def results(cpu: dict[int, float], saturation: float) -> dict[str, Any]:
    steps = [
        {"offered": float(o), "server_cpu_per_10k": c, "p99_ms": o / 1000}
        for o, c in cpu.items()
    ]
    return {
        "targets": {
            "fmpsite-embedded": {"steps": steps, "saturation_msgs_per_s": saturation}
        }
    }


def test_each_step_compares_the_medians_and_shows_each_sides_range() -> None:
    before = [
        results({1000: 0.30, 2000: 0.20}, 250_000),
        results({1000: 0.20, 2000: 0.22}, 256_000),
        results({1000: 0.25, 2000: 0.24}, 255_000),
    ]
    after = [results({1000: 0.26, 2000: 0.22}, 256_000)]
    lines = abab.table(before, after, "fmpsite-embedded")
    assert lines[0].startswith("**fmpsite-embedded**: saturation msgs/s before ")
    assert "255,000 (250,000-256,000)" in lines[0]
    assert "(+0.4 %)" in lines[0]
    assert lines[4] == "| 1,000 | 0.250 (0.200-0.300) | 0.260 | +4.0 % | 1 (1-1) | 1 |"
    assert lines[5].startswith("| 2,000 | 0.220 (0.200-0.240) | 0.220 | +0.0 % |")


def test_a_step_only_one_side_ran_has_no_change() -> None:
    before = [results({1000: 0.30}, 1000)]
    after = [results({1000: 0.30, 2000: 0.20}, 2000)]
    row = abab.table(before, after, "fmpsite-embedded")[-1]
    assert row == "| 2,000 | - | 0.200 | - | - | 2 |"


def test_main_reads_result_files_and_prints_a_table_per_shared_target(
    tmp_path, capsys
) -> None:
    paths = []
    for n, cpu in enumerate((0.3, 0.33)):
        path = tmp_path / f"{n}.json"
        path.write_text(json.dumps(results({1000: cpu}, 1000)))
        paths.append(str(path))
    abab.main(["--before", paths[0], "--after", paths[1]])
    out = capsys.readouterr().out
    assert "**fmpsite-embedded**" in out
    assert "| 1,000 | 0.300 | 0.330 | +10.0 % |" in out
