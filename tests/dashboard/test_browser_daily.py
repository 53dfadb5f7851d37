"""The dashboard as a watchlist people keep open all day (issue 16), in Chromium.

Against Django's live test server with the WebSocket played by ``FakeStream`` and
the reference endpoint by ``serve_references`` (H7's contract), so every check is
deterministic. The whole-product checks (server kill, restart, screenshots) are in
test_browser_live.py; accessibility in test_accessibility.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Browser, BrowserContext, Page, expect

from dashboard.models import DashboardPreference, Watchlist, WatchlistItem
from dashboard.selectors import watchlist_symbols
from realtime.backends import backends
from realtime.feed.state import PriceState
from tests.dashboard.browser import (
    DEFAULT_SYMBOLS,
    PASSWORD,
    WS_GLOB,
    FakeStream,
    card,
    log_in,
    serve_references,
    wait_until,
)

pytestmark = pytest.mark.browser

REFERENCES = {
    "AAPL": {"name": "Apple Inc.", "previous_close": 100.0},
    "MSFT": {"name": "Microsoft Corporation", "previous_close": 400.0},
    "AMZN": {"name": "Amazon.com, Inc.", "previous_close": 200.0},
}
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    yield context
    context.close()


def open_dashboard(
    context: BrowserContext, base_url: str, *, log_in_as: str | None = "viewer"
) -> tuple[Page, FakeStream]:
    page = context.new_page()
    fake = FakeStream()
    page.route_web_socket(WS_GLOB, fake.route)
    serve_references(page, REFERENCES)
    if log_in_as:
        log_in(page, base_url, log_in_as, PASSWORD)
    else:
        page.goto(f"{base_url}/")
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-connection-state", "connected"
    )
    wait_until(page, lambda: fake.actions(0, "subscribe"), "the first subscribe")
    return page, fake


def order_of(page: Page, selector: str = ".price-card") -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => e.dataset.symbol)")


def test_table_view_sorts_and_the_choice_is_kept_per_user(
    django_server: str, context: BrowserContext, browser: Browser, browser_user: str
) -> None:
    page, fake = open_dashboard(context, django_server)
    expect(page.locator("#dashboard")).to_have_attribute("data-view", "cards")
    expect(page.locator("#price-table-wrap")).to_be_hidden()

    page.get_by_role("button", name="Table").click()
    expect(page.locator("#dashboard")).to_have_attribute("data-view", "table")
    expect(page.locator("#price-table")).to_be_visible()
    expect(page.locator("#price-grid")).to_be_hidden()
    expect(page.get_by_role("button", name="Table")).to_have_attribute(
        "aria-pressed", "true"
    )
    headers = page.locator("#price-table thead th").all_inner_texts()
    assert [h.strip() for h in headers[:8]] == [
        "Symbol",
        "Name",
        "Last",
        "Change",
        "% Change",
        "Bid",
        "Ask",
        "Time",
    ]

    fake.price("AAPL", 101.0)  # +1.00 %
    fake.price("MSFT", 396.0)  # -1.00 %
    fake.price("AMZN", 204.0)  # +2.00 %
    fake.price("GOOGL", 150.0)  # no previous close: unknown change
    rows = "#price-table-body tr"
    aapl = page.locator(f'{rows}[data-symbol="AAPL"]')
    expect(aapl.locator('[data-field="last_price"]')).to_have_text("101.00")
    expect(aapl.locator('[data-field="name"]')).to_have_text("Apple Inc.")
    expect(aapl.locator('[data-field="change"]')).to_have_text("+1.00")
    expect(aapl.locator('[data-field="change_pct"]')).to_have_text("+1.00%")
    expect(aapl.locator('[data-field="change_pct"]')).to_have_class("num up")
    expect(aapl.locator('[data-field="bid_price"]')).to_have_text("99.50")
    expect(aapl.locator('[data-field="ask_price"]')).to_have_text("101.50")
    assert CLOCK.match(aapl.locator('[data-field="time"]').inner_text())
    msft = page.locator(f'{rows}[data-symbol="MSFT"]')
    expect(msft.locator('[data-field="change_pct"]')).to_have_text("-1.00%")
    expect(msft.locator('[data-field="change_pct"]')).to_have_class("num down")
    expect(
        page.locator(f'{rows}[data-symbol="GOOGL"] [data-field="change"]')
    ).to_have_text("\u2014")

    # Sort by % change: ascending, then descending; unknown values stay last.
    sort = page.get_by_role("button", name="% Change")
    sort.click()
    pct_header = page.locator('th[data-sort-key="change_pct"]')
    expect(pct_header).to_have_attribute("aria-sort", "ascending")
    wait_until(
        page,
        lambda: order_of(page, rows)[:4] == ["MSFT", "AAPL", "AMZN", "GOOGL"],
        "ascending order",
    )
    sort.click()
    expect(pct_header).to_have_attribute("aria-sort", "descending")
    wait_until(
        page,
        lambda: order_of(page, rows)[:4] == ["AMZN", "AAPL", "MSFT", "GOOGL"],
        "descending order",
    )
    wait_until(
        page,
        lambda: DashboardPreference.objects.filter(
            view="table", sort_key="change_pct", sort_dir="desc"
        ).exists(),
        "the layout saved on the server",
    )

    # Kept per user, on the server: a reload and another browser both get it.
    page.reload()
    expect(page.locator("#dashboard")).to_have_attribute("data-view", "table")
    expect(page.locator('th[data-sort-key="change_pct"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    other = browser.new_context()
    try:
        elsewhere, _ = open_dashboard(other, django_server)
        expect(elsewhere.locator("#dashboard")).to_have_attribute("data-view", "table")
        expect(elsewhere.locator("#price-table")).to_be_visible()
    finally:
        other.close()

    # After descending, a click goes back to the watchlist's own order.
    page.get_by_role("button", name="% Change").click()
    expect(page.locator('th[data-sort-key="change_pct"]')).to_have_attribute(
        "aria-sort", "none"
    )
    assert order_of(page, rows) == DEFAULT_SYMBOLS


def test_dark_mode_follows_the_system_setting(
    django_server: str, browser: Browser, browser_user: str
) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        try:
            page, _ = open_dashboard(context, django_server)
            backgrounds[scheme] = page.evaluate(
                """() => [getComputedStyle(document.body).backgroundColor,
                          getComputedStyle(document.body).color,
                          getComputedStyle(document.querySelector('.price-card'))
                            .backgroundColor]"""
            )
        finally:
            context.close()
    assert backgrounds["light"] == [
        "rgb(249, 250, 251)",
        "rgb(31, 41, 55)",
        "rgb(255, 255, 255)",
    ]
    assert backgrounds["dark"] == [
        "rgb(11, 18, 32)",
        "rgb(229, 231, 235)",
        "rgb(31, 41, 55)",
    ]


def test_watchlists_create_switch_rename_delete(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, _ = open_dashboard(context, django_server)
    tabs = page.locator("#watchlist-tabs a")
    expect(tabs).to_have_text(["My watchlist"])

    page.get_by_text("Manage lists").click()
    page.get_by_label("New list").fill("Tech")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"\?watchlist=\d+$"))
    tech_id = Watchlist.objects.get(name="Tech").pk
    expect(tabs).to_have_text(["My watchlist", "Tech"])
    expect(page.locator('#watchlist-tabs a[aria-current="page"]')).to_have_text("Tech")
    expect(page.locator(".price-card")).to_have_count(0)
    expect(page.locator("#empty-watchlist")).to_be_visible()

    page.get_by_label("Symbol to add").fill("NVDA")
    page.get_by_label("Symbol to add").press("Enter")
    expect(card(page, "NVDA")).to_be_visible()
    assert watchlist_symbols(watchlist=Watchlist.objects.get(pk=tech_id)) == ["NVDA"]

    # Switch lists: each shows its own symbols.
    page.get_by_role("link", name="My watchlist").click()
    expect(page.locator(".price-card")).to_have_count(5)
    expect(card(page, "NVDA")).to_have_count(0)
    page.get_by_role("link", name="Tech").click()
    expect(page.locator(".price-card")).to_have_count(1)
    # The cards are server-rendered: a form used before dashboard.js binds it is
    # a plain post (a flash message, not this feedback line). Wait for the page.
    page.wait_for_function("() => window.fmpsiteDashboard !== undefined")

    # Rename in place.
    page.get_by_text("Manage lists").click()
    page.get_by_label("Rename “Tech” to").fill("Chips")
    page.get_by_role("button", name="Rename").click()
    expect(tabs).to_have_text(["My watchlist", "Chips"])
    expect(page.locator("#add-symbol-feedback")).to_have_text("Renamed to 'Chips'.")
    assert Watchlist.objects.get(pk=tech_id).name == "Chips"
    # A name already taken is refused in words.
    page.get_by_label("Rename “Chips” to").fill("My watchlist")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#add-symbol-feedback")).to_have_text(
        "You already have a watchlist named 'My watchlist'."
    )

    # Delete (after a confirmation) goes back to the remaining list.
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete “Chips”").click()
    expect(tabs).to_have_text(["My watchlist"])
    expect(page.locator(".price-card")).to_have_count(5)
    assert dialogs == ["Delete the watchlist “Chips” and its 1 symbols?"]
    assert not Watchlist.objects.filter(pk=tech_id).exists()


def test_edits_in_one_tab_reach_the_other_tabs(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    first, _ = open_dashboard(context, django_server)
    second, second_fake = open_dashboard(context, django_server, log_in_as=None)

    first.get_by_label("Symbol to add").fill("NVDA")
    first.get_by_label("Symbol to add").press("Enter")
    expect(card(second, "NVDA")).to_be_visible()
    wait_until(
        second,
        lambda: ["NVDA"] in [m["symbols"] for m in second_fake.actions(0, "subscribe")],
        "the other tab to subscribe NVDA",
    )
    second_fake.price("NVDA", 480.0)
    expect(card(second, "NVDA").locator(".card-price")).to_have_text("480.00")

    card(first, "AAPL").get_by_role("button", name="Remove AAPL").click()
    expect(card(second, "AAPL")).to_have_count(0)
    wait_until(
        second,
        lambda: second_fake.actions(0, "unsubscribe"),
        "the other tab to unsubscribe AAPL",
    )

    card(first, "AMZN").get_by_role("button", name="Move AMZN up").click()
    expected = ["MSFT", "AMZN", "GOOGL", "TSLA", "NVDA"]
    wait_until(first, lambda: order_of(first) == expected, "the move here")
    wait_until(second, lambda: order_of(second) == expected, "the move there")

    first.get_by_role("button", name="Table").click()
    expect(second.locator("#dashboard")).to_have_attribute("data-view", "table")

    first.get_by_text("Manage lists").click()
    first.get_by_label("Rename “My watchlist” to").fill("Core")
    first.get_by_role("button", name="Rename").click()
    expect(second.locator("#watchlist-tabs a")).to_have_text(["Core"])


def test_undo_after_remove_and_keyboard_reorder(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, fake = open_dashboard(context, django_server)
    card(page, "GOOGL").get_by_role("button", name="Remove GOOGL").click()
    expect(card(page, "GOOGL")).to_have_count(0)
    toast = page.locator("#undo-toast")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("Removed GOOGL.")
    page.get_by_role("button", name="Undo: put GOOGL back").click()
    expect(card(page, "GOOGL")).to_be_visible()
    expect(toast).to_be_hidden()
    assert order_of(page) == DEFAULT_SYMBOLS  # back in its place
    watchlist = Watchlist.objects.get()
    assert watchlist_symbols(watchlist=watchlist) == DEFAULT_SYMBOLS
    wait_until(page, lambda: len(fake.actions(0, "subscribe")) == 2, "resubscribe")
    assert fake.actions(0, "subscribe")[1]["symbols"] == ["GOOGL"]

    # The toast goes away by itself.
    card(page, "TSLA").get_by_role("button", name="Remove TSLA").click()
    expect(toast).to_be_visible()
    expect(toast).to_be_hidden(timeout=60_000)

    # Reorder from the keyboard: focus stays on the button that moved.
    move = card(page, "AMZN").get_by_role("button", name="Move AMZN up")
    move.focus()
    page.keyboard.press("Enter")
    wait_until(
        page,
        lambda: order_of(page) == ["AAPL", "MSFT", "AMZN", "GOOGL"],
        "AMZN moved up",
    )
    expect(move).to_be_focused()
    page.keyboard.press("Enter")
    wait_until(
        page,
        lambda: order_of(page) == ["AAPL", "AMZN", "MSFT", "GOOGL"],
        "AMZN moved up again",
    )
    page.reload()
    assert order_of(page) == ["AAPL", "AMZN", "MSFT", "GOOGL"]


def test_symbol_box_suggests_symbols_with_names(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, _ = open_dashboard(context, django_server)
    box = page.get_by_label("Symbol to add")
    expect(box).to_have_attribute("list", "symbol-suggestions")
    box.press_sequentially("nv")
    options = page.locator("#symbol-suggestions option")
    expect(options.first).to_have_attribute("value", "NVDA")
    expect(options.first).to_have_attribute("label", "NVDA — NVIDIA Corporation")
    box.fill("")
    box.press_sequentially("microso")
    expect(options.first).to_have_attribute("value", "MSFT")


def test_disconnect_marks_cards_stale_with_reconnect_now_and_plain_errors(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, fake = open_dashboard(context, django_server)
    fake.price("AAPL", 101.0)
    aapl = card(page, "AAPL")
    expect(aapl.locator(".card-price")).to_have_class("card-price up")
    root = page.locator("#dashboard")
    button = page.get_by_role("button", name="Reconnect now")
    expect(button).to_be_hidden()
    expect(root).not_to_have_attribute("data-stale", "true")

    page.evaluate(
        """() => {
          window.__dropAt = null;
          window.__staleAt = null;
          // The page's own retry waits ~10 minutes (no jitter below it), so
          // only "Reconnect now" can bring the connection back in this test:
          // a retry of its own under load once hid the button before the click.
          const stream = window.fmpsiteDashboard.stream;
          stream.options.baseDelay = 600000;
          stream.options.maxDelay = 600000;
          Math.random = () => 0.999;
          stream.addEventListener('state', (e) => {
            if (e.detail.state !== 'connected' && window.__dropAt === null) {
              window.__dropAt = Date.now();
            }
          });
          const root = document.getElementById('dashboard');
          new MutationObserver(() => {
            if (root.dataset.stale === 'true' && window.__staleAt === null) {
              window.__staleAt = Date.now();
            }
          }).observe(root, {attributes: true});
        }"""
    )
    fake.accept = False
    fake.connections[0].close(code=1006)
    expect(root).to_have_attribute("data-stale", "true", timeout=60_000)
    # Measured in the page: from the socket's drop to the stale marking.
    assert page.evaluate("window.__staleAt - window.__dropAt") < 2_000
    for symbol in DEFAULT_SYMBOLS:
        expect(card(page, symbol)).to_have_attribute("data-stale", "true")
    label = aapl.locator('[data-field="stale"]')
    expect(label).to_be_visible()
    expect(label).to_have_text(re.compile(r"^Stale since \d\d:\d\d:\d\d$"))
    expect(page.locator("#stale-note")).to_contain_text(
        "connection to the server was lost"
    )
    expect(button).to_be_visible()
    # Greyed: the price loses its up colour and arrow. Waited for, not read once:
    # the colour eases over 0.1 s (a read mid-way gave rgb(74, 85, 98)).
    expect(aapl.locator(".card-price")).to_have_css("color", "rgb(75, 85, 99)")

    # Adding while the server cannot be reached: words, never "Failed to fetch".
    page.route("**/watchlist/add/", lambda route: route.abort())
    page.get_by_label("Symbol to add").fill("NVDA")
    page.get_by_label("Symbol to add").press("Enter")
    feedback = page.locator("#add-symbol-feedback")
    expect(feedback).to_contain_text("Could not add NVDA: the server cannot be reached")
    assert "Failed to fetch" not in feedback.inner_text()
    page.unroute("**/watchlist/add/")

    # Reconnect now skips the backoff wait (~10 minutes here); recovery clears
    # the marking.
    expect(button).to_be_visible()
    fake.accept = True
    before = len(fake.connections)
    button.dispatch_event("click")
    wait_until(page, lambda: len(fake.connections) > before, "a new connection")
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-connection-state", "connected"
    )
    expect(root).not_to_have_attribute("data-stale", "true")
    expect(aapl).not_to_have_attribute("data-stale", "true")
    expect(label).to_be_hidden()
    expect(button).to_be_hidden()
    expect(page.locator("#stale-note")).to_be_hidden()


def test_server_errors_are_worded_for_a_person(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, fake = open_dashboard(context, django_server)
    banner = page.locator("#error-banner")
    # The consumer's wording (realtime/fanout/consumers.py): symbols in the text.
    fake.error(
        "Unknown symbols: TSLA (FMP does not list them); not subscribed",
        code="unknown_symbol",
    )
    expect(banner).to_contain_text("Unknown symbols: TSLA")
    expect(banner).to_contain_text("Check the spelling, or remove it from the list.")
    tsla = card(page, "TSLA")
    expect(tsla.locator('[data-field="stale"]')).to_have_text(
        "Unknown symbol: no prices"
    )
    expect(tsla).to_have_attribute("data-refused", "unknown_symbol")
    expect(card(page, "AAPL").locator('[data-field="stale"]')).to_be_hidden()
    # upstream_refused names its symbols in a field (realtime/feed/state.py).
    fake.error(
        "FMP does not send MSFT: not in your plan",
        code="upstream_refused",
        symbols=["MSFT"],
    )
    expect(banner).to_contain_text(
        "The market data provider refused: FMP does not send MSFT: not in your plan."
    )
    expect(card(page, "MSFT").locator('[data-field="stale"]')).to_have_text(
        "Refused by the data provider: no prices"
    )


def test_session_end_found_by_a_request_is_shown(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    page, _ = open_dashboard(context, django_server)
    Session.objects.all().delete()  # what a password reset or logout elsewhere does
    page.get_by_label("Symbol to add").fill("NVDA")
    page.get_by_label("Symbol to add").press("Enter")
    feedback = page.locator("#add-symbol-feedback")
    expect(feedback).to_contain_text("Could not add NVDA: your session ended.")
    assert "HTTP 200" not in feedback.inner_text()
    assert_session_ended(page, django_server)


def test_session_end_found_after_a_reconnect_is_shown(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    """With anonymous sockets allowed, the socket reconnects fine without a
    session: the page must ask and not keep saying "Connected"."""
    page, fake = open_dashboard(context, django_server)
    Session.objects.all().delete()
    fake.connections[0].close(code=1012)
    assert_session_ended(page, django_server)


def assert_session_ended(page: Page, base_url: str) -> None:
    banner = page.locator("#session-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Your session ended — log in again")
    link = banner.get_by_role("link", name="log in again")
    expect(link).to_have_attribute("href", "/accounts/login/?next=/")
    status = page.locator("#connection-status")
    expect(status).to_have_text("Session ended")
    expect(status).not_to_contain_text("Connected")
    expect(page.locator("#dashboard")).to_have_attribute("data-session", "ended")
    expect(page.get_by_role("button", name="Add Symbol")).to_be_disabled()
    link.click()
    expect(page).to_have_url(f"{base_url}/accounts/login/?next=/")


def test_all_times_in_one_format_and_the_browsers_time_zone(
    django_server: str, browser: Browser, browser_user: str
) -> None:
    backends().cache.put(
        PriceState(
            symbol="AAPL",
            timestamp=1_699_564_800_000,  # 2023-11-09 21:20:00 UTC
            data_type="T",
            last_price=101.0,
            last_size=100,
            ask_price=101.5,
            ask_size=5000,
            bid_price=99.5,
            bid_size=3000,
            cached_at="2023-11-09T21:20:00.000+00:00",
        )
    )
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    try:
        page, fake = open_dashboard(context, django_server)
        aapl = card(page, "AAPL")
        # Server-rendered (ISO datetime attribute) shown in local time, same format.
        expect(aapl.locator("time")).to_have_text("16:20:00")
        expect(aapl.locator("time")).to_have_attribute(
            "datetime", "2023-11-09T21:20:00+00:00"
        )
        assert "UTC" not in page.locator("#price-grid").inner_text()
        fake.price("MSFT", 401.0)  # the FakeStream's timestamp is the same instant
        expect(card(page, "MSFT").locator("time")).to_have_text("16:20:00")
        page.get_by_role("button", name="Table").click()
        expect(
            page.locator('#price-table-body tr[data-symbol="AAPL"] [data-field="time"]')
        ).to_have_text("16:20:00")
    finally:
        context.close()


def test_favicon_is_linked_and_no_page_asset_is_missing(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    missing: list[str] = []
    context.on(
        "response",
        # Assets and pages; data requests (fetch) may 404 for a symbol without
        # reference data or history, which the page handles.
        lambda r: (
            missing.append(r.url)
            if r.status == 404 and r.request.resource_type != "fetch"
            else None
        ),
    )
    page, _ = open_dashboard(context, django_server)
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href == "/static/favicon.svg"
    icon = page.request.get(f"{django_server}{href}")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg")
    page.goto(f"{django_server}/demo/")
    assert missing == []


def test_admin_refuses_a_51st_symbol(
    django_server: str, context: BrowserContext, django_user_model: Any, settings
) -> None:
    limit = settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION
    assert limit == 50
    admin = django_user_model.objects.create_superuser("boss", password=PASSWORD)
    owner = django_user_model.objects.create_user("trader", password=PASSWORD)
    watchlist = Watchlist.objects.create(user=owner, name="Everything")
    watchlist.items.bulk_create(
        WatchlistItem(watchlist=watchlist, symbol=f"S{i:02d}", position=i)
        for i in range(limit)
    )
    page = context.new_page()
    page.goto(f"{django_server}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{django_server}/admin/dashboard/watchlist/{watchlist.pk}/change/")
    page.locator(f"#id_items-{limit}-symbol").fill("UNH")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator(".errornote, .errorlist.nonform")
    expect(error.last).to_contain_text("A watchlist holds at most 50 symbols")
    assert watchlist.items.count() == limit
    assert not watchlist.items.filter(symbol="UNH").exists()


def test_sparkline_starts_from_the_servers_history(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    """A reload keeps the line: the page draws the server's recent trades
    (PROTOCOL.md's history endpoint) and appends live ticks newer than them."""
    history = {
        "symbol": "AAPL",
        "epoch": "e1",
        "updates": [
            {"seq": 1, "data_type": "T", "last_price": 103.0, "symbol": "AAPL"},
            {"seq": 2, "data_type": "Q", "last_price": 103.0, "symbol": "AAPL"},
            {"seq": 3, "data_type": "T", "last_price": 101.0, "symbol": "AAPL"},
            {"seq": 4, "data_type": "T", "last_price": 100.0, "symbol": "AAPL"},
        ],
    }

    def handle(route: Any) -> None:
        if route.request.url.split("?")[0].endswith("/AAPL"):
            route.fulfill(status=200, json=history)
        else:
            route.fulfill(status=404, json={"detail": "No data"})

    page = context.new_page()
    page.route("**/api/v2/realtime/history/*", handle)
    fake = FakeStream()
    page.route_web_socket(WS_GLOB, fake.route)
    serve_references(page, REFERENCES)
    log_in(page, django_server, "viewer", PASSWORD)
    aapl = card(page, "AAPL")
    expect(aapl).to_have_attribute("data-history-source", "server")
    expect(aapl).to_have_attribute("data-history-length", "3")  # trades only
    expect(aapl).to_have_attribute("data-trend", "down")  # 103 -> 100
    assert aapl.locator("polyline").get_attribute("points").count(",") == 3
    expect(card(page, "MSFT")).not_to_have_attribute("data-history-source", "server")
    wait_until(page, lambda: fake.actions(0, "subscribe"), "the first subscribe")
    fake.price("AAPL", 104.0, seq=5)
    expect(aapl).to_have_attribute("data-history-length", "4")
    expect(aapl).to_have_attribute("data-trend", "up")  # 103 -> 104


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)


def test_pages_work_under_the_content_security_policy(
    django_server: str, context: BrowserContext, browser_user: str
) -> None:
    """No inline script, style or handler: under the product's CSP (added here to
    every HTML answer, whoever serves it) nothing is refused and the pages work."""

    def with_csp(route: Any) -> None:
        if route.request.resource_type != "document":
            route.fallback()
            return
        response = route.fetch(max_redirects=0)
        headers = {**response.headers, "content-security-policy": CSP}
        route.fulfill(response=response, headers=headers)

    context.route("**/*", with_csp)
    refused: list[str] = []
    context.on(
        "console",
        lambda m: (
            refused.append(m.text) if "Content Security Policy" in m.text else None
        ),
    )
    page, fake = open_dashboard(context, django_server)
    fake.price("AAPL", 101.0)
    expect(card(page, "AAPL").locator(".card-price")).to_have_text("101.00")
    page.get_by_role("button", name="Table").click()
    expect(page.locator("#price-table")).to_be_visible()
    page.get_by_role("button", name="Cards").click()
    demo = len(fake.connections)
    page.goto(f"{django_server}/demo/")
    expect(page.locator("#status")).to_have_text("✅ Connected")
    page.locator("#symbolInput").fill("nvda")
    page.get_by_role("button", name="Add Symbol").click()
    wait_until(
        page,
        lambda: (
            len(fake.connections) > demo
            and ["NVDA"] in [m["symbols"] for m in fake.actions(demo, "subscribe")]
        ),
        "the demo page to subscribe NVDA",
    )
    assert refused == []


def test_fifty_symbols_fit_a_phone(
    django_server: str, browser: Browser, browser_user: str
) -> None:
    """Density: 50 symbols made a 16,000 px phone page; the compact cards and the
    table keep it a few screens long."""
    from django.contrib.auth.models import User

    from dashboard.services import watchlist_get_or_create_default
    from realtime.universe import NAMES

    watchlist = watchlist_get_or_create_default(
        user=User.objects.get(username="viewer")
    )
    watchlist.items.all().delete()
    watchlist.items.bulk_create(
        WatchlistItem(watchlist=watchlist, symbol=s, position=i)
        for i, s in enumerate(list(NAMES)[:50])
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page, _ = open_dashboard(context, django_server)
        expect(page.locator(".price-card")).to_have_count(50)
        cards_height = page.evaluate("document.documentElement.scrollHeight")
        page.get_by_role("button", name="Table").click()
        expect(page.locator("#price-table")).to_be_visible()
        table_height = page.evaluate("document.documentElement.scrollHeight")
        width = page.evaluate("document.documentElement.scrollWidth")
        print(f"phone_50_symbols cards_px={cards_height} table_px={table_height}")
        assert cards_height < 6_000, cards_height
        assert table_height < 3_000, table_height
        assert width <= 390, f"the page scrolls sideways ({width} px)"
    finally:
        context.close()
