"""Alternating before/after runs of the same targets, read together.

One pair of runs cannot show a 5 % change: the same build's CPU per message
moves by 10 % or more between runs of this harness (docs/benchmarks.md). Runs
that alternate (before, after, before, after...) on a quiet box share whatever
drifts, so the median of each side per step, with each side's spread beside
it, says what a single pair cannot: whether the change is larger than the
noise. ``python -m bench.abab --before A1.json A2.json --after B1.json B2.json``
prints a markdown table per target (docs/benchmarks.md carries its output).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.compare import steps_by_offered


def load(paths: list[str]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]


def side(runs: list[dict[str, Any]], target: str, offered: int, field: str) -> list:
    values = []
    for results in runs:
        step = steps_by_offered(results["targets"].get(target, {})).get(offered)
        if step is not None and step.get(field) is not None:
            values.append(step[field])
    return values


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def change(before: list[float], after: list[float]) -> str:
    if not before or not after or statistics.median(before) == 0:
        return "-"
    ratio = statistics.median(after) / statistics.median(before) - 1
    return f"{ratio * 100:+.1f} %"


def table(
    before: list[dict[str, Any]], after: list[dict[str, Any]], target: str
) -> list[str]:
    offered = sorted(
        {o for r in before + after for o in steps_by_offered(r["targets"][target])}
    )
    sat_b = [r["targets"][target]["saturation_msgs_per_s"] for r in before]
    sat_a = [r["targets"][target]["saturation_msgs_per_s"] for r in after]
    lines = [
        f"**{target}**: saturation msgs/s before {spread(sat_b, ',.0f')}, "
        f"after {spread(sat_a, ',.0f')} ({change(sat_b, sat_a)}); "
        f"{len(before)} runs each, median (min-max).",
        "",
        "| offered msgs/s | CPU s/10k before | after | change of medians "
        "| p99 ms before | after |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for o in offered:
        cpu_b = side(before, target, o, "server_cpu_per_10k")
        cpu_a = side(after, target, o, "server_cpu_per_10k")
        p99_b = side(before, target, o, "p99_ms")
        p99_a = side(after, target, o, "p99_ms")
        lines.append(
            f"| {o:,} | {spread(cpu_b, '.3f')} | {spread(cpu_a, '.3f')} "
            f"| {change(cpu_b, cpu_a)} | {spread(p99_b, '.0f')} "
            f"| {spread(p99_a, '.0f')} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="+", required=True)
    parser.add_argument("--after", nargs="+", required=True)
    args = parser.parse_args(argv)
    before, after = load(args.before), load(args.after)
    targets = [t for t in before[0]["targets"] if all(t in r["targets"] for r in after)]
    for target in targets:
        print("\n".join(table(before, after, target)))
        print()


if __name__ == "__main__":
    main()
