"""The guide's React component, built as published, from another origin (issue 18).

``guide/RealTimeChart.tsx`` and ``guide/RealTimeChart.css`` are the guide's
"Example 2" byte for byte (guide/README.md). esbuild (pinned in package.json, its
lockfile beside it; ``npm ci`` runs here when node_modules is missing or stale)
bundles it with ``process.env.REACT_APP_WS_URL`` defined at build time, as
create-react-app would, to the stream's URL with a connection token minted here
in its query string. A tiny HTTP server serves the page from ``127.0.0.2`` (a
different origin from the gateway on ``127.0.0.1``), and Debian's chromium runs
it against a production-configured daphne: DEBUG off, a real secret key,
anonymous access off, ``REALTIME_ALLOWED_ORIGINS`` naming that origin, connection
tokens on.

- From the allowed origin: it connects, its five symbols update, and the add and
  remove controls send the right frames and show "Subscribed (6)" then (5) (the
  ``subscriptions`` message after each ack).
- The same page from ``127.0.0.3`` (not on the list) is refused at the handshake.
- A page whose token has expired is refused at the handshake.

Each refusal is checked in the server's log too: one line with reason and origin.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.frontend.npm import installed_bin, run
from tests.live import free_port, start_product, wait_until

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
WS_PATH = "/api/v2/realtime/ws/prices"
DEFAULT_SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]  # the component's own
SECRET = secrets.token_urlsafe(48)
PAGE_HOST = "127.0.0.2"  # on REALTIME_ALLOWED_ORIGINS
OTHER_HOST = "127.0.0.3"  # not on it
WITHIN = 60.0
WITHIN_MS = int(WITHIN * 1000)


def _mint(sub: str, *, exp_in: int) -> str:
    """What a frontend's backend does: three lines of PyJWT (docs/frontends.md)."""
    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "iat": now, "exp": now + exp_in}, SECRET, algorithm="HS256"
    )


# --- Build ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def esbuild() -> Path:
    """tests/frontend/node_modules from the lockfile (``npm ci`` when missing)."""
    return installed_bin("esbuild")


def _build(esbuild: Path, out: Path, ws_url: str) -> None:
    """Bundle the page with REACT_APP_WS_URL fixed at build time, as CRA does."""
    run(
        [
            str(esbuild),
            "src/index.tsx",
            "--bundle",
            "--minify",
            f"--outdir={out}",
            "--define:process.env.NODE_ENV=" + json.dumps("production"),
            "--define:process.env.REACT_APP_WS_URL=" + json.dumps(ws_url),
            "--log-level=warning",
        ],
        "esbuild",
        timeout=120,
    )
    (out / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>RealTimeChart</title><link rel='stylesheet' href='index.css'>"
        "</head><body><div id='root'></div>"
        "<script src='index.js'></script></body></html>"
    )


# --- Servers --------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def gateway(page_port: int, migrated_sqlite: str) -> Iterator[dict[str, Any]]:
    """daphne as production runs it, allowing the page's origin only."""
    with start_product(
        "daphne-react",
        timeout=WITHIN,
        DATABASE_URL=migrated_sqlite,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        REALTIME_ALLOW_ANONYMOUS="false",
        REALTIME_ALLOWED_ORIGINS=f"http://{PAGE_HOST}:{page_port}",
        REALTIME_CONNECTION_TOKEN_SECRET=SECRET,
        REALTIME_SIMULATOR_RATE="60",  # built-in simulator: FMP_API_KEY is unset
    ) as live:
        yield {"port": live.port, "process": live.proc}


@pytest.fixture(scope="module")
def site(esbuild: Path, gateway: dict[str, Any], page_port: int) -> Iterator[Path]:
    """The built pages, served on the page port of 127.0.0.2 and of 127.0.0.3."""
    root = Path(tempfile.mkdtemp(prefix="fmpsite-react-"))
    ws = f"ws://127.0.0.1:{gateway['port']}{WS_PATH}"
    _build(esbuild, root / "valid", f"{ws}?token={_mint('react-1', exp_in=3600)}")
    _build(esbuild, root / "expired", f"{ws}?token={_mint('react-2', exp_in=-60)}")
    handler = functools.partial(_QuietHandler, directory=str(root))
    servers = [
        ThreadingHTTPServer((host, page_port), handler)
        for host in (PAGE_HOST, OTHER_HOST)
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WITHIN_MS)
    yield page
    context.close()


def _wait_log(gateway: dict[str, Any], text: str) -> None:
    log = Path(gateway["process"].log_path)
    wait_until(lambda: text in log.read_text(errors="replace"), WITHIN, repr(text))


# --- Tests ----------------------------------------------------------------------------


def _card_states(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.price-card')]
            .map(c => [c.querySelector('.symbol').textContent,
                       c.querySelector('.card-price').textContent + ' ' +
                       c.querySelector('.card-footer').textContent]))"""
    )


def test_component_connects_updates_and_tracks_subscriptions(
    page: Page, site: Path, page_port: int
) -> None:
    sent: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))),
    )
    page.goto(f"http://{PAGE_HOST}:{page_port}/valid/index.html")

    expect(page.locator(".status.connected")).to_be_visible()
    cards = page.locator(".price-card .symbol")
    expect(cards).to_have_count(5)
    assert sorted(cards.all_text_contents()) == sorted(DEFAULT_SYMBOLS)
    expect(page.locator(".subscription-info")).to_contain_text("Subscribed (5):")

    # Every one of the five symbols moves (price or time of its last update).
    first = _card_states(page)
    wait_until(
        lambda: all(_card_states(page)[s] != first[s] for s in DEFAULT_SYMBOLS),
        WITHIN,
        "all five cards to update",
        interval=0.2,
    )
    text = page.inner_text("body")
    for bad in ("NaN", "null", "undefined", "Invalid Date"):
        assert bad not in text, f"{bad!r} shown:\n{text}"
    expect(page.locator(".error-banner")).to_have_count(0)

    page.fill(".controls input", "nvda")
    page.click("text=Add Symbol")
    expect(page.locator(".subscription-info")).to_contain_text("Subscribed (6):")
    expect(page.locator(".subscription-info span")).to_contain_text("NVDA")
    expect(page.locator(".price-card .symbol", has_text="NVDA")).to_have_count(1)

    page.locator(".price-card", has=page.locator(".symbol", has_text="NVDA")).locator(
        ".remove-btn"
    ).click()
    expect(page.locator(".subscription-info")).to_contain_text("Subscribed (5):")
    expect(page.locator(".subscription-info span")).not_to_contain_text("NVDA")

    assert sent == [
        {"action": "subscribe", "symbols": DEFAULT_SYMBOLS},
        {"action": "subscribe", "symbols": ["NVDA"]},
        {"action": "unsubscribe", "symbols": ["NVDA"]},
    ]


def test_same_page_from_an_origin_not_listed_is_refused(
    page: Page, site: Path, page_port: int, gateway: dict[str, Any]
) -> None:
    page.goto(f"http://{OTHER_HOST}:{page_port}/valid/index.html")
    expect(page.locator(".error-banner")).to_contain_text("WebSocket connection error")
    expect(page.locator(".status.disconnected")).to_be_visible()
    expect(page.locator(".price-card")).to_have_count(0)
    _wait_log(
        gateway,
        "event=ws_refused reason=origin_not_allowed "
        f"origin=http://{OTHER_HOST}:{page_port}",
    )


def test_expired_token_is_refused(
    page: Page, site: Path, page_port: int, gateway: dict[str, Any]
) -> None:
    page.goto(f"http://{PAGE_HOST}:{page_port}/expired/index.html")
    expect(page.locator(".error-banner")).to_contain_text("WebSocket connection error")
    expect(page.locator(".status.disconnected")).to_be_visible()
    expect(page.locator(".price-card")).to_have_count(0)
    _wait_log(
        gateway,
        f"event=ws_refused reason=token_expired origin=http://{PAGE_HOST}:{page_port}",
    )


def test_guide_copy_is_verbatim() -> None:
    """Guard against edits: the copy must stay the guide's text (README.md)."""
    tsx = (HERE / "guide" / "RealTimeChart.tsx").read_text(encoding="utf-8")
    assert "process.env.REACT_APP_WS_URL ||" in tsx
    assert "case 'subscriptions':" in tsx
    assert tsx.rstrip().endswith("export default RealTimeChart;")
    if "FMPSITE_GUIDE" in os.environ:  # optional cross-check against the guide
        guide = Path(os.environ["FMPSITE_GUIDE"]).read_text(encoding="utf-8")
        assert tsx in guide
        assert (HERE / "guide" / "RealTimeChart.css").read_text(
            encoding="utf-8"
        ) in guide
