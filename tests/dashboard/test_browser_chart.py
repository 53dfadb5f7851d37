"""The intraday chart and the day statistics in Chromium, against the whole
product under daphne with bars on (issue 24): the chart draws candles from
/bars when it opens (before any live bar reached it), its last candle moves
with the stream, the table shows the day's high, low and volume, and the page
with the chart open is axe clean in light and dark mode with no CSP violation;
and in scaled mode the chart survives a SIGKILLed and restarted web process
without a gap in candles, because its reconnect recovered the bar streams.

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
import redis
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.browser import PASSWORD, card, log_in, wait_until
from tests.live import (
    ServerProcess,
    daphne,
    free_port,
    manage,
    server_env,
    start_scaled,
    stop_scaled,
)

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


# --- a web process restart (scaled mode) ---------------------------------------------

BARS_PATH = re.compile(r"/api/v2/realtime/bars/")
RECOVERER = "chart-recoverer"


@pytest.fixture
def scaled_bars(
    migrated_postgres: str, redis_prefix: str, request: Any
) -> Iterator[dict]:
    """One web process and one feed worker on Redis, with 1-second bars (so
    candles close while the web process is down) and a user to log in as."""
    stack = start_scaled(
        migrated_postgres,
        redis_prefix,
        webs=1,
        REALTIME_BAR_INTERVALS="1s",
        # The feed keeps the dashboard's symbols upstream for the whole outage
        # (the killed process cannot renew its lease): bars go on closing.
        REALTIME_LEASE_TTL="60",
    )
    try:
        manage(
            stack["env"],
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.filter(username={RECOVERER!r}).exists() or "
            f"User.objects.create_user({RECOVERER!r}, password={PASSWORD!r})",
        )
        yield stack
    finally:
        failed = getattr(request.node, "rep_call", None)
        stop_scaled(stack, show_logs=bool(failed and failed.failed))


def chart_state(page: Page) -> dict[str, Any]:
    """The open chart's closed candles, the candles its series draws, its book's
    stream position, and the page's bar-recovery counters."""
    return page.evaluate(
        """() => {
          const d = window.fmpsiteDashboard;
          const book = d.chart.book;
          const closed = book.candles().filter((c) => !c.forming);
          const books = [...d.intraday.books.values()];
          return {
            candles: closed.map(
              (c) => [c.start, c.open, c.high, c.low, c.close, c.volume]),
            drawn: d.chart.candles.data().length,
            total: book.candles().length,
            position: book.position(),
            recovered: d.intraday.recoveredStreams,
            notRecovered: d.intraday.notRecoveredStreams,
            recoveredBars: d.intraday.recoveredBars,
            loads: d.intraday.barLoads,
            books: d.intraday.books.size,
            positions: books.filter((b) => b.position()).length,
          };
        }"""
    )


@pytest.mark.redis
def test_chart_survives_a_web_restart_without_a_gap_in_candles(
    page: Page, scaled_bars: dict
) -> None:
    stack = scaled_bars
    port = stack["ports"][0]
    base = f"http://127.0.0.1:{port}"
    symbol = "AAPL"
    key = f"{symbol}@1s"
    log_in(page, base, RECOVERER, PASSWORD)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")
    card(page, symbol).get_by_role("button", name=f"Intraday chart of {symbol}").click()
    dialog = page.locator("#chart-dialog")
    expect(dialog).to_have_attribute("data-chart-state", "ready")
    expect(dialog).to_have_attribute("data-interval", "1s")
    # A few candles, live bars among them, and a position for every bar stream
    # of the page (each card's day book), so each has something to recover from.
    wait_until(
        page,
        lambda: (
            (s := chart_state(page))["positions"] == s["books"] > 0
            and len(s["candles"]) >= 3
            and int(dialog.get_attribute("data-live-bars") or 0) >= 2
        ),
        "closed candles, live bars and every bar stream's position",
    )
    before = chart_state(page)
    epoch, seen = before["position"]["epoch"], before["position"]["seq"]

    stack["webs"][0].kill()
    expect(status).not_to_have_attribute("data-connection-state", "connected")
    # From here on the page's candles may only come from the stream: a /bars
    # refetch by the page is refused (and counted), so only `recover` can fill
    # the outage.
    refused: list[str] = []

    def refuse(route: Any) -> None:
        refused.append(route.request.url)
        route.abort()

    page.route(BARS_PATH, refuse)
    down = chart_state(page)
    last_before = down["position"]["seq"]
    # The feed worker closes bars on while no web process is up: wait until it
    # has published a few of the chart's (the bar history's per-stream counter in
    # Redis, realtime/feed/history.py's key layout under <prefix>:bars).
    counters = redis.Redis.from_url(stack["redis_url"])
    seq_key = f"{stack['prefix']}:bars:history:{epoch}:seq"
    try:
        wait_until(
            page,
            lambda: int(counters.hget(seq_key, key) or 0) >= last_before + 4,
            f"4 bars of {key} closed while the web process is down",
        )
    finally:
        counters.close()
    web = daphne("web-0-restarted", port, stack["env"])
    stack["webs"][0] = web
    web.wait_port(port, timeout=60)
    page.evaluate("window.fmpsiteDashboard.stream.reconnectNow()")
    expect(status).to_have_attribute(
        "data-connection-state", "connected", timeout=60_000
    )
    wait_until(
        page,
        lambda: chart_state(page)["recovered"] - before["recovered"] == before["books"],
        "every bar stream recovered",
    )
    # Live bars after the replay: past what the server held when it came back.
    served = bars_of(page, base, symbol, "1s")
    target = max(b["seq"] for b in served) + 2
    wait_until(
        page,
        lambda: chart_state(page)["position"]["seq"] >= target,
        f"{key} past seq {target}",
    )

    after = chart_state(page)
    candles = after["candles"]
    newest = candles[-1][0]
    server = [
        [b["start"], b["open"], b["high"], b["low"], b["close"], b["volume"]]
        for b in bars_of(page, base, symbol, "1s")
        if candles[0][0] <= b["start"] <= newest
    ]
    # The window spans the outage: candles from before the kill and after it.
    assert candles[0][0] <= down["candles"][-1][0] < newest
    assert len(candles) > len(down["candles"]) + 4
    # No missing start, no duplicate, every candle as the server has it.
    assert [c[0] for c in candles] == sorted({c[0] for c in candles})
    assert candles == server, {
        "missing": sorted({b[0] for b in server} - {c[0] for c in candles}),
        "extra": sorted({c[0] for c in candles} - {b[0] for b in server}),
    }
    assert after["drawn"] == after["total"], "the series does not draw the book"
    # Filled by the replay, not by a refetch: no /bars, nothing not recovered.
    assert refused == []
    assert after["loads"] == before["loads"]
    assert after["notRecovered"] == before["notRecovered"]
    assert after["recoveredBars"] - before["recoveredBars"] >= 4
    assert after["position"]["epoch"] == epoch and after["position"]["seq"] > seen
