"""One daphne with the production settings, as behind a load balancer.

- Probes (/health, /api/v2/realtime/health, /metrics) answer by IP:port under a
  strict ``DJANGO_ALLOWED_HOSTS``, with no https redirect and no error log line;
  every other path keeps host validation (fmpsite/middleware.py).
- Static files come from WhiteNoise with DEBUG off: hashed, compressed, cached.
"""

from __future__ import annotations

import http.client
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import clean_env, manage, start_product, wait_until

HOST = "prices.example.com"


@pytest.fixture(scope="module")
def production(migrated_sqlite: str) -> Iterator[dict]:
    static_root = Path(tempfile.mkdtemp(prefix="fmpsite-static-"))
    env = {
        **clean_env(),
        # No DJANGO_SETTINGS_MODULE: fmpsite.asgi picks the production settings.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_STATIC_ROOT": str(static_root),
        "DATABASE_URL": migrated_sqlite,
        "REALTIME_STATUS_INTERVAL": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    manage(
        {**env, "DJANGO_SETTINGS_MODULE": "fmpsite.settings.production"},
        "collectstatic",
        "--noinput",
        "--verbosity",
        "0",
    )
    try:
        with start_product("daphne-production", settings=None, base_env=env) as live:
            try:
                yield {
                    "port": live.port,
                    "server": live.proc,
                    "static_root": static_root,
                }
            finally:
                print(live.log())
    finally:
        shutil.rmtree(static_root, ignore_errors=True)


def get(port: int, path: str, method: str = "GET", **headers: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers=headers)  # Host: 127.0.0.1:<port>
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, response.headers, body


PROBES = ["/health", "/api/v2/realtime/health", "/metrics"]


def test_probes_answer_by_ip_and_port_without_redirect_or_error_log(production):
    port = production["port"]
    wait_until(
        lambda: get(port, "/api/v2/realtime/health")[0] == 200,
        60,
        "the embedded feed to be healthy",
        interval=0.5,
    )
    for path in PROBES:
        status, headers, body = get(port, path)
        assert status == 200, (path, status, headers.get("Location"))
    for path in PROBES[:2]:  # load balancers may probe with HEAD
        assert get(port, path, "HEAD")[0] == 200, path
    status, headers, body = get(port, "/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    assert b"fmpsite_ws_clients" in body
    log = production["server"].log()
    assert "DisallowedHost" not in log and "level=ERROR" not in log, log


def test_every_other_path_keeps_host_validation(production):
    port = production["port"]
    status, _, _ = get(port, "/api/v2/realtime/status")
    assert status == 400
    status, _, _ = get(port, "/health", "POST")
    assert status == 400  # probes are GET/HEAD only
    assert "DisallowedHost" in production["server"].log()
    # By its name, over plain HTTP, a page is redirected to https as before.
    status, headers, _ = get(port, "/accounts/login/", Host=HOST)
    assert status == 301
    assert headers["Location"] == f"https://{HOST}/accounts/login/"


def test_static_files_are_served_by_whitenoise_with_debug_off(production):
    port = production["port"]
    behind_tls = {"Host": HOST, "X-Forwarded-Proto": "https"}
    status, _, page = get(port, "/accounts/login/", **behind_tls)
    assert status == 200
    css = re.search(rb'href="(/static/dashboard/dashboard\.[0-9a-f]{12}\.css)"', page)
    assert css, page[:800]
    status, headers, body = get(
        port, css.group(1).decode(), **behind_tls, **{"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert headers["Content-Encoding"] == "gzip"
    assert "immutable" in headers["Cache-Control"]
    for path in ("/static/%2e%2e/%2e%2e/manage.py", "/static/..%2fmanage.py"):
        assert get(port, path, **behind_tls)[0] == 404
    # A file the collected set does not have is a 404, not a 500.
    assert get(port, "/static/dashboard/missing.js", **behind_tls)[0] == 404
