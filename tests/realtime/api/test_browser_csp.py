"""Issue 12 item 10 in Debian's Chromium against the real product (daphne,
embedded feed, simulator), with every request to another origin aborted (the
network cut): /api/docs/ renders its operations from the product's own files,
and the dashboard, /demo/, the admin and the browsable API run under the
Content-Security-Policy with no violation and no inline script or style."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from fmpsite.csp import POLICY

pytestmark = pytest.mark.browser

# Every inline <script> that would execute, every <style>, every style attribute.
INLINE_PROBE = """() => ({
  scripts: [...document.querySelectorAll('script:not([src])')]
    .filter(s => !s.type || /javascript|module/.test(s.type)).length,
  styles: document.querySelectorAll('style').length,
  styleAttrs: [...document.querySelectorAll('[style]')]
    .filter(e => !e.closest('#swagger-ui')).length,
})"""


class Watched:
    """A page whose console errors, page errors and off-origin requests are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.offsite: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e]


@pytest.fixture
def watched(browser: Browser, product_url: str) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watched = Watched(page)
    own = urlsplit(product_url).netloc

    def cut(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own:
            watched.offsite.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", cut)
    yield watched
    context.close()


def test_api_docs_render_offline_under_the_csp(watched: Watched, product_url: str):
    page = watched.page
    response = page.goto(f"{product_url}/api/docs/")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == POLICY
    expect(page.locator(".opblock").first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for path in ("/health", "/status", "/subscribe", "/unsubscribe", "/cache"):
        assert any(p.replace("\u200b", "").endswith(path) for p in paths), paths
    assert page.evaluate(INLINE_PROBE) == {"scripts": 0, "styles": 0, "styleAttrs": 0}
    assert watched.offsite == []
    assert watched.csp_violations() == []
    assert not any("SwaggerUIBundle" in e for e in watched.errors), watched.errors


def test_dashboard_runs_its_scripts_under_the_csp(
    watched: Watched, product_url: str, product_user: tuple[str, str]
):
    page = watched.page
    username, password = product_user
    page.goto(f"{product_url}/accounts/login/")
    assert watched.csp_violations() == []
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form[action*=login] [type=submit]").click()
    page.wait_for_url(f"{product_url}/")
    # Only the dashboard's own script moves the status off "connecting".
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-connection-state", "connected"
    )
    response = page.request.get(f"{product_url}/")
    assert response.headers["content-security-policy"] == POLICY
    assert page.evaluate(INLINE_PROBE) == {"scripts": 0, "styles": 0, "styleAttrs": 0}
    assert watched.offsite == []
    assert watched.csp_violations() == []


def test_demo_runs_its_scripts_under_the_csp(watched: Watched, product_url: str):
    page = watched.page
    response = page.goto(f"{product_url}/demo/")
    assert (
        response is not None and response.headers["content-security-policy"] == POLICY
    )
    # The guide's page script marks the status connected once its socket opens.
    expect(page.locator("#status")).to_have_class("status connected")
    assert page.evaluate(INLINE_PROBE) == {"scripts": 0, "styles": 0, "styleAttrs": 0}
    assert watched.offsite == []
    assert watched.csp_violations() == []


@pytest.mark.parametrize(
    "path", ["/admin/login/", "/api/v2/realtime/status", "/api/", "/api/schema/"]
)
def test_admin_and_browsable_api_pages_have_no_csp_violation(
    watched: Watched, product_url: str, path: str
):
    page = watched.page
    response = page.goto(f"{product_url}{path}")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == POLICY
    page.wait_for_load_state("load")
    assert watched.offsite == []
    assert watched.csp_violations() == []
