"""The intraday chart and the day statistics in Chromium, against the whole
product under daphne with bars on (issue 24): the chart draws candles from
/bars when it opens (before any live bar reached it), its last candle moves
with the stream, the table shows the day's high, low and volume, and the page
with the chart open is axe clean in light and dark mode with no CSP violation.

The server is this module's own (its own SQLite file, the built-in simulator and
``REALTIME_BAR_INTERVALS=1s,1m``): bars are off by default, and the
session-scoped product server of tests/conftest.py runs with the defaults.
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
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.browser import card, log_in, wait_until
from tests.live import ServerProcess, daphne, free_port, manage, server_env

pytestmark = pytest.mark.browser

DEMO_USER = ("demo", "demo-password-123")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard-chart.png"
AXE = Axe()

# Before any page script: every CSP violation and console error is kept.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


class BarsServer:
    """daphne with the simulator and bars on, on a free port."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fmpsite-chart-"))
        self.env = server_env(
            DATABASE_URL=f"sqlite:///{self.tmp / 'db.sqlite3'}",
            FMP_API_KEY="",  # the built-in simulator
            REALTIME_SIMULATOR_RATE="10",
            REALTIME_BAR_INTERVALS="1s,1m",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        manage(self.env, "migrate", "--noinput")
        manage(self.env, "ensure_demo_user")
        self.process: ServerProcess = daphne("daphne-chart", self.port, self.env)
        self.process.wait_port(self.port, timeout=60)

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def bars_server() -> Iterator[BarsServer]:
    server = BarsServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chart_page(browser: Browser, bars_server: BarsServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda m: m.type == "error" and page.console_errors.append(m.text),  # type: ignore[attr-defined]
    )
    try:
        yield page
    finally:
        context.close()


def bars_of(page: Page, url: str, symbol: str, interval: str) -> list[dict[str, Any]]:
    response = page.request.get(
        f"{url}/api/v2/realtime/bars/{symbol}?interval={interval}"
    )
    return response.json()["bars"] if response.ok else []


def assert_axe_clean(page: Page, what: str) -> None:
    violations = AXE.run(page).response["violations"]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in violations
    ]
    assert not violations, f"axe found violations on {what}:\n" + "\n".join(details)


def assert_no_csp_violation(page: Page) -> None:
    assert page.evaluate("window.__csp") == [], "the page broke its CSP"
    refused = [e for e in page.console_errors if "Content Security Policy" in e]  # type: ignore[attr-defined]
    assert refused == [], refused


def test_chart_draws_history_at_open_and_moves_live(
    chart_page: Page, bars_server: BarsServer
) -> None:
    page = chart_page
    log_in(page, bars_server.url, *DEMO_USER)
    # The server has built a few closed bars before the page asks for them.
    wait_until(
        page,
        lambda: len(bars_of(page, bars_server.url, "AAPL", "1s")) >= 3,
        "three closed 1-second bars of AAPL on the server",
    )
    page.reload()
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-connection-state", "connected"
    )
    button = card(page, "AAPL").get_by_role("button", name="Intraday chart of AAPL")
    expect(button).to_be_visible()
    button.focus()
    page.keyboard.press("Enter")  # keyboard accessible

    dialog = page.locator("#chart-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("data-chart-state", "ready")
    expect(dialog).to_have_attribute("data-symbol", "AAPL")
    interval = dialog.get_attribute("data-interval")
    assert interval in {"1s", "1m"}
    # Drawn from /bars when it opened: the chart's own series has those candles.
    history = int(dialog.get_attribute("data-history-candles") or 0)
    assert history >= 1, "no candle came from /bars"
    drawn = page.evaluate("window.fmpsiteDashboard.chart.candles.data().length")
    assert drawn >= history
    served = {b["start"] for b in bars_of(page, bars_server.url, "AAPL", interval)}
    first_start = page.evaluate("window.fmpsiteDashboard.chart.book.candles()[0].start")
    assert first_start in served, "the oldest candle is not one of the server's bars"

    # The last candle moves: the forming candle from trades, closed bars live.
    before = (
        dialog.get_attribute("data-last-start"),
        dialog.get_attribute("data-last-close"),
    )
    updates = int(dialog.get_attribute("data-updates") or 0)
    wait_until(
        page,
        lambda: (
            int(dialog.get_attribute("data-updates") or 0) > updates
            and (
                dialog.get_attribute("data-last-start"),
                dialog.get_attribute("data-last-close"),
            )
            != before
        ),
        "the last candle to change",
    )
    if interval == "1s":
        wait_until(
            page,
            lambda: int(dialog.get_attribute("data-live-bars") or 0) >= 1,
            "a live 1-second bar in the chart",
        )
    expect(dialog.locator("canvas").first).to_be_visible()
    if os.environ.get("FMPSITE_UPDATE_SCREENSHOT"):
        page.screenshot(path=str(SCREENSHOT))

    assert_axe_clean(page, "the dashboard with the chart open (light)")
    page.emulate_media(color_scheme="dark")
    background = "window.fmpsiteDashboard.chart.chart.options().layout.background.color"
    wait_until(
        page,
        lambda: page.evaluate(background).lower() == "#1f2937",  # --surface, dark
        "the chart to follow the dark theme",
    )
    assert_axe_clean(page, "the dashboard with the chart open (dark)")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(dialog).to_have_attribute("data-chart-state", "closed")
    expect(button).to_be_focused()  # back where the keyboard user was
    assert_no_csp_violation(page)


def test_table_shows_the_days_high_low_and_volume(
    chart_page: Page, bars_server: BarsServer
) -> None:
    page = chart_page
    log_in(page, bars_server.url, *DEMO_USER)
    page.locator(".view-form button[data-view=table]").click()
    row = page.locator('#price-table-body tr[data-symbol="AAPL"]')
    number = re.compile(r"^\d[\d,]*(\.\d+)?$")
    for field in ("day_high", "day_low", "day_volume"):
        expect(row.locator(f'[data-field="{field}"]')).to_have_text(number)
    header = page.get_by_role("button", name="Day volume")
    expect(header).to_be_visible()

    def value(field: str) -> float:
        text = row.locator(f'[data-field="{field}"]').text_content() or ""
        return float(text.replace(",", ""))

    assert value("day_low") <= value("day_high")
    # Trades move the day's figures between two bars (the forming candle).
    volume = value("day_volume")
    wait_until(page, lambda: value("day_volume") > volume, "the day volume to grow")
    assert value("day_low") <= value("day_high")
    assert_axe_clean(page, "the table with day statistics")
    assert_no_csp_violation(page)
