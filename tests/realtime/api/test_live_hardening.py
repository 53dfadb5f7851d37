"""Issue 12 items 4 and 6 against the real product under daphne (embedded feed,
simulator): a WebSocket handshake to an unknown path is a clean 403 with one log
line (no 500, no traceback); an oversized body is a JSON 413 and an unknown API
path a JSON 404 as daphne serves them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.live import wait_until

UNKNOWN_WS_PATHS = [
    "/api/v2/realtime/ws/prices/",
    "/api/v2/realtime/ws/price",
    "/ws",
    "/",
    "/api/v2/realtime/ws/prices/%E2%82%AC",
]


def _log_text(product_server: dict[str, Any]) -> str:
    return product_server["process"].log_path.read_text(errors="replace")


@pytest.mark.parametrize("path", UNKNOWN_WS_PATHS)
async def test_websocket_to_an_unknown_path_is_refused_cleanly(product_server, path):
    before = len(_log_text(product_server))
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"ws://127.0.0.1:{product_server['port']}{path}")
    assert refused.value.response.status_code == 403

    def logged() -> bool:
        return "event=ws_unknown_path" in _log_text(product_server)[before:]

    wait_until(logged, 60, "the unknown-path log line")
    new = _log_text(product_server)[before:]
    lines = [line for line in new.splitlines() if "event=ws_unknown_path" in line]
    assert len(lines) == 1, new
    assert "level=INFO" in lines[0]
    assert "No route found" not in new
    assert "Traceback" not in new


async def test_the_price_stream_path_still_connects(product_server):
    url = f"ws://127.0.0.1:{product_server['port']}/api/v2/realtime/ws/prices"
    async with websockets.connect(url) as ws:
        greeting = json.loads(await ws.recv())
        assert greeting["type"] == "connected"


def _request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_10_mb_body_is_a_json_413(product_server, staff_token):
    url = f"{product_server['url']}/api/v2/realtime/subscribe"
    body = b"[" + b'"AAPL",' * (10 * 1024 * 1024 // 7) + b'"MSFT"]'
    # Without credentials the body is refused before it is parsed.
    status, headers, content = _request(url, body, {"Content-Type": "application/json"})
    assert status == 401
    assert headers["Content-Type"] == "application/json"

    before = len(_log_text(product_server))
    status, headers, content = _request(
        url,
        body,
        {"Content-Type": "application/json", "Authorization": f"Token {staff_token}"},
    )
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert "Request body too large" in json.loads(content)["detail"]
    wait_until(
        lambda: "event=api_body_too_large" in _log_text(product_server)[before:],
        60,
        "the body-too-large log line",
    )
    assert "Traceback" not in _log_text(product_server)[before:]


@pytest.mark.parametrize(
    "path", ["/api/v2/realtime/nope", "/api/v2/realtime/health/", "/api/nope"]
)
def test_unknown_api_paths_are_json_404_under_daphne(product_server, path):
    status, headers, content = _request(product_server["url"] + path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert path in json.loads(content)["detail"]
