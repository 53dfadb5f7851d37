"""The servers under test: how to start each one against a simulator URL.

Every target serves the client protocol at ``WS_PATH`` on one or more loopback
ports and names the processes whose CPU counts as "server" (``server_pids``) and
whose memory holds the client connections (``web_pids``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from bench.procs import ROOT, Proc, base_env, free_port, python

WS_PATH = "/api/v2/realtime/ws/prices"
REDIS_URL = "redis://127.0.0.1:6379/0"


class Target:
    name = ""
    label = ""
    uses_redis = False

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self.web: list[Proc] = []
        self.ports: list[int] = []

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{p}{WS_PATH}" for p in self.ports]

    def server_pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def redis_prefixes(self) -> list[str]:
        return []

    def web_pids(self) -> list[int]:
        return [p.pid for p in self.web]

    def cpu_counted(self) -> str:
        """Which processes a step's server CPU sums (``server_pids``, plus
        redis-server where ``uses_redis``), said in the run's output."""
        return self.label + (
            " + redis-server (the machine's shared one: other users' load counts)"
            if self.uses_redis
            else ""
        )

    def start(self, sim_url: str, symbols: list[str]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs = []
        self.web = []

    def _daphne(
        self, name: str, app: str, env: dict[str, str], cwd: Path = ROOT
    ) -> Proc:
        port = free_port()
        proc = Proc(
            name,
            [python(), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["--access-log", os.devnull, app],
            env,
            self.log_dir,
            cwd=cwd,
        ).start()
        self.procs.append(proc)
        self.web.append(proc)
        self.ports.append(port)
        return proc


class Plain(Target):
    name = "plain"
    label = "plain websockets"

    def start(self, sim_url: str, symbols: list[str]) -> None:
        port = free_port()
        proc = Proc(
            "plain",
            [python(), "-m", "bench.plain", "--port", str(port), "--upstream", sim_url],
            base_env(),
            self.log_dir,
        ).start()
        self.procs.append(proc)
        self.web.append(proc)
        self.ports.append(port)
        proc.wait_port(port)


class Naive(Target):
    """The tutorial Channels design (bench/naive) on one of the two layers."""

    def __init__(self, log_dir: Path, *, redis: bool) -> None:
        super().__init__(log_dir)
        self.redis = redis
        self.uses_redis = redis
        self.name = "naive-redis" if redis else "naive-inmemory"
        self.label = (
            "naive Channels (channels-redis)"
            if redis
            else "naive Channels (in-memory layer)"
        )
        self.prefix = f"bench-naive-{uuid.uuid4().hex[:8]}"

    def start(self, sim_url: str, symbols: list[str]) -> None:
        env = base_env(
            DJANGO_SETTINGS_MODULE="bench.naive.settings",
            BENCH_SIM_URL=sim_url,
            BENCH_SYMBOLS=",".join(symbols),
        )
        if self.redis:
            env.update(BENCH_NAIVE_REDIS_URL=REDIS_URL, BENCH_NAIVE_PREFIX=self.prefix)
        proc = self._daphne(self.name, "bench.naive.asgi:application", env)
        proc.wait_port(self.ports[-1])

    def redis_prefixes(self) -> list[str]:
        return [self.prefix] if self.redis else []


class Fmpsite(Target):
    """The product: embedded (one daphne) or scaled (``webs`` daphne, default 2,
    + 1 feed worker)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        scaled: bool,
        webs: int = 2,
        root: Path = ROOT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(log_dir)
        self.root = root
        self.extra_env = dict(extra_env or {})
        self.scaled = scaled
        self.uses_redis = scaled
        self.webs = webs
        self.name = "fmpsite-scaled" if scaled else "fmpsite-embedded"
        self.label = (
            f"fmpsite scaled ({webs} daphne + feed worker, Redis)"
            if scaled
            else "fmpsite embedded (1 daphne)"
        )
        self.prefix = f"bench-fmpsite-{uuid.uuid4().hex[:8]}"
        self.db_dir = Path(tempfile.mkdtemp(prefix="fmpsite-bench-db-"))

    def cpu_counted(self) -> str:
        if not self.scaled:
            return "1 daphne (feed in-process)"
        return (
            f"{self.webs} daphne web processes + 1 feed worker + redis-server (the "
            "machine's shared one: other users' load counts)"
        )

    def env(self, sim_url: str) -> dict[str, str]:
        env = base_env(
            DJANGO_SETTINGS_MODULE="fmpsite.settings.base",
            DJANGO_DEBUG="true",
            DJANGO_SECRET_KEY="x",
            FMP_API_KEY="bench",
            FMP_WS_URL=sim_url,
            # The bench's symbols (S000...) are invented and FMP's REST API is out
            # of reach: no reference lookups (they are per subscribe, never per tick).
            FMP_REST_ENABLED="false",
            DATABASE_URL=f"sqlite:///{self.db_dir / 'db.sqlite3'}",
        )
        if self.scaled:
            env.update(
                REDIS_URL=REDIS_URL,
                REALTIME_CHANNEL_PREFIX=self.prefix,
                REALTIME_CACHE_PREFIX=self.prefix,
            )
        env.update(self.extra_env)  # --server-env: an A/B of one setting
        return env

    def start(self, sim_url: str, symbols: list[str]) -> None:
        env = self.env(sim_url)
        result = subprocess.run(
            [python(), "manage.py", "migrate", "--noinput"],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stderr[-3000:]}")
        if self.scaled:
            worker = Proc(
                f"{self.name}-worker",
                [python(), "manage.py", "runworker", "fmp-feed"],
                env,
                self.log_dir,
                cwd=self.root,
            ).start()
            self.procs.append(worker)
            for i in range(self.webs):
                self._daphne(
                    f"{self.name}-web{i}", "fmpsite.asgi:application", env, self.root
                )
        else:
            self._daphne(self.name, "fmpsite.asgi:application", env, self.root)
        for proc, port in zip(self.web, self.ports, strict=True):
            proc.wait_port(port)

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.db_dir, ignore_errors=True)

    def redis_prefixes(self) -> list[str]:
        return [self.prefix] if self.scaled else []


def build(
    names: list[str],
    log_dir: Path,
    fmpsite_root: Path = ROOT,
    server_env: dict[str, str] | None = None,
    *,
    webs: int = 2,
) -> list[Target]:
    """The targets ``names``; ``server_env`` is added to fmpsite's environment,
    ``webs`` is the scaled target's number of daphne web processes."""
    factories = {
        "fmpsite-embedded": lambda: Fmpsite(
            log_dir, scaled=False, root=fmpsite_root, extra_env=server_env
        ),
        "fmpsite-scaled": lambda: Fmpsite(
            log_dir, scaled=True, webs=webs, root=fmpsite_root, extra_env=server_env
        ),
        "plain": lambda: Plain(log_dir),
        "naive-inmemory": lambda: Naive(log_dir, redis=False),
        "naive-redis": lambda: Naive(log_dir, redis=True),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(unknown)}")
    return [factories[n]() for n in names]
