"""`cp .env.example .env && make run` on a fresh clone serves the dashboard.

The real Makefile recipe runs (``make -o <stamp> run``: the virtualenv is already
installed), reading a verbatim copy of .env.example as its .env
(``DJANGO_ENV_FILE``); only the database file is private to the test. Static
files come from WhiteNoise in DEBUG, which answers a URL-encoded ``..`` with a
404 (Django's static handler answered 500 and logged absolute paths).
"""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httplogin import login
from tests.live import ROOT, clean_env, free_port, wait_until

# `make run` itself: the product's own server on a free port.
pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def make_run(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("make-run")
    shutil.copy(ROOT / ".env.example", tmp / ".env")
    port = free_port()
    log_path = tmp / "make-run.log"
    env = {
        **clean_env(),
        "DJANGO_ENV_FILE": str(tmp / ".env"),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            ["make", "-o", ".venv/.installed-stamp", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"make run exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(listening, 120, "make run to serve", interval=0.5)
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        print(log_path.read_text(errors="replace")[-5000:])


def test_the_dashboard_with_its_css_and_js(make_run):
    base = make_run["url"]
    # The demo user make run created, with the password docs/dashboard.md shows.
    opener = login(base, "demo", "demo-password-123")
    with opener.open(f"{base}/", timeout=30) as response:
        assert response.url.rstrip("/") == base, "login did not reach the dashboard"
        page = response.read()
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
    assert any(a.endswith(b".css") for a in assets), page[:500]
    assert any(a.endswith(b".js") for a in assets), page[:500]
    for asset in assets:
        with opener.open(base + asset.decode(), timeout=30) as response:
            kind = response.headers["Content-Type"]
            assert response.status == 200
            expected = "text/css" if asset.endswith(b".css") else "javascript"
            assert expected in kind, (asset, kind)


@pytest.mark.parametrize(
    "path",
    [
        "/static/%2e%2e/%2e%2e/manage.py",
        "/static/..%2f..%2fmanage.py",
        "/static/dashboard/%2E%2E/%2E%2E/fmpsite/settings/base.py",
        "/static/%2e%2e%2f%2e%2e%2fetc/passwd",
    ],
)
def test_encoded_dot_dot_under_static_is_a_404_and_logs_no_path(make_run, path):
    before = Path(make_run["log"]).read_text(errors="replace")
    conn = http.client.HTTPConnection("127.0.0.1", make_run["port"], timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 404, (path, response.status)
    assert b"import" not in body and b"root:" not in body
    logged = Path(make_run["log"]).read_text(errors="replace")[len(before) :]
    assert "Traceback" not in logged and "SuspiciousFileOperation" not in logged
    assert str(ROOT / "static") not in logged
