"""The guide's section "2. 수동 테스트 (cURL)", run with the real ``curl`` against the
running product (daphne, embedded feed, simulator).

The guide's subscribe command carries no credentials; pins need a staff user
(issue 4, docs/api.md), so unchanged it gets a JSON 401 naming the problem, and
with a staff token added it gets the documented shape.
"""

from __future__ import annotations

import json
import subprocess


def curl(port: int, *args: str) -> tuple[int, dict]:
    """Run curl exactly as the guide does, on the test server's port."""
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--write-out",
            "\n%{http_code}",
            *[a.replace("localhost:8000", f"127.0.0.1:{port}") for a in args],
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, status = result.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_guide_curl_commands_get_the_documented_shapes(product_server, staff_token):
    port = product_server["port"]
    url = "http://localhost:8000/api/v2/realtime"

    status, health = curl(port, f"{url}/health")
    assert status == 200
    assert {"status", "is_running", "api_configured"} <= health.keys()
    assert health["status"] == "connected" and health["is_running"] is True

    status, body = curl(port, f"{url}/status")
    assert status == 200
    assert {"timestamp", "connection_status", "cached_data"} <= body.keys()
    assert {"is_connected", "is_running", "subscribed_symbols", "total_clients"} <= (
        body["connection_status"].keys()
    )
    assert {"count", "symbols"} <= body["cached_data"].keys()

    subscribe = [
        "-X",
        "POST",
        f"{url}/subscribe",
        "-H",
        "Content-Type: application/json",
        "-d",
        '["AAPL", "MSFT"]',
    ]
    status, refused = curl(port, *subscribe)
    assert status == 401 and refused["detail"]
    status, pinned = curl(port, *subscribe, "-H", f"Authorization: Token {staff_token}")
    assert status == 200, pinned
    assert pinned["status"] == "success"
    assert pinned["symbols"] == ["AAPL", "MSFT"]

    status, cache = curl(port, f"{url}/cache")
    assert status == 200
    assert {"total", "returned", "limit", "data"} <= cache.keys()
    for symbol, entry in cache["data"].items():
        assert entry["symbol"] == symbol
        assert {"timestamp", "type", "last_price", "cached_at"} <= entry.keys()

    # Leave the shared server as we found it.
    status, _ = curl(
        port,
        "-X",
        "POST",
        f"{url}/unsubscribe",
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Token {staff_token}",
        "-d",
        '["AAPL", "MSFT"]',
    )
    assert status == 200
