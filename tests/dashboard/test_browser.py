"""The dashboard in a real browser (Debian's chromium driven by Playwright).

Two kinds of test:

- Against Django's live test server with the WebSocket answered by ``FakeStream``
  (Playwright's WebSocket routing): deterministic checks of the client's protocol
  handling, DOM updates, reconnect/resubscribe, ping and backoff. Runs anywhere.
- ``test_live_dashboard_end_to_end``: the whole product (daphne, embedded feed,
  simulator) from the ``product_url`` fixture of tests/conftest.py.

Set ``FMPSITE_UPDATE_SCREENSHOT=1`` to refresh docs/dashboard.png from the live run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.browser import (
    DEFAULT_SYMBOLS,
    PASSWORD,
    SCREENSHOT,
    WS_GLOB,
    FakeStream,
    card,
    log_in,
    record_states,
    serve_references,
    wait_until,
)

pytestmark = pytest.mark.browser


# --- against a fake stream --------------------------------------------------------


def test_dashboard_flow_against_fake_stream(
    django_server: str, page: Page, browser_user: str
) -> None:
    fake = FakeStream()
    page.route_web_socket(WS_GLOB, fake.route)
    serve_references(page, {"AAPL": {"name": "Apple Inc.", "previous_close": 100.0}})
    log_in(page, django_server, browser_user, PASSWORD)
    status = page.locator("#connection-status")

    # Subscribes to the whole watchlist once open; shows what the server confirmed.
    expect(status).to_have_attribute("data-connection-state", "connected")
    expect(status).to_have_attribute("aria-live", "polite")
    wait_until(page, lambda: fake.actions(0, "subscribe"), "the first subscribe")
    assert fake.actions(0, "subscribe") == [
        {"action": "subscribe", "symbols": DEFAULT_SYMBOLS}
    ]
    expect(page.locator("#subscribed-count")).to_have_text("5")

    # Every trade is a sparkline point; the card shows the latest state.
    aapl = card(page, "AAPL")
    expect(aapl.locator('[data-field="name"]')).to_have_text("Apple Inc.")
    fake.price("AAPL", 100.5)
    fake.price("AAPL", 101.25)
    fake.price("AAPL", 101.25, data_type="Q")
    expect(aapl).to_have_attribute("data-update-count", "3")
    expect(aapl).to_have_attribute("data-last-price", "101.25")
    expect(aapl).to_have_attribute("data-history-length", "2")
    expect(aapl).to_have_attribute("data-trend", "up")
    expect(aapl.locator(".card-price")).to_have_text("101.25")
    expect(aapl.locator('[data-field="ask_price"]')).to_have_text("101.50")
    expect(aapl.locator('[data-field="ask_size"]')).to_have_text("5,000")
    expect(aapl.locator('[data-field="bid_price"]')).to_have_text("99.50")
    assert aapl.locator("polyline").get_attribute("points").count(",") == 2
    # Colour, arrow and change compare with the previous close (100), not the
    # last tick: a tick down that stays above the close is still green.
    expect(aapl.locator(".card-price")).to_have_class("card-price up")
    expect(aapl.locator('[data-field="change"]')).to_have_text("+1.25")
    expect(aapl.locator('[data-field="change_pct"]')).to_have_text("+1.25%")
    fake.price("AAPL", 100.75)
    expect(aapl.locator('[data-field="change"]')).to_have_text("+0.75")
    expect(aapl.locator(".card-price")).to_have_class("card-price up")
    expect(aapl).to_have_attribute("data-direction", "up")
    # The sparkline's colour follows the line (last point vs first), not the tick.
    expect(aapl).to_have_attribute("data-trend", "up")
    fake.price("AAPL", 99.0)
    expect(aapl.locator(".card-price")).to_have_class("card-price down")
    expect(aapl.locator('[data-field="change_pct"]')).to_have_text("-1.00%")
    expect(aapl).to_have_attribute("data-trend", "down")
    expect(aapl.locator(".card-change")).to_have_class("card-change down")
    fake.price("AAPL", 100.6)
    expect(aapl).to_have_attribute("data-trend", "up")  # 100.6 > 100.5, first point
    # Without reference data the change is unknown, not invented.
    fake.price("MSFT", 410.0)
    expect(card(page, "MSFT").locator('[data-field="change"]')).to_have_text("\u2014")
    expect(card(page, "MSFT").locator(".card-price")).to_have_class("card-price")

    # A symbol that has only quotes so far shows no last price.
    fake.price("GOOGL", None, data_type="Q")
    expect(card(page, "GOOGL")).to_have_attribute("data-update-count", "1")
    expect(card(page, "GOOGL").locator(".card-price")).to_have_text("\u2014")
    expect(card(page, "GOOGL").locator('[data-field="bid_price"]')).to_have_text(
        "99.50"
    )

    # Server errors appear in a dismissible banner.
    banner = page.locator("#error-banner")
    expect(banner).to_be_hidden()
    fake.error("Invalid symbol: 'B@D'")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Invalid symbol: 'B@D'")
    banner.get_by_role("button", name="Dismiss error").click()
    expect(banner).to_be_hidden()

    # Add with Enter: persisted, card appears, the socket subscribes to it.
    symbol_input = page.get_by_label("Symbol to add")
    symbol_input.fill("nvda")
    symbol_input.press("Enter")
    expect(card(page, "NVDA")).to_be_visible()
    expect(page.locator("#add-symbol-feedback")).to_have_text("Added NVDA.")
    expect(symbol_input).to_be_focused()
    wait_until(page, lambda: len(fake.actions(0, "subscribe")) == 2, "subscribe NVDA")
    assert fake.actions(0, "subscribe")[1] == {
        "action": "subscribe",
        "symbols": ["NVDA"],
    }
    fake.price("NVDA", 480.0)
    expect(card(page, "NVDA").locator(".card-price")).to_have_text("480.00")
    expect(page.locator("#subscribed-count")).to_have_text("6")

    # Invalid and duplicate symbols are reported, not added.
    symbol_input.fill("bad sym!")
    page.get_by_role("button", name="Add Symbol").click()
    feedback = page.locator("#add-symbol-feedback")
    expect(feedback).to_have_text("Invalid symbol: 'bad sym!'")
    expect(symbol_input).to_have_attribute("aria-invalid", "true")
    symbol_input.fill("aapl")
    symbol_input.press("Enter")
    expect(feedback).to_have_text("AAPL is already in your watchlist.")
    expect(page.locator(".price-card")).to_have_count(6)

    # Remove: card gone, unsubscribed, keyboard focus stays in the grid.
    card(page, "MSFT").get_by_role("button", name="Remove MSFT").click()
    expect(card(page, "MSFT")).to_have_count(0)
    expect(
        card(page, "GOOGL").get_by_role("button", name="Remove GOOGL")
    ).to_be_focused()
    wait_until(page, lambda: fake.actions(0, "unsubscribe"), "unsubscribe MSFT")
    assert fake.actions(0, "unsubscribe") == [
        {"action": "unsubscribe", "symbols": ["MSFT"]}
    ]
    expect(page.locator("#subscribed-count")).to_have_text("5")

    # The server goes away: the page reconnects and resubscribes the full set.
    record_states(page)
    fake.connections[0].close(code=1012, reason="restart")
    wait_until(page, lambda: len(fake.connections) == 2, "a reconnect")
    expect(status).to_have_attribute("data-connection-state", "connected")
    assert page.evaluate("window.__states") == ["reconnecting", "connected"]
    wait_until(page, lambda: fake.actions(1, "subscribe"), "the resubscribe")
    assert fake.actions(1, "subscribe") == [
        {"action": "subscribe", "symbols": ["AAPL", "GOOGL", "AMZN", "TSLA", "NVDA"]}
    ]
    # The snapshot after resubscribing is a point only if the price moved.
    fake.price("AAPL", 100.6, snapshot=True)
    fake.price("NVDA", 482.0, snapshot=True)
    expect(card(page, "NVDA")).to_have_attribute("data-history-length", "2")
    expect(aapl).to_have_attribute("data-history-length", "5")

    # The watchlist survives a reload, and the page comes back connected.
    page.reload()
    expect(status).to_have_attribute("data-connection-state", "connected")
    symbols = page.locator(".price-card").evaluate_all(
        "cards => cards.map(c => c.dataset.symbol)"
    )
    assert symbols == ["AAPL", "GOOGL", "AMZN", "TSLA", "NVDA"]


def test_pings_every_30s_and_replaces_a_silent_socket(
    django_server: str, page: Page, browser_user: str
) -> None:
    fake = FakeStream()
    page.clock.install()
    page.route_web_socket(WS_GLOB, fake.route)
    log_in(page, django_server, browser_user, PASSWORD)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")

    page.clock.run_for(30_000)
    wait_until(page, lambda: fake.actions(0, "ping"), "the first ping")
    page.clock.run_for(15_000)
    assert len(fake.connections) == 1, "a socket that answers pings is kept"

    fake.answer_pings = False
    record_states(page)
    page.clock.run_for(15_000)  # the second ping, 60 s after connecting
    wait_until(page, lambda: len(fake.actions(0, "ping")) == 2, "the second ping")
    page.clock.run_for(10_000)  # no reply within the pong timeout
    # The installed clock also runs on its own, so the retry may already be back:
    # the recorded states, not the current one, show the socket was given up.
    wait_until(
        page,
        lambda: "reconnecting" in page.evaluate("window.__states"),
        "the silent socket to be replaced",
    )
    page.clock.run_for(1_000)  # the first retry waits at most the base delay
    wait_until(page, lambda: len(fake.connections) == 2, "a new connection")
    expect(status).to_have_attribute("data-connection-state", "connected")
    wait_until(page, lambda: fake.actions(1, "subscribe"), "the resubscribe")
    assert fake.actions(1, "subscribe")[0]["symbols"] == DEFAULT_SYMBOLS


def test_upstream_status_shows_feed_reconnecting_and_back(
    django_server: str, page: Page, browser_user: str
) -> None:
    fake = FakeStream()
    page.route_web_socket(WS_GLOB, fake.route)
    log_in(page, django_server, browser_user, PASSWORD)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")
    expect(status).to_have_attribute("data-upstream-state", "connected")

    fake._send(0, {"type": "upstream_status", "status": "reconnecting"})
    expect(status).to_have_attribute("data-connection-state", "reconnecting")
    expect(status).to_have_attribute("data-upstream-state", "reconnecting")
    expect(status).to_contain_text("Price feed reconnecting")
    assert len(fake.connections) == 1, "the page keeps its socket"

    fake._send(0, {"type": "upstream_status", "status": "connected"})
    expect(status).to_have_attribute("data-connection-state", "connected")
    expect(status).to_contain_text("Connected")
    expect(page.locator("#error-banner")).to_be_hidden()


def test_backoff_slows_retries_and_reports_disconnected(
    django_server: str, page: Page, browser_user: str
) -> None:
    fake = FakeStream()
    page.clock.install()
    page.route_web_socket(WS_GLOB, fake.route)
    log_in(page, django_server, browser_user, PASSWORD)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")

    fake.accept = False  # every new connection is closed at once
    fake.connections[0].close(code=1011)
    expect(status).to_have_attribute("data-connection-state", "reconnecting")
    for _ in range(12):
        page.clock.run_for(30_000)
        page.wait_for_timeout(50)
    expect(status).to_have_attribute("data-connection-state", "disconnected")
    # Six minutes of retries with delays up to 30 s: bounded, never a tight loop.
    assert 7 <= len(fake.connections) <= 40, len(fake.connections)

    fake.accept = True
    page.clock.run_for(31_000)
    wait_until(page, lambda: fake.subscribed[-1] == DEFAULT_SYMBOLS, "recovery")
    expect(status).to_have_attribute("data-connection-state", "connected")


def test_client_helpers(django_server: str, page: Page) -> None:
    page.goto(f"{django_server}/demo/")  # any page of the site, for its origin
    result = page.evaluate(
        """async () => {
          const s = await import('/static/dashboard/price-stream.js');
          const d = await import('/static/dashboard/dashboard.js');
          const opts = (r) => ({base: 500, cap: 30000, random: () => r});
          return {
            top: [0, 1, 2, 3, 6, 20].map((a) => s.backoffDelay(a, opts(1))),
            bottom: s.backoffDelay(5, opts(0)),
            wsUrl: s.sameHostWebSocketUrl('/p', {protocol: 'https:', host: 'h:1'}),
            prices: [d.formatPrice(189.456), d.formatPrice(1.08451),
                     d.formatPrice(null), d.formatPrice(12345.6)],
            sizes: [d.formatSize(5000), d.formatSize(0.25), d.formatSize(null)],
            flat: s && d.sparklinePoints([5]),
            spark: d.sparklinePoints([1, 3, 2]),
            changes: [[1.25, false, 101.25], [0.75, false, 409.13],
                      [-0.0456, false, 1.0845], [-1234.5, false, 60000],
                      [1.0, true, 1.0845], [-0.123, true, null], [null, false, 100]]
                     .map(([v, p, price]) => d.formatChange(v, p, price)),
            dirs: [d.sparklineDirection([1, 3, 2]), d.sparklineDirection([3, 1, 2]),
                   d.sparklineDirection([2]), d.sparklineDirection([2, 5, 2])],
            day: d.dayChange(101, 100),
            noClose: d.dayChange(101, null),
            clock: d.formatClock(new Date(2023, 10, 9, 7, 5, 3)),
            named: d.symbolsNamed(
              {message: "Unknown symbols: BRK.B, ZZ (FMP does not list them)"},
              ["BRK", "BRK.B", "ZZ", "Z", "AAPL"]),
            field: d.symbolsNamed({message: "AAPL", symbols: ["MSFT"]}, ["AAPL"]),
          };
        }"""
    )
    assert result["top"] == [500, 1000, 2000, 4000, 30000, 30000]
    assert result["bottom"] == 0
    assert result["wsUrl"] == "wss://h:1/p"
    assert result["prices"] == ["189.46", "1.0845", "\u2014", "12,345.60"]
    assert result["sizes"] == ["5,000", "0.25", "\u2014"]
    assert result["flat"] == ""
    assert result["spark"] == "0.00,30.00 50.00,2.00 100.00,16.00"
    # The same table as the server's format_change (tests/dashboard/test_selectors.py).
    assert result["changes"] == [
        "+1.25",
        "+0.75",
        "-0.0456",
        "-1,234.50",
        "+1.00%",
        "-0.12%",
        "\u2014",
    ]
    # The sparkline's direction: last point against the first, not the last tick.
    assert result["dirs"] == ["up", "down", "flat", "flat"]
    assert result["day"] == {"change": 1, "pct": 1, "direction": "up"}
    assert result["noClose"] == {"change": None, "pct": None, "direction": "flat"}
    assert result["clock"] == "07:05:03"
    assert result["named"] == ["BRK.B", "ZZ"]
    assert result["field"] == ["MSFT"]


def test_guide_demo_page_speaks_the_protocol(django_server: str, page: Page) -> None:
    fake = FakeStream()
    page.route_web_socket(WS_GLOB, fake.route)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{django_server}/demo/")
    expect(page.locator("#status")).to_have_text("✅ Connected")
    # The client's own subscribe on open, then the page's DOMContentLoaded one
    # that the guide sent too early (adapted: queued until open).
    wait_until(page, lambda: len(fake.actions(0, "subscribe")) == 2, "two subscribes")
    assert [m["symbols"] for m in fake.actions(0, "subscribe")] == [
        ["AAPL", "MSFT", "TSLA", "GOOGL", "AMZN"],
        ["AAPL", "MSFT", "GOOGL"],
    ]
    fake.price("AAPL", None, data_type="Q")  # crashed the guide's toFixed()
    fake.price("AAPL", 189.45)
    expect(page.locator("#card-AAPL .price")).to_have_text("$189.45")
    page.locator("#symbolInput").fill("nvda")
    page.locator("#symbolInput").press("Enter")
    wait_until(page, lambda: len(fake.actions(0, "subscribe")) == 3, "subscribe NVDA")
    assert fake.actions(0, "subscribe")[2]["symbols"] == ["NVDA"]
    assert errors == []


# --- against the whole product ------------------------------------------------------


def _update_count(page: Page) -> int:
    return int(page.locator("#dashboard").get_attribute("data-update-count") or 0)


def test_live_dashboard_end_to_end(
    page: Page,
    tmp_path: Path,
    product_url: str,
    product_user: tuple[str, str],
    live_simulator: Any,
) -> None:
    base_url = product_url
    username, password = product_user
    simulator = live_simulator
    page.set_default_timeout(60_000)
    static = page.request.get(f"{base_url}/static/dashboard/dashboard.js")
    assert static.ok, (
        f"the live server does not serve static files (HTTP {static.status}); "
        "the dashboard's JS and CSS cannot load"
    )
    # The WebSocket handshakes' answers, as Chromium received them (CDP).
    handshakes: list[dict[str, str]] = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on(
        "Network.webSocketHandshakeResponseReceived",
        lambda event: handshakes.append(
            {k.lower(): v for k, v in event["response"]["headers"].items()}
        ),
    )
    log_in(page, base_url, username, password)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")
    # Chromium offers permessage-deflate and the server accepts it (compressed
    # frames, REALTIME_WS_COMPRESSION on by default): the dashboard runs on it.
    assert handshakes, "no WebSocket handshake seen"
    assert "permessage-deflate" in handshakes[0].get("sec-websocket-extensions", "")

    # Make the scenario independent of what earlier runs left in the watchlist.
    if card(page, "NVDA").count():
        card(page, "NVDA").get_by_role("button", name="Remove NVDA").click()
        expect(card(page, "NVDA")).to_have_count(0)

    # Cards fill with live prices.
    cards = page.locator(".price-card")
    expect(cards.first).to_be_visible()
    for symbol in cards.evaluate_all("cs => cs.map(c => c.dataset.symbol)"):
        expect(card(page, symbol)).not_to_have_attribute("data-last-price", "")
    expect(page.locator("#subscribed-count")).not_to_have_text("0")

    # Add a symbol: its card appears and its price moves.
    page.get_by_label("Symbol to add").fill("NVDA")
    page.get_by_label("Symbol to add").press("Enter")
    nvda = card(page, "NVDA")
    expect(nvda).to_be_visible()
    expect(nvda).not_to_have_attribute("data-last-price", "")
    wait_until(
        page,
        lambda: int(nvda.get_attribute("data-history-length") or 0) >= 3,
        "NVDA to trade three times",
        timeout=60,
    )

    # Remove one.
    removed = (
        "TSLA"
        if card(page, "TSLA").count()
        else cards.first.get_attribute("data-symbol")
    )
    card(page, removed).get_by_role("button", name=f"Remove {removed}").click()
    expect(card(page, removed)).to_have_count(0)

    # Reload: the watchlist persisted and the server renders the cached price.
    html = page.request.get(f"{base_url}/").text()
    nvda_html = html.split('data-symbol="NVDA"', 1)[1].split("</article>", 1)[0]
    assert 'data-last-price=""' not in nvda_html
    page.reload()
    expect(status).to_have_attribute("data-connection-state", "connected")
    expect(card(page, "NVDA")).to_be_visible()
    expect(card(page, removed)).to_have_count(0)

    # The upstream feed drops (and refuses logins for a while, so the outage is
    # long enough to see): the browser keeps its socket, the indicator says the
    # feed is reconnecting, then connected, and prices move again.
    wait_until(page, lambda: _update_count(page) > 0, "updates after reload")
    simulator.run(simulator.sim.refuse_logins)
    try:
        simulator.call(simulator.sim.drop_connections())
        expect(status).to_have_attribute("data-connection-state", "reconnecting")
        expect(status).not_to_have_attribute("data-upstream-state", "connected")
        expect(status).to_contain_text("Price feed reconnecting")
    finally:
        simulator.run(lambda: simulator.sim.refuse_logins(False))
    expect(status).to_have_attribute("data-connection-state", "connected")
    expect(status).to_have_attribute("data-upstream-state", "connected")
    before = _update_count(page)
    wait_until(
        page, lambda: _update_count(page) >= before + 20, "prices after the drop", 60
    )
    expect(page.locator("#error-banner")).to_be_hidden()

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("FMPSITE_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, SCREENSHOT)
