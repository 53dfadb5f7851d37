"""Live servers for tests: the product and its pieces as real processes on free
loopback ports, started and stopped by the fixture that asks for them.

- ``start_product(**env)``: the one way a test gets a running product (daphne with
  its embedded feed, optionally fed by a private simulator), modelled on daphne's
  own ``DaphneTestingInstance``: a context manager that waits until the server
  listens and always stops it.
- ``start_scaled``: the scaled shape (feed workers and web processes on Redis),
  whose web processes are ``LiveProduct``s too.
- The primitives both build on: ``SimulatorThread``, ``ServerProcess``,
  ``server_env``, ``manage``, ``daphne`` and the polling waits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from realtime.stores import sync_redis
from tests.realtime.wsclient import WS_PATH

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN_URL = os.environ.get(
    "FMPSITE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# A loaded two-core machine can take this long to import Django and listen.
READY_WITHIN = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
):
    """Poll ``predicate`` until truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], Any], within: float, what: str, interval: float = 0.02
):
    timeout = within
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(interval)


class SimulatorThread:
    """An FmpSimulator running on a private event loop in a daemon thread, so sync
    tests (browser) and async tests alike can drive its fault injection."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="fmp-simulator", daemon=True
        )
        self.sim: Any = None

    def start(self) -> SimulatorThread:
        from realtime.upstream.simulator import FmpSimulator

        self.thread.start()

        async def _start():
            self.sim = FmpSimulator(**self.kwargs)
            await self.sim.start()

        self.call(_start())
        return self

    def call(self, coro, timeout: float = 10.0):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def run(self, fn: Callable[[], Any]):
        """Run a sync function of the simulator on its loop (thread-safe reads)."""

        async def _run():
            return fn()

        return self.call(_run())

    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def rest_url(self) -> str:
        """Base URL of the simulator's FMP REST API (FMP_REST_URL)."""
        return self.sim.rest_url

    def stop(self) -> None:
        if self.sim is not None:
            self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class ServerProcess:
    """A subprocess of this project (daphne, runworker...) with a log file, in its
    own session so a stop reaches everything it started."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_port(self, port: int, timeout: float = READY_WITHIN) -> None:
        def is_open() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(is_open, timeout, f"{self.name} to listen on {port}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (daphne closes its clients with 1001), then SIGKILL after 5 s."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_path.unlink(missing_ok=True)


def clean_env() -> dict[str, str]:
    """This process's environment without any of the project's settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "FMP_", "REALTIME_", "REDIS_", "DATABASE_"))
    }


def server_env(**overrides: str) -> dict[str, str]:
    """Environment for a product subprocess: base settings, fast timings."""
    env = clean_env()
    env.update(
        DJANGO_SETTINGS_MODULE="fmpsite.settings.base",
        DJANGO_DEBUG="true",
        DJANGO_SECRET_KEY="test-server-secret",
        PYTHONUNBUFFERED="1",
        FMP_RECONNECT_BASE="0.1",
        FMP_RECONNECT_CAP="1",
        FMP_FATAL_BACKOFF="2",
        FMP_LOGIN_TIMEOUT="1",
        REALTIME_UNSUBSCRIBE_GRACE="1",
        REALTIME_LEASE_TTL="3",
        REALTIME_STATUS_INTERVAL="0.5",
        REALTIME_FEED_LOCK_TTL="3",
        LOG_LEVEL="INFO",
        # Tests invent symbols: the built-in simulator prices any of them.
        REALTIME_SIMULATOR_ANY_SYMBOL="true",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def staff_token_for(env: dict[str, str], username: str = "live-staff") -> str:
    """A DRF token of a staff user in the database ``env`` names (made if new)."""
    return manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "from rest_framework.authtoken.models import Token; "
        f"u, _ = User.objects.get_or_create(username={username!r}, "
        "defaults={'is_staff': True}); "
        "print(Token.objects.get_or_create(user=u)[0].key)",
    ).splitlines()[-1]  # the shell may print a banner first


def daphne(name: str, port: int, env: dict[str, str], *options: str) -> ServerProcess:
    """A started daphne serving the product on ``port`` (daphne writes its access
    log to stdout, so the process log has every request)."""
    return ServerProcess(
        name,
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            *options,
            "fmpsite.asgi:application",
        ],
        env,
    ).start()


class LiveProduct:
    """One daphne of the product on a free loopback port (what ``start_product``
    yields). ``proc`` is its ``ServerProcess`` once started; ``sim`` the private
    simulator feeding it, if ``start_product`` started one."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        *,
        options: Sequence[str] = (),
        sim: SimulatorThread | None = None,
    ) -> None:
        self.name = name
        self.env = env
        self.options = tuple(options)
        self.sim = sim
        self.port = free_port()
        self.proc: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The price stream's URL on this server."""
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def start(self) -> LiveProduct:
        self.proc = daphne(self.name, self.port, self.env, *self.options)
        return self

    def wait_ready(self, timeout: float = READY_WITHIN) -> LiveProduct:
        """Return once daphne listens (it imports the application first), failing
        with its log if it exits or does not listen within ``timeout``."""
        assert self.proc is not None, "start() first"
        self.proc.wait_port(self.port, timeout)
        return self

    def log(self) -> str:
        return self.proc.log() if self.proc is not None else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        if self.sim is not None:
            self.sim.stop()


@contextmanager
def start_product(
    name: str = "daphne",
    *,
    settings: str | None = "fmpsite.settings.base",
    base_env: Mapping[str, str] | None = None,
    simulator: Mapping[str, Any] | None = None,
    simulator_rest: bool = True,
    options: Sequence[str] = (),
    timeout: float = READY_WITHIN,
    **env: str,
) -> Iterator[LiveProduct]:
    """Run the product under daphne until the block ends.

    ``env`` overrides ``base_env`` (by default ``server_env()``: DEBUG on, fast
    timings); ``settings`` is DJANGO_SETTINGS_MODULE, or None for none at all
    (fmpsite.asgi then runs the production settings, which refuse DEBUG and want
    collectstatic's manifest). ``simulator`` (SimulatorThread's arguments) starts a
    private simulator and points FMP_WS_URL (and, with ``simulator_rest``,
    FMP_REST_URL) at it. ``options`` go to daphne's command line. The server is
    stopped with SIGTERM (SIGKILL after 5 s) and its simulator stopped on exit.
    """
    environment = dict(server_env() if base_env is None else base_env)
    if settings is None:
        environment.pop("DJANGO_SETTINGS_MODULE", None)
    else:
        environment["DJANGO_SETTINGS_MODULE"] = settings
    sim = SimulatorThread(**simulator).start() if simulator is not None else None
    if sim is not None:
        environment["FMP_WS_URL"] = sim.url
        if simulator_rest:
            environment["FMP_REST_URL"] = sim.rest_url
    environment.update(env)
    product = LiveProduct(name, environment, options=options, sim=sim)
    try:
        try:
            product.start().wait_ready(timeout)
        except BaseException:
            print(f"--- {name} ---\n{product.log()}")  # shown with the failure
            raise
        yield product
    finally:
        product.stop()


def start_scaled(
    database_url: str,
    redis_prefix: str,
    *,
    redis_url: str = REDIS_URL,
    workers: int = 1,
    webs: int = 2,
    simulator: dict[str, Any] | None = None,
    sim_rate: float = 40.0,
    **env_overrides: str,
) -> dict:
    """Start a simulator (``sim_rate`` ticks/s; ``simulator``: more options of
    the ``FmpSimulator``), ``workers`` feed workers and ``webs`` web processes on
    the real Redis channel layer with a private key prefix (``env_overrides``:
    settings of this stack, e.g. ``REALTIME_LEASE_TTL``); ``stop_scaled`` ends it."""
    # fail loudly: CI must provide Redis (a redis+sentinel:// URL asks Sentinel)
    sync_redis(redis_url, socket_timeout=5).ping()
    options = {
        "rate": sim_rate,
        "seed": 11,
        "heartbeat_interval": 1.0,
        **(simulator or {}),
    }
    sim = SimulatorThread(**options).start()
    env = server_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REALTIME_CHANNEL_PREFIX=redis_prefix,
        REALTIME_CACHE_PREFIX=redis_prefix,
        FMP_API_KEY="scaled-key",
        FMP_WS_URL=sim.url,
        **env_overrides,
    )
    feed_workers = [
        ServerProcess(
            f"feed-worker-{i}",
            [sys.executable, "manage.py", "runworker", "fmp-feed"],
            env,
        ).start()
        for i in range(workers)
    ]
    # All web processes start before any is waited for: they import in parallel.
    web_products = [LiveProduct(f"web-{i}", env).start() for i in range(webs)]
    stack = {
        "ports": [web.port for web in web_products],
        "webs": [web.proc for web in web_products],
        "workers": feed_workers,
        "sim": sim,
        "env": env,
        "redis_url": redis_url,
        "prefix": redis_prefix,
    }
    try:
        for web in web_products:
            web.wait_ready()
    except BaseException:
        stop_scaled(stack, show_logs=True)
        raise
    return stack


def stop_scaled(stack: dict, *, show_logs: bool = False) -> None:
    for process in [*stack["workers"], *stack["webs"]]:
        if show_logs:
            print(f"--- {process.name} ---\n{process.log()}")
        process.stop()
    stack["sim"].stop()
    try:
        client = sync_redis(stack["redis_url"], socket_timeout=5)
        for key in client.scan_iter(f"{stack['prefix']}*"):
            client.delete(key)
    except redis.RedisError:
        pass
