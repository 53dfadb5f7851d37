"""The stack `make scaled` runs, tested through its nginx entry point.

The fixture starts deploy/scaled.py exactly as `make scaled` does (nginx, two
daphne web processes and two feed workers under supervisor, production settings,
the built-in simulator), on free ports, a private PostgreSQL database, private
Redis key prefixes and a private static root, so it never meets other tests'
state. The tests share one stack and run in file order.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.httplogin import login
from tests.live import (
    POSTGRES_ADMIN_URL,
    ROOT,
    async_wait_until,
    clean_env,
    free_port,
    wait_until,
)
from tests.realtime.wsclient import WS_PATH, next_update, subscribe
from tests.realtime.wsclient import connect as ws_connect

# `make scaled` itself: nginx, supervisor, daphnes and feed workers on Redis and
# PostgreSQL.
pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.postgres]
REDIS_URL = "redis://127.0.0.1:6379/0"
MiB = 1024 * 1024
PASSWORD = "scaled-password-123"


class ScaledStack:
    def __init__(self, tmp: Path, prefix: str, database: str) -> None:
        self.port = free_port()
        self.web_ports = (free_port(), free_port())
        self.prefix = prefix
        self.database = database
        self.run_dir = tmp / "run"
        self.env = clean_env()
        self.env.update(
            HOST="127.0.0.1",
            PORT=str(self.port),
            SCALED_WEB_PORTS=f"{self.web_ports[0]},{self.web_ports[1]}",
            SCALED_RUN_DIR=str(self.run_dir),
            DJANGO_STATIC_ROOT=str(tmp / "static"),
            DATABASE_URL=POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
            REDIS_URL=REDIS_URL,
            REALTIME_CHANNEL_PREFIX=prefix,
            REALTIME_CACHE_PREFIX=prefix,
            # The test's timings (tests/live.py server_env), production otherwise.
            FMP_RECONNECT_BASE="0.1",
            FMP_RECONNECT_CAP="1",
            REALTIME_LEASE_TTL="3",
            REALTIME_STATUS_INTERVAL="0.5",
            REALTIME_FEED_LOCK_TTL="3",
            REALTIME_SIMULATOR_RATE="40",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = tmp / "launcher.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.scaled"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"make scaled exited early:\n{self.logs()}")
        return "scaled: ready" in self.log_path.read_text(errors="replace")

    def rpc(self):
        """supervisord's XML-RPC interface over its unix socket (what
        supervisorctl speaks), without a process per call."""
        from supervisor.xmlrpc import SupervisorTransport

        sock = f"unix://{self.run_dir / 'supervisor.sock'}"
        transport = SupervisorTransport(None, None, sock)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def info(self, program: str) -> dict[str, Any]:
        return self.rpc().supervisor.getProcessInfo(program)

    def pid(self, program: str) -> int:
        return self.info(program)["pid"]

    def running(self, program: str) -> bool:
        return self.info(program)["statename"] == "RUNNING"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "deploy.scaled", "manage", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def logs(self) -> str:
        parts = [self.log_path.read_text(errors="replace")[-6000:]]
        for path in sorted((self.run_dir / "logs").glob("*.log")):
            parts.append(
                f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}"
            )
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = []
        for program in ("web:web1", "web:web2", "feed:feed1", "feed:feed2", "nginx"):
            try:
                pids.append(self.pid(program))
            except (OSError, xmlrpc.client.Error):
                pass  # supervisord never came up: nothing of it to kill
        self.proc.send_signal(signal.SIGTERM)  # forwarded to supervisord: Ctrl-C
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired as exc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            for pid in pids:
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            raise AssertionError(
                "make scaled did not stop within 60 s of SIGTERM"
            ) from exc


@pytest.fixture(scope="module")
def stack(request) -> Iterator[ScaledStack]:
    redis.Redis.from_url(REDIS_URL).ping()  # fail loudly: CI must provide Redis
    tmp = Path(tempfile.mkdtemp(prefix="fmpsite-scaled-"))
    tmp.chmod(0o755)  # nginx workers read the collected static files
    prefix = f"fmpsite-test-{uuid.uuid4().hex[:8]}"
    database = f"fmpsite_scaled_{uuid.uuid4().hex[:8]}"
    stack = ScaledStack(tmp, prefix, database)
    stack.start()
    try:
        wait_until(stack.ready, 120, "make scaled to report ready", interval=0.5)
        yield stack
    finally:
        try:
            stack.stop()
            assert stack.proc is not None
            stopped = stack.log_path.read_text(errors="replace")
            # Ctrl-C (here SIGTERM to the launcher) stops every process cleanly.
            assert "scaled: stopped (supervisord exit 0)" in stopped, stack.logs()
        finally:
            print(stack.logs())  # shown by pytest when a test of the module failed
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            subprocess.run(["rm", "-rf", str(tmp)], check=False)


@pytest.fixture(scope="module")
def token(stack: ScaledStack) -> str:
    """A DRF token of a regular user (production refuses anonymous streams)."""
    out = stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "from rest_framework.authtoken.models import Token; "
        "u, _ = User.objects.get_or_create(username='scaled'); "
        f"u.set_password({PASSWORD!r}); u.save(); "
        "print('TOKEN', Token.objects.get_or_create(user=u)[0].key)",
    )
    return re.search(r"TOKEN (\w+)", out).group(1)


def http_get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def ws_clients(port: int) -> int:
    """One web process's connected clients, from its /metrics by IP:port."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    match = re.search(rb"^fmpsite_ws_clients ([0-9.]+)$", body, re.M)
    return int(float(match.group(1))) if match else 0


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def connect(stack: ScaledStack, token: str):
    ws = await ws_connect(f"ws://127.0.0.1:{stack.port}{WS_PATH}?token={token}")
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert greeting["type"] == "connected", greeting
    return ws


async def clients_on_each_process(stack: ScaledStack, token: str) -> dict[int, Any]:
    """Open clients through nginx until each web process holds one; {port: ws}."""
    by_port: dict[int, Any] = {}
    extra = []
    for _ in range(12):
        before = {p: ws_clients(p) for p in stack.web_ports}
        ws = await connect(stack, token)
        after = {p: ws_clients(p) for p in stack.web_ports}
        grew = [p for p in stack.web_ports if after[p] > before[p]]
        if len(grew) == 1 and grew[0] not in by_port:
            by_port[grew[0]] = ws
        else:
            extra.append(ws)
        if len(by_port) == 2:
            break
    for ws in extra:
        await ws.close()
    assert len(by_port) == 2, "nginx never balanced a WebSocket onto both processes"
    return by_port


STATIC_REF = re.compile(rb"""(?:href|src)="(/static/[^"]+\.(css|js|svg))\"""")
CONTENT_TYPES = {
    b"css": "text/css",
    b"js": "application/javascript",
    b"svg": "image/svg+xml",
}


def test_pages_and_their_css_and_js_are_served_through_nginx(stack):
    seen = set()
    for page in ("/accounts/login/", "/demo/", "/admin/login/"):
        status, headers, body = http_get(stack.url + page)
        assert status == 200, (page, status)
        refs = STATIC_REF.findall(body)
        assert refs, f"{page} names no CSS/JS"
        for path, ext in refs:
            status, headers, content = http_get(
                stack.url + path.decode(), **{"Accept-Encoding": "gzip"}
            )
            assert status == 200, (path, status)
            assert headers["Content-Type"].startswith(CONTENT_TYPES[ext]), headers
            assert content, path
            # nginx itself answers (its cache header for hashed names), from
            # collectstatic's pre-compressed copy when the client takes gzip.
            assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
            # Another origin may import the JS module (clients/js/README.md).
            assert headers["Access-Control-Allow-Origin"] == "*", headers
            seen.add(ext)
    assert {b"css", b"js"} <= seen


async def test_login_and_the_dashboard_work_through_nginx(stack, token):
    # Production settings over plain HTTP: CSRF and the session cookie work.
    opener = login(stack.url, "scaled", PASSWORD)
    with opener.open(f"{stack.url}/", timeout=30) as response:
        assert response.url.rstrip("/") == stack.url, "login did not reach /"
        page = response.read()
    script = re.search(rb'src="(/static/dashboard/dashboard\.[0-9a-f]{12}\.js)"', page)
    assert script, page[:800]
    with opener.open(stack.url + script.group(1).decode(), timeout=30) as response:
        assert response.status == 200
        assert "javascript" in response.headers["Content-Type"]
    # The page's WebSocket: same origin, the session cookie, no token.
    jar = next(
        h.cookiejar
        for h in opener.handlers
        if isinstance(h, urllib.request.HTTPCookieProcessor)
    )
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    ws = await ws_connect(
        f"ws://127.0.0.1:{stack.port}{WS_PATH}",
        origin=stack.url,
        additional_headers={"Cookie": cookie},
    )
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert greeting["type"] == "connected", greeting
    await subscribe(ws, ["NVDA"])
    assert (await next_update(ws, "NVDA", 60))["symbol"] == "NVDA"
    await ws.close()
    # The dashboard's module imports its helper by hashed name (storage rewrite).
    dashboard_js = next(
        (stack.run_dir.parent / "static" / "dashboard").glob("dashboard.*.js")
    ).read_text()
    assert re.search(r'from "\./price-stream\.[0-9a-f]{12}\.js"', dashboard_js)


async def test_clients_on_both_web_processes_get_ticks(stack, token):
    clients = await clients_on_each_process(stack, token)
    for ws in clients.values():
        await subscribe(ws, ["AAPL"])
    for port, ws in clients.items():
        update = await next_update(ws, "AAPL", 60)
        assert update["symbol"] == "AAPL", port
    for ws in clients.values():
        await ws.close()


def test_a_200_mib_body_gets_413_from_nginx_and_daphne_never_holds_it(
    stack, record_property
):
    pids = [stack.pid("web:web1"), stack.pid("web:web2")]
    before = [rss_kib(pid) for pid in pids]
    total = 200 * MiB
    chunk = b"x" * MiB
    sent = 0
    with socket.create_connection(("127.0.0.1", stack.port), timeout=60) as sock:
        sock.sendall(
            b"POST /api/v2/realtime/subscribe HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{stack.port}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {total}\r\n\r\n".encode()
        )
        try:  # streamed: never built in memory; nginx may close mid-way
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        response = b""
        try:
            while b"\r\n\r\n" not in response:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except OSError:
            pass
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    after = [rss_kib(pid) for pid in pids]
    record_property(
        "web_rss_growth_kib_after_200mib_post",
        max(new - old for old, new in zip(before, after, strict=True)),
    )
    record_property("bytes_sent_before_413", sent)
    for pid, old, new in zip(pids, before, after, strict=True):
        # Flat: well under the body (200 MiB); daphne saw no byte of it.
        assert new - old < 10 * 1024, f"web pid {pid} RSS {old} -> {new} KiB"


async def test_kill_9_of_a_web_process_is_restarted_and_the_other_keeps_streaming(
    stack, token
):
    clients = await clients_on_each_process(stack, token)
    for ws in clients.values():
        await subscribe(ws, ["MSFT"])
    for ws in clients.values():
        await next_update(ws, "MSFT", 60)
    victim_port, survivor_port = stack.web_ports[1], stack.web_ports[0]
    victim = stack.pid("web:web2")
    assert victim
    os.kill(victim, signal.SIGKILL)
    # The survivor's client keeps getting ticks while supervisor restarts web2.
    survivor = clients[survivor_port]
    for _ in range(5):
        assert (await next_update(survivor, "MSFT", 60))["symbol"] == "MSFT"
    await async_wait_until(
        lambda: stack.pid("web:web2") not in (0, victim), 60, "web2 restarted"
    )
    await async_wait_until(lambda: stack.running("web:web2"), 60, "web2 RUNNING")
    await asyncio.to_thread(wait_until, lambda: port_open(victim_port), 60, "web2 port")
    assert stack.running("web:web1"), "web1 stopped with web2"
    assert stack.running("feed:feed1") and stack.running("feed:feed2")
    assert stack.running("nginx")
    # New clients through nginx reach both processes again.
    again = await clients_on_each_process(stack, token)
    for ws in [*again.values(), *clients.values()]:
        await ws.close()


async def test_sigterm_of_the_feed_leader_hands_over_and_ticks_resume(
    stack, token, record_property
):
    leader_key = f"{stack.prefix}:feed:leader"
    store = redis.Redis.from_url(REDIS_URL)

    def leader_pid() -> int:
        owner = store.get(leader_key)
        return int(owner.decode().split(":")[2]) if owner else 0

    await async_wait_until(leader_pid, 60, "a feed leader")
    old = leader_pid()
    assert old in (stack.pid("feed:feed1"), stack.pid("feed:feed2"))
    ws = await connect(stack, token)
    await subscribe(ws, ["TSLA"])
    await next_update(ws, "TSLA", 60)
    killed_at = time.monotonic()
    os.kill(old, signal.SIGTERM)
    arrivals = [killed_at]
    new_leader_seen_at = None
    deadline = killed_at + 60
    while time.monotonic() < deadline:
        await next_update(ws, "TSLA", max(deadline - time.monotonic(), 0.1))
        arrivals.append(time.monotonic())
        if new_leader_seen_at is None and leader_pid() not in (0, old):
            new_leader_seen_at = arrivals[-1]
        elif new_leader_seen_at is not None:
            break  # an update after the new leader was seen: ticks resumed
    assert new_leader_seen_at is not None, "no new leader within 60 s"
    gap = max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))
    record_property("feed_sigterm_tick_gap_seconds", round(gap, 3))
    print(f"feed leader SIGTERM: longest tick gap {gap:.3f} s")
    await ws.close()
    # Supervisor restarts the stopped worker: it becomes the new standby.
    await async_wait_until(
        lambda: stack.running("feed:feed1") and stack.running("feed:feed2"),
        60,
        "both feed workers running",
    )
