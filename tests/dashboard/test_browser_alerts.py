"""Price alerts in the dashboard, in Chromium (issue 25): a card's bell button
prefills the new-alert form, an ``alert`` message shows a toast (aria-live) and a
browser Notification when permitted, the bell counts and lists the event, and
the page stays axe clean with the panel open, in light and dark mode.

The first test plays the socket with FakeStream (the message is exactly the
protocol's); the second runs the whole product with the simulator, whose prices
cross the alert the user set from the card.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from realtime.alerts.models import AlertEvent, PriceAlert
from tests.dashboard.browser import (
    PASSWORD,
    WS_GLOB,
    FakeStream,
    card,
    log_in,
    serve_references,
    wait_until,
)
from tests.dashboard.test_accessibility import assert_no_violations
from tests.live import manage, start_product

pytestmark = pytest.mark.browser

# Records what the page shows through the Notification API, granted: headless
# Chromium has no notification UI to look at.
NOTIFICATION_RECORDER = """
  window.__notifications = [];
  window.Notification = class {
    static permission = "granted";
    static requestPermission() { return Promise.resolve("granted"); }
    constructor(title, options) { window.__notifications.push({title, ...options}); }
  };
"""


def open_alert_form_from_card(page: Page, symbol: str) -> None:
    page.get_by_role("button", name=f"Set a price alert on {symbol}").click()
    expect(page.locator("#alerts-panel")).to_have_attribute("open", "")
    expect(page.get_by_label("Symbol", exact=True)).to_have_value(symbol)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_alert_message_toasts_notifies_and_lands_under_the_bell(
    django_server: str, browser: Browser, browser_user: str, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        reduced_motion="reduce",
        color_scheme=scheme,
    )
    context.set_default_timeout(60_000)
    context.add_init_script(NOTIFICATION_RECORDER)
    try:
        page = context.new_page()
        fake = FakeStream()
        page.route_web_socket(WS_GLOB, fake.route)
        serve_references(page, {"AAPL": {"name": "Apple Inc.", "previous_close": 99}})
        log_in(page, django_server, browser_user, PASSWORD)
        expect(page.locator("#connection-status")).to_have_attribute(
            "data-connection-state", "connected"
        )
        wait_until(page, lambda: fake.actions(0, "subscribe"), "the first subscribe")
        fake.price("AAPL", 101.25)
        expect(card(page, "AAPL")).to_have_attribute("data-last-price", "101.25")

        # The card's bell prefills the form with its last price.
        open_alert_form_from_card(page, "AAPL")
        threshold = page.get_by_label("Threshold")
        expect(threshold).to_have_value("101.25")
        expect(threshold).to_be_focused()
        threshold.fill("102")
        page.get_by_label("Note (optional)").fill("sell half")
        page.get_by_role("button", name="Create alert").click()
        expect(page.locator("#alert-feedback")).to_have_text(
            "Alert set: AAPL crosses above 102.00."
        )
        item = page.locator("#alert-list .alert-item")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("sell half")
        alert = PriceAlert.objects.get(owner__username=browser_user)
        assert alert.threshold == Decimal("102") and alert.note == "sell half"

        # Pause and resume from the list.
        page.get_by_role("button", name="Pause the alert on AAPL").click()
        expect(item).to_contain_text("Paused")
        page.get_by_role("button", name="Resume the alert on AAPL").click()
        expect(item).to_contain_text("Active")
        page.locator("#alerts-bell").click()  # close the panel: the badge counts
        expect(page.locator("#alerts-panel")).not_to_have_attribute("open", "")

        # The feed fired it: the event is written, then the message is sent.
        event = AlertEvent.objects.create(
            alert=alert,
            symbol="AAPL",
            condition="crosses_above",
            threshold=Decimal("102"),
            price=Decimal("102.03"),
            tick_ts=1_699_564_800_000,
            seq=42,
            epoch="ep1",
            idempotency_key=f"{alert.pk}:ep1:42",
        )
        message: dict[str, Any] = {
            "type": "alert",
            "alert_id": alert.pk,
            "event_id": event.pk,
            "symbol": "AAPL",
            "condition": "crosses_above",
            "threshold": 102.0,
            "price": 102.03,
            "value": None,
            "tick_ts": 1_699_564_800_000,
            "seq": 42,
            "epoch": "ep1",
            "fired_at": event.fired_at.isoformat(),
            "idempotency_key": event.idempotency_key,
        }
        fake.connections[-1].send(json.dumps(message))
        fake.connections[-1].send(json.dumps(message))  # a copy
        toast = page.locator("#alert-toasts .alert-toast")
        expect(toast).to_have_count(1)
        expect(toast).to_contain_text(
            "Alert: AAPL crossed above 102.00: price 102.03 \u2014 sell half"
        )
        expect(page.locator("#alert-toasts")).to_have_attribute(
            "aria-live", "assertive"
        )
        notifications = page.evaluate("window.__notifications")
        assert len(notifications) == 1, notifications
        assert notifications[0]["title"] == "fmpsite: AAPL alert"
        assert notifications[0]["tag"] == event.idempotency_key
        badge = page.locator("#alerts-badge")
        expect(badge).to_have_attribute("data-count", "1")
        expect(badge).to_be_visible()

        # Opening the bell shows the event and clears the count.
        page.locator("#alerts-bell").click()
        events = page.locator("#alert-events .alert-event")
        expect(events).to_have_count(1)
        expect(events.first).to_contain_text("AAPL")
        expect(events.first).to_contain_text("102.03")
        expect(badge).to_have_attribute("data-count", "0")
        expect(badge).to_be_hidden()
        # Each scheme in its own context: switching it on a live page leaves
        # some colours of the old one in Chromium (a test artefact).
        assert_no_violations(page, f"the open alerts panel with a toast ({scheme})")

        page.get_by_role("button", name="Dismiss the alert on AAPL").click()
        expect(toast).to_have_count(0)
        page.get_by_role("button", name="Delete the alert on AAPL").click()
        expect(page.locator("#alert-list .alert-item")).to_have_count(0)
        assert not PriceAlert.objects.exists()
    finally:
        context.close()


# --- the whole product, with the simulator's prices -----------------------------

LIVE_USER = ("alert-viewer", "alert-viewer-pw-123")


@pytest.fixture
def alerts_site(private_sqlite: str) -> Iterator[Any]:
    with start_product(
        "daphne-dashboard-alerts",
        simulator={"rate": 20.0, "seed": 7},
        DATABASE_URL=private_sqlite,
        FMP_API_KEY="dashboard-alerts-key",
    ) as live:
        name, password = LIVE_USER
        manage(
            live.env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"u, _ = User.objects.get_or_create(username={name!r}); "
            f"u.set_password({password!r}); u.save()",
        )
        yield live


def test_an_alert_set_on_a_card_fires_from_the_simulator_with_a_toast(
    alerts_site: Any, browser: Browser
) -> None:
    live = alerts_site
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, reduced_motion="reduce"
    )
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        log_in(page, live.url, *LIVE_USER)
        aapl = card(page, "AAPL")
        expect(aapl).not_to_have_attribute("data-last-price", "")
        open_alert_form_from_card(page, "AAPL")
        prefilled = float(page.get_by_label("Threshold").input_value())
        assert prefilled > 0
        # The simulator's walk is pulled back toward the day's open, so a threshold
        # at the current price, toward the open, is crossed soon; every crossing
        # counts, so noise around it fires too.
        day_open = live.sim.run(lambda: live.sim.sim.reference("AAPL").open)
        condition = "crosses_below" if prefilled > day_open else "crosses_above"
        page.get_by_label("When").select_option(condition)
        page.get_by_label("Frequency").select_option("every_cross")
        page.get_by_role("button", name="Create alert").click()
        expect(page.locator("#alert-list .alert-item")).to_have_count(1)
        page.locator("#alerts-bell").click()  # closed: the badge counts new events

        toast = page.locator("#alert-toasts .alert-toast").first
        expect(toast).to_contain_text("Alert: AAPL crossed", timeout=90_000)
        expect(page.locator("#alerts-badge")).not_to_have_attribute("data-count", "0")
        page.locator("#alerts-bell").click()
        expect(page.locator("#alert-events .alert-event").first).to_contain_text("AAPL")
        assert_no_violations(page, "the open alerts panel on the live product")
        # The bell's event is the one recorded: the lists come from the server.
        expect(page.locator("#alert-events [data-event-id]").first).not_to_have_class(
            "alert-event alert-event--new", timeout=60_000
        )
    finally:
        context.close()
