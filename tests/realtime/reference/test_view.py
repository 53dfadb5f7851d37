"""GET /api/v2/realtime/reference/{symbol}: a real daphne fed by the simulator.

The product runs as deployed against "FMP" (the simulator's WebSocket and REST
ports, with a key), so the request crosses real sockets end to end.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.live import SimulatorThread, start_product

KEY = "reference-view-key"
FIELDS = {
    "symbol",
    "name",
    "exchange",
    "asset_class",
    "previous_close",
    "open",
    "day_high",
    "day_low",
    "simulated",
    "trading_day",
}


def get(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def fmp_market() -> Iterator[SimulatorThread]:
    sim = SimulatorThread(rate=5.0, seed=2, any_symbol=False, api_keys={KEY}).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def server(fmp_market: SimulatorThread, migrated_sqlite: str) -> Iterator[str]:
    with start_product(
        "daphne-reference",
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY=KEY,
        FMP_WS_URL=fmp_market.url,
        FMP_REST_URL=fmp_market.sim.rest_url,
    ) as live:
        yield live.url


def test_reference_of_a_known_symbol(server, fmp_market):
    status, body = get(f"{server}/api/v2/realtime/reference/aapl")
    assert status == 200, body
    assert set(body) == FIELDS
    quote = fmp_market.run(lambda: fmp_market.sim.rest_quote("AAPL"))
    assert body["symbol"] == "AAPL" and body["name"] == "Apple Inc."
    assert (body["exchange"], body["asset_class"]) == ("NASDAQ", "stock")
    assert (body["previous_close"], body["open"]) == (
        quote["previousClose"],
        quote["open"],
    )
    assert body["simulated"] is True  # the simulator says so in its answers
    status, body = get(f"{server}/api/v2/realtime/reference/BTCUSD")
    assert (status, body["asset_class"], body["name"]) == (200, "crypto", "Bitcoin USD")


def test_unknown_and_invalid_symbols(server):
    assert get(f"{server}/api/v2/realtime/reference/ZZZZZZ") == (
        404,
        {"detail": "Unknown symbol: ZZZZZZ"},
    )
    status, body = get(f"{server}/api/v2/realtime/reference/A%20A")
    assert status == 400 and "A A" in body["detail"]


def test_the_endpoint_is_in_the_openapi_schema(server):
    status, schema = get(f"{server}/api/schema/?format=json")
    assert status == 200
    operation = schema["paths"]["/api/v2/realtime/reference/{symbol}"]["get"]
    assert operation["operationId"] == "realtime_reference_retrieve"
    assert {"200", "400", "401", "403", "404", "406", "503"} <= set(
        operation["responses"]
    )


@pytest.mark.django_db
def test_503_when_fmps_rest_api_cannot_answer(settings):
    settings.FMP_API_KEY = ""  # and no simulator registered: nowhere to ask
    response = APIClient().get("/api/v2/realtime/reference/AAPL")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "Reference data is unavailable right now; try again later."
    }


@pytest.mark.django_db
def test_same_read_permission_as_the_cache(settings):
    settings.REALTIME_ALLOW_ANONYMOUS = False
    client = APIClient()
    reference = client.get("/api/v2/realtime/reference/AAPL")
    cache = client.get("/api/v2/realtime/cache/AAPL")
    assert reference.status_code == cache.status_code
    assert reference.status_code in (401, 403)
