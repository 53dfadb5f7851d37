"""``python -m bench [--quick] [--scenario connections]``: run a benchmark.

The throughput scenario (default) prints its summary line last; with
``--web-procs 2,4`` or ``--clients 1000,10000`` (bench/variants.py) it runs the
targets once per value and prints the comparison (bench/compare.py) before it.
The connection ladder (``--scenario connections``, bench/connections.py) prints
one line per step. See docs/benchmarks.md for the scenarios and how to read the
numbers.
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
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import compare, report
from bench.connections import Ladder, climb
from bench.procs import ROOT, Proc, raise_nofile
from bench.runner import Scenario, host_info, redis_pid, run_target
from bench.targets import build
from bench.variants import DEFAULT_WEBS, parse_counts, plan


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
    p.add_argument(
        "--clients",
        help="throughput: clients; a list (1000,10000) runs every target once per "
        "count and compares them",
    )
    p.add_argument(
        "--web-procs",
        help="throughput: the scaled target's daphne web processes (default 2); a "
        "list (2,4) runs it once per value and compares them",
    )
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
    if args.clients:
        sc.clients = client_counts(args, sc)[0]
    if args.targets:
        sc.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    return sc


def client_counts(args: argparse.Namespace, sc: Scenario) -> list[int]:
    """``--clients``' counts in ascending order (the scenario's one without it)."""
    if not args.clients:
        return [sc.clients]
    return parse_counts(args.clients, "--clients")


def web_procs(args: argparse.Namespace) -> list[int] | None:
    return parse_counts(args.web_procs, "--web-procs") if args.web_procs else None


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
    clients: list[int] | None = None,
    webs: list[int] | None = None,
) -> dict:
    """Every run of ``plan()``: per target, per client count, per number of web
    processes, each on a fresh simulator and fresh server processes."""
    t0 = time.monotonic()
    clients = clients or [sc.clients]
    results = results_header(
        quick,
        root,
        server_env,
        scenario=asdict(sc),
        clients=clients,
        web_procs=webs,
        nofile=list(raise_nofile()),
    )
    rpid = redis_pid()
    for run_ in plan(sc.targets, clients, webs):
        (target,) = build(
            [run_.target],
            log_dir,
            root or ROOT,
            server_env,
            webs=run_.webs or DEFAULT_WEBS,
        )
        target.label = run_.label(target.label)
        print(f"== {target.label}", flush=True)
        result = await run_target(
            replace(sc, clients=run_.clients), target, log_dir, rpid
        )
        result |= {"target": run_.target, "web_procs": run_.webs}
        results["targets"][run_.name] = result
        results["simulator"] = result.get("simulator")
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
    clients, webs = client_counts(args, sc), web_procs(args)
    plan(sc.targets, clients, webs)  # a bad combination fails before any start
    try:
        results = asyncio.run(
            run(
                sc,
                log_dir,
                args.quick,
                args.fmpsite_root,
                server_env(args),
                clients,
                webs,
            )
        )
    finally:
        stop_and_clean(args, log_dir)
    results["summary"] = report.summary(results)
    results["summary_line"] = report.summary_line(results["summary"])
    results["comparisons"] = compare.comparisons(results)
    path = report.write_json(results)
    print(f"results: {path.relative_to(report.ROOT)}")
    # A comparison run is not the page's reference run: it writes the page only
    # when asked to.
    comparing = len(clients) > 1 or webs is not None
    docs = (not args.quick and not comparing) if args.docs is None else args.docs
    if docs:
        report.update_docs(results)
        print(f"updated {report.DOCS.relative_to(report.ROOT)} and {report.PLOT.name}")
    elif comparing and args.docs is None and not args.quick:
        print("docs not updated (a comparison run: --docs writes them)")
    print(f"total {results['secs']:.0f} s")
    if results["comparisons"]:
        print(compare.text(results["comparisons"]))
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
