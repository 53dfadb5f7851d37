"""A bare daphne bounds itself (issue 28, defects 7 and 8): no nginx in front.

Against a daphne with the production settings, over raw sockets (an HTTP library
would wait for its whole body to be sent before reading the answer):

- a request announcing a body over ``REALTIME_HTTP_MAX_BODY_BYTES`` gets 413 at
  once and the body is never buffered: a client pushing 200 MiB costs the server
  less than 20 MiB of RSS; a chunked body past the limit gets the same;
- sockets that never finish their headers (slowloris, dripping a byte at a time
  so Twisted's idle timeout never fires) are answered 408 and closed after
  ``REALTIME_HTTP_HEADER_TIMEOUT``;
- ``make run``'s runserver (daphne's) serves the same application, so the same
  bounds.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import (
    ServerProcess,
    clean_env,
    free_port,
    manage,
    server_env,
    start_product,
)

HEADER_TIMEOUT = 3
BODY = 200 * 1024 * 1024
RSS_BOUND = 20 * 1024 * 1024
SLOW_CLIENTS = 200
WITHIN = 60.0


@pytest.fixture(scope="module")
def bare_daphne(migrated_sqlite: str) -> Iterator[dict]:
    static_root = Path(tempfile.mkdtemp(prefix="fmpsite-static-"))
    env = {
        **clean_env(),
        # No DJANGO_SETTINGS_MODULE: fmpsite.asgi picks the production settings.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "prices.example.com",
        "DJANGO_STATIC_ROOT": str(static_root),
        "DATABASE_URL": migrated_sqlite,
        "PYTHONUNBUFFERED": "1",
        "REALTIME_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    }
    manage(
        {**env, "DJANGO_SETTINGS_MODULE": "fmpsite.settings.production"},
        "collectstatic",
        "--noinput",
        "--verbosity",
        "0",
    )
    try:
        with start_product("daphne-bare", settings=None, base_env=env) as live:
            yield {"port": live.port, "server": live.proc}
    finally:
        shutil.rmtree(static_root, ignore_errors=True)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WITHIN)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """What the server wrote before closing (or within WITHIN seconds)."""
    data = b""
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and data.endswith(b"}\n"):
            break
    return data


def push_body(sock: socket.socket, chunks: Iterator[bytes]) -> int:
    """Send until the server stops taking bytes; how many it took."""
    sent = 0
    sock.settimeout(5)
    for chunk in chunks:
        try:
            sock.sendall(chunk)
        except OSError:  # reset, broken pipe or a full window: the server stopped
            break
        sent += len(chunk)
    return sent


def head(port: int, extra: str) -> bytes:
    return (
        f"POST /api/v2/realtime/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


def test_a_200_mib_post_is_refused_413_without_being_buffered(bare_daphne):
    port, pid = bare_daphne["port"], bare_daphne["server"].proc.pid
    before = rss_bytes(pid)
    sock = connect(port)
    try:
        sock.sendall(head(port, f"Content-Length: {BODY}\r\n"))
        # The answer comes before a byte of the body was sent.
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert b"REALTIME_HTTP_MAX_BODY_BYTES" in answer
        megabyte = b"x" * (1024 * 1024)
        push_body(sock, (megabyte for _ in range(BODY // len(megabyte))))
    finally:
        sock.close()
    growth = rss_bytes(pid) - before
    print(f"rss_growth_mib={growth / 2**20:.1f}")
    assert growth < RSS_BOUND, f"RSS grew {growth / 2**20:.1f} MiB"


def test_a_chunked_body_past_the_limit_is_refused_413(bare_daphne):
    port, pid = bare_daphne["port"], bare_daphne["server"].proc.pid
    before = rss_bytes(pid)
    sock = connect(port)
    megabyte = b"x" * (1024 * 1024)
    chunk = b"%x\r\n%s\r\n" % (len(megabyte), megabyte)
    try:
        sock.sendall(head(port, "Transfer-Encoding: chunked\r\n"))
        sent = push_body(sock, (chunk for _ in range(BODY // len(megabyte))))
        sock.settimeout(WITHIN)
        answer = read_response(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), (sent, answer)
    # What the server read after its answer it threw away (lingering close).
    growth = rss_bytes(pid) - before
    print(f"rss_growth_mib={growth / 2**20:.1f}")
    assert growth < RSS_BOUND, f"RSS grew {growth / 2**20:.1f} MiB"


def test_a_client_that_sends_its_whole_body_first_still_reads_the_413(bare_daphne):
    """urllib sends all of the body before it reads: the lingering close reads
    and discards it, so the client gets the status, not a broken pipe."""
    import urllib.error
    import urllib.request

    port = bare_daphne["port"]
    body = b"x" * (20 * 1024 * 1024)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/realtime/health", data=body, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=WITHIN)
    assert refused.value.code == 413
    assert b"REALTIME_HTTP_MAX_BODY_BYTES" in refused.value.read()


def test_a_small_post_still_reaches_the_application(bare_daphne):
    port = bare_daphne["port"]
    sock = connect(port)
    try:
        sock.sendall(
            head(port, "Content-Length: 5\r\nConnection: close\r\n") + b"hello"
        )
        answer = read_response(sock)
    finally:
        sock.close()
    # Django's own answer (the production host check refuses this Host for a
    # POST), not the server's 413.
    assert answer.startswith(b"HTTP/1.1 ") and b"application/json" in answer, answer
    assert not answer.startswith(b"HTTP/1.1 413"), answer


def _all_slow_clients_closed(port: int) -> tuple[int, int]:
    """Open SLOW_CLIENTS sockets that drip their headers a byte at a time (so an
    idle timeout never fires); return (closed by the server, answered 408)."""
    socks = [connect(port) for _ in range(SLOW_CLIENTS)]
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.setblocking(False)
    open_ = set(range(SLOW_CLIENTS))
    answered = 0
    deadline = time.monotonic() + WITHIN
    try:
        while open_ and time.monotonic() < deadline:
            for index in list(open_):
                sock = socks[index]
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    try:
                        sock.send(b"a")
                    except OSError:
                        open_.discard(index)
                    continue
                except OSError:
                    open_.discard(index)
                    continue
                if data.startswith(b"HTTP/1.1 408"):
                    answered += 1
                if not data or data.startswith(b"HTTP/1.1 408"):
                    open_.discard(index)
            time.sleep(0.5)  # the drip's pace, not synchronisation
    finally:
        for sock in socks:
            sock.close()
    return SLOW_CLIENTS - len(open_), answered


def test_slowloris_sockets_are_closed_after_the_header_timeout(bare_daphne):
    closed, answered = _all_slow_clients_closed(bare_daphne["port"])
    assert closed == SLOW_CLIENTS, f"{SLOW_CLIENTS - closed} sockets still open"
    assert answered > 0


def test_make_runs_server_has_the_same_bounds(migrated_sqlite):
    """``make run`` is ``manage.py runserver`` (daphne's): the same application,
    hence the same bounds."""
    port = free_port()
    env = server_env(DATABASE_URL=migrated_sqlite, REALTIME_EMBEDDED_FEED="false")
    server = ServerProcess(
        "runserver-bounds",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env,
    ).start()
    try:
        server.wait_port(port)
        sock = connect(port)
        try:
            sock.sendall(head(port, f"Content-Length: {BODY}\r\n"))
            answer = read_response(sock)
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), (answer, server.log())
    finally:
        server.stop()
