"""The dashboard against the whole product under daphne (issue 16), in Chromium:
the `make run` restart keeps the demo session, a killed server is marked stale
within 2 s and recovers, simulated prices are labelled, and the screenshots of
docs/dashboard.md come from this run.

The server is this test's own (its own SQLite file and the built-in simulator,
as `make run` has it), because the test kills it; the session-scoped product
server of tests/conftest.py is left alone.

Set ``FMPSITE_UPDATE_SCREENSHOT=1`` to refresh docs/dashboard-*.png.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.browser import DEFAULT_SYMBOLS, card, log_in, wait_until
from tests.live import ServerProcess, daphne, free_port, manage, server_env

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
DEMO_USER = ("demo", "demo-password-123")


class RestartableServer:
    """One daphne on a fixed port that the test may kill and start again."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fmpsite-h6-"))
        self.env = server_env(
            DATABASE_URL=f"sqlite:///{self.tmp / 'db.sqlite3'}",
            FMP_API_KEY="",  # the built-in simulator, as `make run` has it
            REALTIME_SIMULATOR_RATE="10",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ServerProcess | None = None
        manage(self.env, "migrate", "--noinput")

    def make_run(self) -> str:
        """What `make run` does before starting the server."""
        manage(self.env, "migrate", "--noinput")
        return manage(self.env, "ensure_demo_user")

    def start(self) -> None:
        self.process = daphne("daphne-dashboard-live", self.port, self.env)
        self.process.wait_port(self.port, timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def live_server_h6() -> Iterator[RestartableServer]:
    server = RestartableServer()
    try:
        yield server
    finally:
        server.stop()


def wait_for_prices(page: Page, symbols: list[str], points: int = 2) -> None:
    for symbol in symbols:
        expect(card(page, symbol)).not_to_have_attribute(
            "data-last-price", "", timeout=60_000
        )
    wait_until(
        page,
        lambda: all(
            int(card(page, s).get_attribute("data-history-length") or 0) >= points
            for s in symbols
        ),
        "a few trades per symbol",
        timeout=60,
    )


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=False)
    if os.environ.get("FMPSITE_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, DOCS / name)


def test_restart_keeps_the_session_and_a_kill_is_marked_stale_within_2s(
    browser: Browser, live_server_h6: RestartableServer, tmp_path: Path
) -> None:
    server = live_server_h6
    assert "Created user 'demo'" in server.make_run()
    server.start()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        log_in(page, server.url, *DEMO_USER)
        root = page.locator("#dashboard")
        status = page.locator("#connection-status")
        expect(status).to_have_attribute("data-connection-state", "connected")
        wait_for_prices(page, DEFAULT_SYMBOLS)
        # Change since the previous close, when the reference data answers.
        reference = page.request.get(f"{server.url}/api/v2/realtime/reference/AAPL")
        if reference.ok and reference.json().get("previous_close"):
            aapl = card(page, "AAPL")
            expect(aapl).not_to_have_attribute("data-previous-close", "")
            expect(aapl.locator('[data-field="change_pct"]')).to_have_text(
                re.compile(r"^[+-]\d+\.\d\d%$")
            )
        # Simulated prices say so.
        expect(page.locator("#simulated-badge")).to_be_visible()
        expect(page.locator("#simulated-badge")).to_have_text("Simulated data")
        _screenshots(page, browser, context, server, tmp_path)

        # Kill the server: within 2 s every card is marked stale, with since-when.
        page.evaluate(
            """() => {
              window.__staleAt = null;
              const root = document.getElementById('dashboard');
              new MutationObserver(() => {
                if (root.dataset.stale === 'true' && window.__staleAt === null) {
                  window.__staleAt = Date.now();
                }
              }).observe(root, {attributes: true});
            }"""
        )
        killed_at = page.evaluate("Date.now()")
        server.kill()
        expect(root).to_have_attribute("data-stale", "true", timeout=60_000)
        stale_after_ms = page.evaluate("window.__staleAt") - killed_at
        print(f"stale_after_ms={stale_after_ms}")
        assert stale_after_ms < 2_000, f"stale marking took {stale_after_ms} ms"
        for symbol in DEFAULT_SYMBOLS:
            expect(card(page, symbol)).to_have_attribute("data-stale", "true")
            expect(card(page, symbol).locator('[data-field="stale"]')).to_contain_text(
                "Stale since "
            )
        expect(status).not_to_have_attribute("data-connection-state", "connected")
        reconnect = page.get_by_role("button", name="Reconnect now")
        expect(reconnect).to_be_visible()

        # `make run` again: ensure_demo_user keeps the password, so the session
        # (in the database) survives the restart.
        assert "already exists" in server.make_run()
        server.start()
        if reconnect.is_visible():
            reconnect.click()
        expect(status).to_have_attribute(
            "data-connection-state", "connected", timeout=60_000
        )
        expect(root).not_to_have_attribute("data-stale", "true")
        for symbol in DEFAULT_SYMBOLS:
            expect(card(page, symbol)).not_to_have_attribute("data-stale", "true")
        expect(page.locator("#session-banner")).to_be_hidden()
        expect(root).not_to_have_attribute("data-session", "ended")
        page.get_by_label("Symbol to add").fill("NVDA")
        page.get_by_label("Symbol to add").press("Enter")
        expect(page.locator("#add-symbol-feedback")).to_have_text("Added NVDA.")
        expect(card(page, "NVDA")).not_to_have_attribute(
            "data-last-price", "", timeout=60_000
        )
        page.reload()
        expect(page).to_have_url(f"{server.url}/")
        expect(card(page, "NVDA")).to_be_visible()
    finally:
        context.close()


def _screenshots(
    page: Page,
    browser: Browser,
    context: Any,
    server: RestartableServer,
    tmp_path: Path,
) -> None:
    """Cards, table, dark and phone views of this live run for docs/dashboard.md."""
    page.reload()
    wait_for_prices(page, DEFAULT_SYMBOLS, points=8)
    shoot(page, tmp_path, "dashboard-cards.png")
    page.get_by_role("button", name="Table").click()
    expect(page.locator("#price-table")).to_be_visible()
    page.get_by_role("button", name="% Change").click()
    expect(page.locator('th[data-sort-key="change_pct"]')).to_have_attribute(
        "aria-sort", "ascending"
    )
    shoot(page, tmp_path, "dashboard-table.png")
    page.get_by_role("button", name="Cards").click()
    expect(page.locator("#price-grid")).to_be_visible()
    state = context.storage_state()
    for name, options in (
        ("dashboard-dark.png", {"color_scheme": "dark"}),
        ("dashboard-mobile.png", {"viewport": {"width": 390, "height": 844}}),
    ):
        other = browser.new_context(
            storage_state=state,
            **({"viewport": {"width": 1280, "height": 900}} | options),
        )
        try:
            view = other.new_page()
            view.goto(f"{server.url}/")
            wait_for_prices(view, DEFAULT_SYMBOLS, points=8)
            shoot(view, tmp_path, name)
        finally:
            other.close()
