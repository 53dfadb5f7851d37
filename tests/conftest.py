"""Fixtures shared by every app's tests, and the markers that split the suite.

Live servers (the product under daphne, the scaled stack, simulators) come from
tests/live.py; the fixtures here start the shared ones. Every test that uses a
live fixture, the browser, Redis or PostgreSQL is marked ``live``, ``browser``,
``redis`` or ``postgres`` at collection (``pytest_collection_modifyitems``), so
``make test-fast`` can run the in-process tier alone.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.live import (
    POSTGRES_ADMIN_URL,
    SimulatorThread,
    manage,
    server_env,
    staff_token_for,
    start_product,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def migrated_sqlite() -> Iterator[str]:
    """A migrated SQLite database file that server subprocesses share."""
    tmp = Path(tempfile.mkdtemp(prefix="fmpsite-db-"))
    url = f"sqlite:///{tmp / 'db.sqlite3'}"
    manage(server_env(DATABASE_URL=url), "migrate", "--noinput")
    yield url
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def private_sqlite(migrated_sqlite: str) -> Iterator[str]:
    """A copy of the migrated database for one test module alone: for tests that
    leave rows the others' servers would act on (an active price alert keeps its
    symbol subscribed upstream in every later feed on the same database)."""
    tmp = Path(tempfile.mkdtemp(prefix="fmpsite-db-"))
    # SQLite's backup API: a consistent copy even while other servers write.
    source = sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///"))
    target = sqlite3.connect(tmp / "db.sqlite3")
    with target:
        source.backup(target)
    source.close()
    target.close()
    yield f"sqlite:///{tmp / 'db.sqlite3'}"
    shutil.rmtree(tmp, ignore_errors=True)


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
    with start_product(
        "daphne-embedded",
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="live-test-key",
        FMP_WS_URL=live_simulator.url,
        FMP_REST_URL=live_simulator.rest_url,
    ) as product:
        yield {
            "url": product.url,
            "port": product.port,
            "env": product.env,
            "process": product.proc,
        }


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


@pytest.fixture(scope="session")
def staff_token(product_server: dict[str, Any]) -> str:
    """A DRF token of a staff user of ``product_server`` (pins need staff)."""
    return staff_token_for(product_server["env"])


# --- the browser (Debian's chromium through Playwright) ---------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope, not session: another test module may start its own Playwright,
# and two sync Playwright instances cannot run at once in one thread.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium (never `playwright install`: the system's chromium)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is not installed: `apt-get install chromium` (.ci/run does it)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


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


# --- markers: the in-process tier is what none of these select ----------------------

# A test needing any of these fixtures (directly or through another fixture)
# starts a server subprocess, a browser or a long-lived stack.
LIVE_FIXTURES = frozenset(
    {
        "migrated_sqlite",
        "migrated_postgres",
        "live_simulator",
        "product_server",
        "browser",
        "django_server",
        "live_server",
    }
)
FIXTURE_MARKERS = {
    "browser": "browser",
    "redis_prefix": "redis",
    "migrated_postgres": "postgres",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by the fixtures a test uses (``fixturenames`` is the closure, so a
    module's own server fixture built on ``migrated_sqlite`` counts); modules
    that start servers themselves carry a ``pytestmark``."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in names:
                item.add_marker(marker)
        marked = {mark.name for mark in item.iter_markers()}
        if names & LIVE_FIXTURES or "browser" in marked:
            item.add_marker("live")
