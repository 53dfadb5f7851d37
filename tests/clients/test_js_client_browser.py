"""The browser client (clients/js/price-stream.js) from another origin, in Chromium
(issue 27).

A page served by a test HTTP server on ``http://127.0.0.2:<port>`` imports the
module from the product's own ``/static/dashboard/price-stream.js`` on
``127.0.0.1`` (an import map names it ``fmpsite-price-stream``, as a package
user writes it): a cross-origin module fetch, which works only because the
static file carries ``Access-Control-Allow-Origin``. Its ``tokenProvider``
buys connection tokens from ``POST /api/v2/realtime/connection-token`` with a
DRF token (cross-origin too: CORS for ``/api/``). The product runs as
production does (DEBUG off, anonymous off, that origin on
``REALTIME_ALLOWED_ORIGINS``), with 10-second connection tokens so lifetimes
play out within a test.

- Live prices arrive.
- Refresh: ``token_expiring`` -> a fresh token -> ``refresh`` -> ``token_refreshed``,
  and the first connection still delivers prices after its first token's ``exp``.
- A refresh the server refuses (the provider's next token is another user's)
  ends in close 4001 at ``exp``; the module fetches a new token and reconnects.
- The server restarts (SIGTERM, a new daphne on the same port): the module
  reconnects with a fresh token, resubscribes with ``recover`` from its last
  (epoch, seq), is told ``not_recovered`` (embedded mode keeps its history in
  memory, so the new process has a new epoch), announces the ``reset`` and
  live prices of the new epoch flow again.
"""

from __future__ import annotations

import functools
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.live import LiveProduct, free_port, staff_token_for, start_product

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent / "js_page"
PAGE_HOST = "127.0.0.2"  # another origin than the product's 127.0.0.1
SYMBOLS = ["AAPL", "MSFT"]
TOKEN_TTL = 10  # seconds: token_expiring comes at half-life, 4001 at exp
WITHIN_MS = 60_000


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def gateway(page_port: int, migrated_sqlite: str) -> Iterator[LiveProduct]:
    with start_product(
        "daphne-jsclient",
        DATABASE_URL=migrated_sqlite,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        # Plain http on loopback: no TLS to redirect to (production sits behind it).
        DJANGO_SECURE_SSL_REDIRECT="false",
        REALTIME_ALLOW_ANONYMOUS="false",
        REALTIME_ALLOWED_ORIGINS=f"http://{PAGE_HOST}:{page_port}",
        REALTIME_CONNECTION_TOKEN_SECRET=secrets.token_urlsafe(48),
        REALTIME_CONNECTION_TOKEN_TTL=str(TOKEN_TTL),
        REALTIME_SIMULATOR_RATE="60",  # built-in simulator: FMP_API_KEY is unset
    ) as live:
        yield live


@pytest.fixture(scope="module")
def drf_keys(gateway: LiveProduct) -> dict[str, str]:
    return {
        name: staff_token_for(gateway.env, f"js-client-{name}")
        for name in ("one", "other")
    }


@pytest.fixture(scope="module")
def site(gateway: LiveProduct, page_port: int) -> Iterator[Path]:
    """app.js beside an index.html whose import map and config name the gateway,
    served on 127.0.0.2."""
    root = Path(tempfile.mkdtemp(prefix="fmpsite-jsclient-"))
    shutil.copy(HERE / "app.js", root / "app.js")
    module = f"{gateway.url}/static/dashboard/price-stream.js"
    (root / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>js client</title>"
        '<script type="importmap">'
        + json.dumps({"imports": {"fmpsite-price-stream": module}})
        + "</script></head><body>"
        '<script type="module" src="app.js"></script></body></html>'
    )
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer((PAGE_HOST, page_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)


class StreamPage:
    """The page, its config, and the frames its sockets sent."""

    def __init__(self, page: Page, site: Path, gateway: LiveProduct) -> None:
        self.page = page
        self.site = site
        self.gateway = gateway
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (socket url, frame)
        self.module_headers: dict[str, str] = {}
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("websocket", self._socket)
        page.on("response", self._response)

    def _socket(self, ws: Any) -> None:
        ws.on(
            "framesent", lambda payload: self.sent.append((ws.url, json.loads(payload)))
        )

    def _response(self, response: Any) -> None:
        if response.url.endswith("/static/dashboard/price-stream.js"):
            self.module_headers = response.all_headers()

    def open(self, page_port: int, keys: list[str]) -> None:
        config = {
            "httpBase": self.gateway.url,
            "wsUrl": self.gateway.ws_url,
            "drfKeys": keys,
            "symbols": SYMBOLS,
        }
        # The config goes in as a JSON script element the page parses.
        html = (self.site / "index.html").read_text()
        name = f"page-{secrets.token_hex(4)}.html"
        (self.site / name).write_text(
            html.replace(
                "</head>",
                '<script type="application/json" id="config">'
                + json.dumps(config)
                + "</script></head>",
            )
        )
        self.page.goto(f"http://{PAGE_HOST}:{page_port}/{name}")

    def record(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.record")

    def wait(self, predicate: str, arg: Any = None) -> None:
        """Until ``predicate(record, arg)`` (JS) is true in the page."""
        try:
            self.page.wait_for_function(
                f"([arg]) => window.record && ({predicate})(window.record, arg)",
                arg=[arg],
                timeout=WITHIN_MS,
            )
        except PlaywrightTimeoutError:
            record = self.page.evaluate("() => window.record || null")
            if record:
                record["prices"] = record["prices"][-10:]
            pytest.fail(
                f"not within {WITHIN_MS} ms: {predicate}\nrecord: {record}\n"
                f"console: {self.console[-20:]}\nserver log:\n{self.gateway.log()}"
            )

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.record()["events"] if e["type"] == type_]

    def wait_live_prices(self, connection: int, after_ms: float = 0) -> None:
        """Until every symbol has a live (not snapshot) price on ``connection``
        received after ``after_ms``."""
        self.wait(
            """(r, [symbols, connection, after]) => symbols.every((s) =>
                r.prices.some((p) => p.symbol === s && !p.snapshot
                    && p.connection === connection && p.at > after))""",
            [SYMBOLS, connection, after_ms],
        )


@pytest.fixture
def stream_page(
    browser: Browser, site: Path, gateway: LiveProduct
) -> Iterator[StreamPage]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WITHIN_MS)
    yield StreamPage(page, site, gateway)
    page.evaluate("() => window.stream && window.stream.stop()")
    context.close()


def test_module_from_the_products_url_streams_live_prices_to_another_origin(
    stream_page: StreamPage, page_port: int, drf_keys: dict[str, str]
) -> None:
    stream_page.open(page_port, [drf_keys["one"]])
    stream_page.wait_live_prices(connection=1)

    record = stream_page.record()
    assert record["moduleUrl"] == (
        f"{stream_page.gateway.url}/static/dashboard/price-stream.js"
    )
    assert stream_page.module_headers.get("access-control-allow-origin") in (
        "*",
        f"http://{PAGE_HOST}:{page_port}",
    )
    # The connection was opened with the provider's token in ?token=.
    first_url = stream_page.sent[0][0]
    assert first_url.endswith(f"?token={record['tokens'][0]['token']}")
    assert stream_page.sent[0][1] == {"action": "subscribe", "symbols": SYMBOLS}
    assert not stream_page.events("servererror")


def test_token_expiring_is_answered_with_refresh_and_the_connection_outlives_it(
    stream_page: StreamPage, page_port: int, drf_keys: dict[str, str]
) -> None:
    stream_page.open(page_port, [drf_keys["one"]])
    stream_page.wait("(r) => r.tokens.length >= 1")
    first_exp = stream_page.record()["tokens"][0]["expiresAt"]

    # Live prices on the first connection a second past its first token's exp.
    stream_page.wait_live_prices(connection=1, after_ms=first_exp + 1000)

    record = stream_page.record()
    assert record["connections"] == 1
    assert stream_page.events("tokenexpiring"), "no token_expiring reached the module"
    assert stream_page.events("tokenrefreshed"), "no token_refreshed reached the module"
    refreshes = [frame for _, frame in stream_page.sent if frame["action"] == "refresh"]
    assert refreshes[0] == {"action": "refresh", "token": record["tokens"][1]["token"]}
    codes = [e["detail"].get("code") for e in stream_page.events("state")]
    assert 4001 not in codes
    assert not stream_page.events("servererror")


def test_a_refused_refresh_ends_in_4001_and_a_reconnect_with_a_fresh_token(
    stream_page: StreamPage, page_port: int, drf_keys: dict[str, str]
) -> None:
    # The first token is user one's, every later one user other's: the refresh
    # is refused (another sub), the connection ends at exp with 4001, and the
    # reconnect opens with a fresh token of the other user.
    stream_page.open(page_port, [drf_keys["one"], drf_keys["other"]])
    stream_page.wait_live_prices(connection=1)
    stream_page.wait_live_prices(connection=2)

    refused = stream_page.events("servererror")
    assert refused and refused[0]["detail"]["code"] == "token_refused"
    reconnecting = [
        e for e in stream_page.events("state") if e["detail"]["state"] == "reconnecting"
    ]
    assert reconnecting[0]["detail"]["code"] == 4001
    record = stream_page.record()
    second_socket = [
        url for url, frame in stream_page.sent if url != stream_page.sent[0][0]
    ]
    assert second_socket, "no frame went out on a second socket"
    # The reconnect used a token fetched after the 4001 close.
    closed_at = reconnecting[0]["at"]
    fresh = [t["token"] for t in record["tokens"] if t["at"] >= closed_at]
    assert fresh and second_socket[0].endswith(f"?token={fresh[0]}")


def test_after_a_server_restart_it_reconnects_resubscribes_with_recover_and_resets(
    stream_page: StreamPage,
    page_port: int,
    drf_keys: dict[str, str],
    gateway: LiveProduct,
) -> None:
    stream_page.open(page_port, [drf_keys["one"]])
    stream_page.wait_live_prices(connection=1)
    before = stream_page.record()
    old_epoch = next(p["epoch"] for p in before["prices"] if p["epoch"])
    seen = {p["symbol"]: p["seq"] for p in before["prices"] if p["seq"] is not None}

    assert gateway.proc is not None
    gateway.proc.stop()  # SIGTERM: daphne closes its sockets with 1001
    gateway.start().wait_ready()

    stream_page.wait_live_prices(connection=2)
    record = stream_page.record()
    first_url = stream_page.sent[0][0]
    resubscribes = [
        frame
        for url, frame in stream_page.sent
        if url != first_url and frame["action"] == "subscribe"
    ]
    assert resubscribes, "no subscribe on the new socket"
    recover = resubscribes[0]["recover"]
    assert set(recover) == set(SYMBOLS)
    for symbol in SYMBOLS:
        assert recover[symbol]["epoch"] == old_epoch
        assert recover[symbol]["seq"] >= seen[symbol]

    # A new process, a new epoch: the server cannot replay; the module says so.
    resets = stream_page.events("reset")
    assert {e["detail"]["symbol"] for e in resets} == set(SYMBOLS)
    assert {e["detail"]["reason"] for e in resets} == {"not_recovered"}
    new_epochs = {e["detail"]["epoch"] for e in resets}
    assert len(new_epochs) == 1 and None not in new_epochs
    assert old_epoch not in new_epochs
    # The symbols' positions are in the new epoch (live prices on connection 2
    # arrived: wait_live_prices above).
    for symbol in SYMBOLS:
        position = stream_page.page.evaluate("(s) => window.stream.position(s)", symbol)
        assert position["epoch"] in new_epochs and position["seq"] is not None
    # The reconnect bought a fresh token (the first may have expired meanwhile).
    assert len(record["tokens"]) >= 2
