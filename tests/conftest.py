"""Fixtures shared by every app's tests: real servers on free loopback ports.

- ``SimulatorThread``: an FmpSimulator on its own event loop in a thread, so sync
  tests (browser) and async tests alike can drive its fault injection.
- ``ServerProcess``: a daphne or runworker subprocess with its own environment,
  stopped (and its log shown on failure) by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
    """An FmpSimulator running on a private event loop in a daemon thread."""

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
    """A subprocess of this project (daphne, runworker...) with a log file."""

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

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
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


def daphne(name: str, port: int, env: dict[str, str], *options: str) -> ServerProcess:
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


@pytest.fixture(scope="session")
def migrated_sqlite() -> Iterator[str]:
    """A migrated SQLite database file that server subprocesses share."""
    tmp = Path(tempfile.mkdtemp(prefix="fmpsite-db-"))
    url = f"sqlite:///{tmp / 'db.sqlite3'}"
    manage(server_env(DATABASE_URL=url), "migrate", "--noinput")
    yield url
    shutil.rmtree(tmp, ignore_errors=True)


POSTGRES_ADMIN_URL = os.environ.get(
    "FMPSITE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """A private, migrated PostgreSQL database (the scaled mode's documented setup).

    CI must provide PostgreSQL (.ci/run starts it): a connection error fails loudly.
    """
    import psycopg

    name = f"fmpsite_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        manage(server_env(DATABASE_URL=url), "migrate", "--noinput")
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def live_simulator() -> Iterator[SimulatorThread]:
    sim = SimulatorThread(rate=40.0, seed=7, heartbeat_interval=1.0).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def product_server(
    live_simulator: SimulatorThread, migrated_sqlite: str
) -> Iterator[dict[str, Any]]:
    """The whole product in embedded mode under daphne, fed by ``live_simulator``."""
    port = free_port()
    env = server_env(
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="live-test-key",
        FMP_WS_URL=live_simulator.url,
        FMP_REST_URL=live_simulator.rest_url,
    )
    server = daphne("daphne-embedded", port, env)
    try:
        server.wait_port(port)
        yield {
            "url": f"http://127.0.0.1:{port}",
            "port": port,
            "env": env,
            "process": server,
        }
    finally:
        server.stop()


@pytest.fixture(scope="session")
def product_url(product_server: dict[str, Any]) -> str:
    return product_server["url"]


@pytest.fixture(scope="session")
def product_user(product_server: dict[str, Any]) -> tuple[str, str]:
    username, password = "alice", "alice-password-123"
    manage(
        product_server["env"],
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.filter(username={username!r}).exists() or "
        f"User.objects.create_user({username!r}, password={password!r})",
    )
    return username, password


@pytest.fixture
def redis_prefix() -> str:
    """A private key prefix so concurrent runs never share Redis state."""
    return f"fmpsite-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _fresh_realtime_state():
    """Each test starts with an empty in-process cache, no feed status and a new
    in-memory channel layer: a layer kept for the process held (for its 60 s
    expiry) the leases earlier tests' hubs sent to ``fmp-feed``, which a later
    test's feed runner then subscribed upstream."""
    from channels.layers import channel_layers

    from realtime.backends import reset_backends
    from realtime.reference.service import reset_reference_service

    channel_layers.backends.clear()
    reset_backends()
    reset_reference_service()
    yield
    reset_backends()
    reset_reference_service()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can show server logs
    of a failed test (``request.node.rep_call``)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
