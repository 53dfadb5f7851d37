"""Embedded mode on SQLite: concurrent pin writes never answer 500.

Each ASGI request runs its sync view in its own thread, so pins are written
concurrently. Without WAL, immediate transactions and a busy timeout, 12 of 48
such requests answered 500 "database is locked" (issue 11).
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from tests.live import daphne, free_port, manage, server_env

# A daphne of its own on a fresh SQLite database.
pytestmark = pytest.mark.live

REQUESTS = 50
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "NFLX"]


def test_fifty_concurrent_subscribe_and_unsubscribe_never_answer_500(tmp_path):
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = server_env(DATABASE_URL=database)
    manage(env, "migrate", "--noinput")
    out = manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "from rest_framework.authtoken.models import Token; "
        "u = User.objects.create_user('ops', password='x', is_staff=True); "
        "print('TOKEN', Token.objects.create(user=u).key)",
    )
    token = out.split("TOKEN", 1)[1].split()[0]
    port = free_port()
    server = daphne("daphne-sqlite", port, env)
    try:
        server.wait_port(port, 60)
        barrier = Barrier(REQUESTS, timeout=60)
        rng = random.Random(11)
        jobs = [
            (
                "subscribe" if i % 2 == 0 else "unsubscribe",
                rng.sample(SYMBOLS, 3),
            )
            for i in range(REQUESTS)
        ]

        def post(job: tuple[str, list[str]]) -> tuple[int, str]:
            action, symbols = job
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v2/realtime/{action}",
                data=json.dumps(symbols).encode(),
                headers={
                    "Authorization": f"Token {token}",
                    "Content-Type": "application/json",
                },
                method="POST",
            )
            barrier.wait()  # all 50 leave together
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        with ThreadPoolExecutor(REQUESTS) as pool:
            results = list(pool.map(post, jobs))
        failures = [r for r in results if r[0] != 200]
        assert not failures, failures[:5]
        assert "database is locked" not in server.log()
    finally:
        server.stop()
