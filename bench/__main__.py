"""``python -m bench [--quick] [--scenario connections]``: run a benchmark.

The throughput scenario (default) prints its summary line last; the connection
ladder (``--scenario connections``, bench/connections.py) prints one line per
step. See docs/benchmarks.md for the scenarios and how to read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import report
from bench.connections import Ladder, climb
from bench.procs import ROOT, Proc, raise_nofile
from bench.runner import Scenario, host_info, redis_pid, run_target
from bench.targets import build


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a smoke run in under a minute")
    p.add_argument(
        "--scenario",
        choices=["throughput", "connections"],
        default="throughput",
        help="throughput ramp (default) or the connection ladder",
    )
    p.add_argument(
        "--steps",
        help="connections: comma-separated embedded steps (default 1000,5000,10000,"
        "15000)",
    )
    p.add_argument("--scaled-steps", help="connections: scaled steps (default 30000)")
    p.add_argument(
        "--offered", type=float, help="connections: msgs/s offered at every step"
    )
    p.add_argument(
        "--subscribe-in-flight",
        type=int,
        help="connections: unacknowledged subscribes per load-client process "
        "(default 64; 0: every connection subscribes at once, a storm)",
    )
    p.add_argument("--max-offered", type=float, help="throughput: the ramp's top")
    p.add_argument("--targets", help="comma-separated subset of the targets")
    p.add_argument("--clients", type=int)
    p.add_argument("--symbols", type=int)
    p.add_argument("--per-client", type=int)
    p.add_argument("--client-procs", type=int)
    p.add_argument("--step-secs", type=float)
    p.add_argument("--start-offered", type=float)
    p.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update docs/benchmarks.md and its plot (default: on for full runs)",
    )
    p.add_argument(
        "--fmpsite-root",
        type=Path,
        help="run fmpsite from another checkout (e.g. a scratch copy with a "
        "prototype change); the baselines and the harness stay these",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for fmpsite's processes (repeatable), e.g. "
        "REALTIME_GC_THRESHOLDS=off, to measure one setting's effect",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the process logs")
    return p.parse_args(argv)


def scenario(args: argparse.Namespace) -> Scenario:
    sc = Scenario.quick() if args.quick else Scenario()
    for name in (
        "clients",
        "symbols",
        "per_client",
        "client_procs",
        "step_secs",
        "start_offered",
        "max_offered",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(sc, name, value)
    if args.targets:
        sc.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    return sc


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--server-env wants NAME=VALUE, not {item!r}")
        env[name.strip()] = value
    return env


def ladder(args: argparse.Namespace) -> Ladder:
    lad = Ladder.quick() if args.quick else Ladder()

    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    if args.steps:
        lad.embedded_steps = ints(args.steps)
    if args.scaled_steps:
        lad.scaled_steps = ints(args.scaled_steps)
    for name in (
        "offered",
        "step_secs",
        "client_procs",
        "symbols",
        "per_client",
        "subscribe_in_flight",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(lad, name, value)
    if args.targets:
        lad.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(lad.targets) - {"fmpsite-embedded", "fmpsite-scaled"}
    if unknown:
        raise SystemExit(f"the ladder runs fmpsite targets only, not {unknown}")
    return lad


def results_header(
    quick: bool, root: Path | None, server_env: dict[str, str] | None, **what: Any
) -> dict:
    """What every results file starts with: when, where, which code and settings
    (``what``: the scenario or the ladder), and the targets' slot."""
    return {
        "started_at": datetime.datetime.now(datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "quick": quick,
        "host": host_info(),
        **what,
        "targets": {},
        "fmpsite_root": str(root) if root else None,
        "server_env": server_env or {},
    }


async def run_ladder(
    lad: Ladder,
    log_dir: Path,
    quick: bool,
    root: Path | None,
    server_env: dict[str, str] | None = None,
) -> dict:
    t0 = time.monotonic()
    results = results_header(
        quick, root, server_env, nofile=list(raise_nofile()), ladder=asdict(lad)
    )
    rpid = redis_pid()
    for target in build(lad.targets, log_dir, root or ROOT, server_env):
        print(f"== {target.label}", flush=True)
        results["targets"][target.name] = await climb(lad, target, log_dir, rpid)
    results["secs"] = round(time.monotonic() - t0, 1)
    return results


async def run(
    sc: Scenario,
    log_dir: Path,
    quick: bool,
    root: Path | None,
    server_env: dict[str, str] | None = None,
) -> dict:
    t0 = time.monotonic()
    results = results_header(quick, root, server_env, scenario=asdict(sc))
    rpid = redis_pid()
    for target in build(sc.targets, log_dir, root or ROOT, server_env):
        print(f"== {target.label}", flush=True)
        results["targets"][target.name] = await run_target(sc, target, log_dir, rpid)
        results["simulator"] = results["targets"][target.name].get("simulator")
    results["secs"] = round(time.monotonic() - t0, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Every child inherits it: servers, simulator and load clients alike.
    raise_nofile()
    log_dir = Path(tempfile.mkdtemp(prefix="fmpsite-bench-logs-"))
    # SIGTERM (e.g. from make or CI) takes the same cleanup path as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.scenario == "connections":
        return main_ladder(args, log_dir)
    sc = scenario(args)
    try:
        results = asyncio.run(
            run(sc, log_dir, args.quick, args.fmpsite_root, server_env(args))
        )
    finally:
        stop_and_clean(args, log_dir)
    results["summary"] = report.summary(results)
    results["summary_line"] = report.summary_line(results["summary"])
    path = report.write_json(results)
    print(f"results: {path.relative_to(report.ROOT)}")
    docs = (not args.quick) if args.docs is None else args.docs
    if docs:
        report.update_docs(results)
        print(f"updated {report.DOCS.relative_to(report.ROOT)} and {report.PLOT.name}")
    print(f"total {results['secs']:.0f} s")
    print(results["summary_line"], flush=True)
    return 0


def stop_and_clean(args: argparse.Namespace, log_dir: Path) -> None:
    Proc.stop_all()
    if args.keep_logs:
        print(f"logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)


def main_ladder(args: argparse.Namespace, log_dir: Path) -> int:
    lad = ladder(args)
    try:
        results = asyncio.run(
            run_ladder(lad, log_dir, args.quick, args.fmpsite_root, server_env(args))
        )
    finally:
        stop_and_clean(args, log_dir)
    path = report.write_ladder_json(results)
    print(f"results: {path.relative_to(report.ROOT)}")
    docs = (not args.quick) if args.docs is None else args.docs
    if docs:
        report.update_ladder_docs(results)
        print(f"updated {report.DOCS.relative_to(report.ROOT)}")
    print(f"total {results['secs']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
