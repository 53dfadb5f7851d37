"""Shared pieces of the dashboard's browser tests: the fake
WebSocket server played through Playwright's routing, and small page helpers.
The fixtures that use them are in tests/dashboard/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, WebSocketRoute, expect

WS_GLOB = "**/api/v2/realtime/ws/prices"
DEFAULT_SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]
PASSWORD = "pw-browser-12345"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


class FakeStream:
    """The server side of PROTOCOL.md, played through Playwright's WebSocket routing.

    Keeps every connection the page opened and every message it sent on each.
    """

    def __init__(self) -> None:
        self.connections: list[WebSocketRoute] = []
        self.received: list[list[dict[str, Any]]] = []
        self.subscribed: list[list[str]] = []
        self.answer_pings = True
        self.accept = True
        # Extra fields of each `subscribe` acknowledgement, from the request
        # (e.g. ``epoch``, ``recovered``): the recovery tests play the server.
        self.ack_fields: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def route(self, ws: WebSocketRoute) -> None:
        index = len(self.connections)
        self.connections.append(ws)
        self.received.append([])
        self.subscribed.append([])
        if not self.accept:
            ws.close(code=1011, reason="unavailable")
            return
        ws.on_message(lambda raw: self._on_message(index, raw))
        self._send(index, {"type": "connected", "message": "Connected"})

    def _send(self, index: int, message: dict[str, Any]) -> None:
        self.connections[index].send(json.dumps(message))

    def _on_message(self, index: int, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.received[index].append(message)
        current = self.subscribed[index]
        action = message.get("action")
        if action in {"subscribe", "unsubscribe"}:
            symbols = message["symbols"]
            if action == "subscribe":
                changed = [s for s in symbols if s not in current]
                current.extend(changed)
            else:
                changed = [s for s in symbols if s in current]
                current[:] = [s for s in current if s not in changed]
            ack = {
                "type": "subscription",
                "action": f"{action}d",
                "symbols": changed,
                "subscribed_total": len(current),
            }
            if action == "subscribe" and self.ack_fields is not None:
                ack.update(self.ack_fields(message))
            self._send(index, ack)
        elif action == "ping" and self.answer_pings:
            self._send(index, {"type": "pong"})

    def actions(self, index: int, action: str) -> list[dict[str, Any]]:
        return [m for m in self.received[index] if m.get("action") == action]

    def price(
        self,
        symbol: str,
        last_price: float | None,
        *,
        data_type: str = "T",
        snapshot: bool = False,
        index: int = -1,
        **extra: Any,
    ) -> None:
        message: dict[str, Any] = {
            "type": "price_update",
            "symbol": symbol,
            "timestamp": 1_699_564_800_000,
            "data_type": data_type,
            "last_price": last_price,
            "last_size": 100,
            "ask_price": 101.5,
            "ask_size": 5000,
            "bid_price": 99.5,
            "bid_size": 3000,
            "cached_at": "2023-11-09T21:20:00.000+00:00",
        }
        if snapshot:
            message["snapshot"] = True
        message.update(extra)
        self._send(index if index >= 0 else len(self.connections) - 1, message)

    def error(self, text: str, **extra: Any) -> None:
        message = {"type": "error", "message": text, **extra}
        self._send(len(self.connections) - 1, message)


REFERENCE_GLOB = "**/api/v2/realtime/reference/*"


def serve_references(page: Page, references: dict[str, dict[str, Any]]) -> None:
    """Answer the reference endpoint (H7's contract) from ``references``; 404 for
    any other symbol, like the real endpoint for an unknown one."""

    def handle(route: Any) -> None:
        symbol = route.request.url.rsplit("/", 1)[1]
        if symbol in references:
            body = {"symbol": symbol, "simulated": False, **references[symbol]}
            route.fulfill(status=200, json=body)
        else:
            route.fulfill(status=404, json={"detail": "Unknown symbol"})

    page.route(REFERENCE_GLOB, handle)


def wait_until(page: Page, predicate: Any, message: str, timeout: float = 60) -> None:
    """Poll a Python condition while letting Playwright deliver events."""
    for _ in range(int(timeout * 20)):
        if predicate():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")


def card(page: Page, symbol: str):  # noqa: ANN201 - a Playwright Locator
    return page.locator(f'.price-card[data-symbol="{symbol}"]')


def record_states(page: Page) -> None:
    page.evaluate(
        """() => {
          window.__states = [];
          window.fmpsiteDashboard.stream.addEventListener(
            'state', (e) => window.__states.push(e.detail.state));
        }"""
    )
