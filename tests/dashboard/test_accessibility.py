"""axe-core (from the ``axe-playwright-python`` package, which ships axe.min.js)
finds no violation on the product's pages in every view people use: cards, table,
list management, the undo toast, stale prices and an ended session, each in light
and dark mode, on a desktop and on a 390x844 phone. The guide's /demo/ page is
checked too (its colour contrast was fixed).

Animations are off (``reduced_motion``) so that axe never samples a colour in the
middle of the update flash.
"""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.browser import (
    PASSWORD,
    WS_GLOB,
    FakeStream,
    card,
    log_in,
    serve_references,
    wait_until,
)

pytestmark = pytest.mark.browser

AXE = Axe()
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
REFERENCES = {
    "AAPL": {"name": "Apple Inc.", "previous_close": 100.0},
    "MSFT": {"name": "Microsoft Corporation", "previous_close": 400.0},
}


def assert_no_violations(page: Page, what: str) -> None:
    results = AXE.run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in violations
    ]
    assert not violations, f"axe found violations on {what}:\n" + "\n".join(details)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_product_pages_have_no_axe_violations(
    django_server: str,
    browser: Browser,
    browser_user: str,
    scheme: str,
    viewport: dict[str, int],
) -> None:
    context = browser.new_context(
        viewport=viewport, color_scheme=scheme, reduced_motion="reduce"
    )
    context.set_default_timeout(60_000)
    where = f"{scheme} {viewport['width']}x{viewport['height']}"
    try:
        page = context.new_page()
        fake = FakeStream()
        page.route_web_socket(WS_GLOB, fake.route)
        serve_references(page, REFERENCES)

        page.goto(f"{django_server}/accounts/login/")
        assert_no_violations(page, f"the login page ({where})")

        log_in(page, django_server, browser_user, PASSWORD)
        expect(page.locator("#connection-status")).to_have_attribute(
            "data-connection-state", "connected"
        )
        wait_until(page, lambda: fake.actions(0, "subscribe"), "the first subscribe")
        fake.price("AAPL", 101.25)  # up since the previous close
        fake.price("MSFT", 396.0)  # down
        fake.price("GOOGL", 150.0)  # unknown change
        expect(card(page, "MSFT").locator(".card-price")).to_have_class(
            "card-price down"
        )
        assert_no_violations(page, f"the dashboard's cards ({where})")

        page.get_by_text("Manage lists").click()
        assert_no_violations(page, f"the list management ({where})")

        page.get_by_role("button", name="Table").click()
        expect(page.locator("#price-table")).to_be_visible()
        page.get_by_role("button", name="% Change").click()
        assert_no_violations(page, f"the table view ({where})")

        page.locator('#price-table-body tr[data-symbol="TSLA"]').get_by_role(
            "button", name="Remove TSLA"
        ).click()
        expect(page.locator("#undo-toast")).to_be_visible()
        assert_no_violations(page, f"the undo toast ({where})")

        page.get_by_role("button", name="Cards").click()
        fake.error("Unknown symbol: ZZZZ", code="unknown_symbol")
        expect(page.locator("#error-banner")).to_be_visible()
        fake.accept = False
        fake.connections[0].close(code=1006)
        expect(page.locator("#dashboard")).to_have_attribute("data-stale", "true")
        assert_no_violations(page, f"stale prices and an error ({where})")

        User.objects.filter(username=browser_user).update(password="")
        page.evaluate("window.fmpsiteDashboard.checkSession()")
        expect(page.locator("#session-banner")).to_be_visible()
        assert_no_violations(page, f"an ended session ({where})")
    finally:
        context.close()


def test_guide_demo_page_has_no_axe_violations(
    django_server: str, browser: Browser
) -> None:
    context = browser.new_context(viewport=DESKTOP, reduced_motion="reduce")
    try:
        page = context.new_page()
        fake = FakeStream()
        page.route_web_socket(WS_GLOB, fake.route)
        page.goto(f"{django_server}/demo/")
        expect(page.locator("#status")).to_have_text("✅ Connected")
        wait_until(page, lambda: len(fake.actions(0, "subscribe")) == 2, "subscribes")
        fake.price("AAPL", 189.45)
        fake.price("AAPL", 190.0)  # an "up" price: the colour axe flagged
        fake.price("MSFT", 410.0)
        fake.price("MSFT", 409.0)  # a "down" one
        expect(page.locator("#card-MSFT .price")).to_have_class("price down")
        assert_no_violations(page, "/demo/")
        fake.connections[0].close(code=1006)
        expect(page.locator("#status")).to_have_text("❌ Disconnected")
        assert_no_violations(page, "/demo/ disconnected")
    finally:
        context.close()
