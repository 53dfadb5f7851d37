"""Runs of one target that differ in one setting, side by side.

A ``--web-procs 2,4`` or ``--clients 1000,10000`` invocation (bench/variants.py)
leaves several runs of one target in the results; this module pairs each with
the run of the smallest value (its base) and says, per pair:

- CPU per delivered message at every offered load both ran, and their ratio.
  The server's CPU is what the target's ``cpu_counted`` names (scaled: every web
  process, the feed worker and redis-server). Per-message cost falls as batches
  fill, so the headline ratio is read at one load: the highest offered both
  delivered in full (share >= the floor), failing that the lowest both ran;
- both saturations (peak delivered msgs/s) and their ratio, and whether each
  ramp reached a true ceiling or only the harness's top (then the number is a
  floor and so is any ratio built on it).

Pure functions over the results dict, so that old result files can be read too.
"""

from __future__ import annotations

from typing import Any

AXES = {"web_procs": ("web", "web processes"), "clients": ("c", "clients")}


def cpu_per_message(step: dict[str, Any]) -> float | None:
    """Server CPU seconds per delivered message, Redis's CPU included (scaled
    mode's server is its web processes, the feed worker and redis-server)."""
    delivered = step.get("delivered") or 0.0
    if delivered <= 0:
        return None
    cores = step.get("server_cpu_util", 0.0) + (step.get("redis_cpu_util") or 0.0)
    return cores / delivered


def _ok(run: dict[str, Any] | None) -> bool:
    return bool(run and run.get("ok"))


def steps_by_offered(run: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {round(s["offered"]): s for s in run.get("steps", [])}


def cpu_ratio(
    base: dict[str, Any] | None, other: dict[str, Any] | None, floor: float
) -> tuple[float | None, int | None]:
    """(other's CPU per message / base's, the offered load it is read at): the
    highest offered both delivered in full (share >= ``floor``), failing that the
    lowest both ran; (None, None) without a common load."""
    if not (_ok(base) and _ok(other)):
        return None, None
    b_steps, o_steps = steps_by_offered(base), steps_by_offered(other)
    common = sorted(set(b_steps) & set(o_steps))
    if not common:
        return None, None
    full = [
        o
        for o in common
        if b_steps[o]["share"] >= floor and o_steps[o]["share"] >= floor
    ]
    at = full[-1] if full else common[0]
    b, o = cpu_per_message(b_steps[at]), cpu_per_message(o_steps[at])
    return (o / b if b and o else None), at


def step_rows(base: dict[str, Any], other: dict[str, Any]) -> list[dict[str, Any]]:
    """CPU per message (µs) and share of both runs at every offered load both ran."""
    b_steps, o_steps = steps_by_offered(base), steps_by_offered(other)
    rows = []
    for offered in sorted(set(b_steps) & set(o_steps)):
        b, o = b_steps[offered], o_steps[offered]
        b_cpu, o_cpu = cpu_per_message(b), cpu_per_message(o)
        rows.append(
            {
                "offered": offered,
                "base_cpu_us": b_cpu * 1e6 if b_cpu else None,
                "other_cpu_us": o_cpu * 1e6 if o_cpu else None,
                "ratio": o_cpu / b_cpu if b_cpu and o_cpu else None,
                "base_share": b["share"],
                "other_share": o["share"],
                "after_backlog": bool(b.get("after_backlog") or o.get("after_backlog")),
            }
        )
    return rows


def _side(name: str, run: dict[str, Any], axis: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": run[axis],
        "label": run.get("label", name),
        "saturation": run.get("saturation_msgs_per_s") if _ok(run) else None,
        "saturated": run.get("saturated") if _ok(run) else None,
        "cpu_counted": run.get("cpu_counted"),
        "error": None if _ok(run) else run.get("error", "failed"),
    }


def comparisons(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (base, other) pair of runs of one target that differ in one axis
    (web processes at the same client count, or client counts at the same web
    processes), the base being the smallest value."""
    floor = results.get("scenario", {}).get("share_floor", 0.9)
    runs = [(n, t) for n, t in results["targets"].items() if "target" in t]
    out: list[dict[str, Any]] = []
    for axis, fixed in (("web_procs", "clients"), ("clients", "web_procs")):
        groups: dict[tuple[str, Any], list[tuple[str, dict[str, Any]]]] = {}
        for name, run in runs:
            if run.get(axis) is None:
                continue
            groups.setdefault((run["target"], run.get(fixed)), []).append((name, run))
        for (target, fixed_value), members in groups.items():
            if len({run[axis] for _, run in members}) < 2:
                continue
            # A target compared at several values of the other axis: say which.
            several = sum(1 for t, _ in groups if t == target) > 1
            members.sort(key=lambda m: m[1][axis])
            base_name, base = members[0]
            for name, other in members[1:]:
                out.append(
                    _pair(axis, target, (fixed, fixed_value), several, floor)
                    | _measure(axis, base_name, base, name, other, floor)
                )
    return out


def _tag(axis: str, value: Any) -> str:
    return f"{value}{AXES[axis][0]}"


def _pair(
    axis: str, target: str, fixed: tuple[str, Any], several: bool, floor: float
) -> dict[str, Any]:
    suffix = f"_at_{_tag(*fixed)}" if several and fixed[1] is not None else ""
    return {
        "axis": axis,
        "target": target,
        "fixed": {fixed[0]: fixed[1]},
        "share_floor": floor,
        "key_suffix": suffix,
    }


def _measure(
    axis: str,
    base_name: str,
    base: dict[str, Any],
    name: str,
    other: dict[str, Any],
    floor: float,
) -> dict[str, Any]:
    b, o = _side(base_name, base, axis), _side(name, other, axis)
    ratio, at = cpu_ratio(base, other, floor)
    short = base["target"].removeprefix("fmpsite-")
    return {
        "key": f"{short}_{_tag(axis, o['value'])}_vs_{_tag(axis, b['value'])}",
        "base": b,
        "other": o,
        "saturation_ratio": (
            o["saturation"] / b["saturation"]
            if b["saturation"] and o["saturation"]
            else None
        ),
        "cpu_ratio": ratio,
        "cpu_ratio_offered": at,
        "steps": step_rows(base, other) if _ok(base) and _ok(other) else [],
    }


def key(c: dict[str, Any]) -> str:
    """The pair's name in the summary line, e.g. ``scaled_4web_vs_2web``."""
    return c["key"] + c["key_suffix"]


def summary_tokens(comps: list[dict[str, Any]]) -> list[str]:
    """``<key>_cpu=<ratio> <key>_sat=<ratio>`` per pair, for the summary line."""

    def n(v: float | None) -> str:
        return "nan" if v is None else f"{v:.2f}"

    return [
        f"{key(c)}_cpu={n(c['cpu_ratio'])} {key(c)}_sat={n(c['saturation_ratio'])}"
        for c in comps
    ]


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _saturation(side: dict[str, Any]) -> str:
    if side["error"]:
        return f"failed ({side['error'][:60]})"
    ended = "true ceiling" if side["saturated"] else "harness top: a floor"
    return f"{_num(side['saturation'], ',.0f')} msgs/s ({ended})"


def _what(c: dict[str, Any]) -> tuple[str, str, str]:
    """(other tag, base tag, the header line) of a pair."""
    axis = c["axis"]
    o, b = _tag(axis, c["other"]["value"]), _tag(axis, c["base"]["value"])
    ((fixed, value),) = c["fixed"].items()
    held = "" if value is None else f", {value:,} {AXES[fixed][1]} each"
    head = (
        f"{c['target']}: {c['other']['value']:,} vs {c['base']['value']:,} "
        f"{AXES[axis][1]}{held}"
    )
    return o, b, head


def text(comps: list[dict[str, Any]]) -> str:
    """The printed comparison: per pair, every common step and the two ratios."""
    lines: list[str] = []
    for c in comps:
        o, b, head = _what(c)
        lines += [
            f"== {head}",
            f"   server CPU counted: {c['other']['cpu_counted']}",
            f"   {'offered':>9} | {b + ' µs/msg (share)':>21} | "
            f"{o + ' µs/msg (share)':>21} | {o} / {b}",
        ]
        for r in c["steps"]:
            lines.append(
                f"   {r['offered']:>9,} | "
                f"{_num(r['base_cpu_us'], '.2f'):>12} ({r['base_share']:6.1%}) | "
                f"{_num(r['other_cpu_us'], '.2f'):>12} ({r['other_share']:6.1%}) | "
                f"{_num(r['ratio'], '.2f')}"
                + (" (after an undrained backlog)" if r["after_backlog"] else "")
            )
        floor = c["share_floor"]
        lines += [
            f"   CPU per delivered message {o} / {b}: {_num(c['cpu_ratio'], '.2f')}"
            + (
                f" at {c['cpu_ratio_offered']:,} msgs/s offered (the highest load "
                f"both delivered >= {floor:.0%}, else the lowest both ran)"
                if c["cpu_ratio_offered"] is not None
                else " (no common step)"
            ),
            f"   saturation {b}: {_saturation(c['base'])}; {o}: "
            f"{_saturation(c['other'])}; {o} / {b} = "
            f"{_num(c['saturation_ratio'], '.2f')}",
        ]
    return "\n".join(lines)


def markdown(comps: list[dict[str, Any]]) -> list[str]:
    """The comparison table of the generated block in docs/benchmarks.md."""
    if not comps:
        return []
    lines = [
        "### Comparisons",
        "",
        "Runs of one target that differ in one setting, in the same invocation. "
        "CPU per message counts each run's `cpu_counted` processes (scaled: every "
        "web process, the feed worker and redis-server), read at the highest load "
        "both delivered in full.",
        "",
        "| runs | base saturation msgs/s | other saturation msgs/s "
        "| saturation other / base | CPU per message other / base | read at offered "
        "|",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in comps:
        _, _, head = _what(c)
        lines.append(
            f"| {head} | {_saturation(c['base'])} | {_saturation(c['other'])} "
            f"| {_num(c['saturation_ratio'], '.2f')} "
            f"| {_num(c['cpu_ratio'], '.2f')} "
            f"| {_num(c['cpu_ratio_offered'], ',')} |"
        )
    return ["", *lines]
