"""GET /api/v2/realtime/history/{symbol}: shapes, paging, errors, auth (issue 15)."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client

from realtime.backends import backends
from realtime.events import Update
from tests.factories import make_token, make_user

pytestmark = pytest.mark.django_db

API = "/api/v2/realtime"


def publish(symbol: str, count: int) -> list[dict]:
    """Record ``count`` updates of ``symbol`` the way the feed does."""
    history = backends().history
    sent = []
    for _ in range(count):
        seq = history.next_seq(symbol)
        update = {"type": "price_update", "symbol": symbol, "last_price": 1.0 + seq}
        update["seq"] = seq
        text = orjson.dumps(update).decode()
        history.record(Update(symbol, seq, history.epoch, text, 0))
        sent.append(update)
    return sent


def test_history_returns_the_updates_oldest_first_with_epoch(client: Client):
    sent = publish("AAPL", 5)
    response = client.get(f"{API}/history/aapl")
    assert response.status_code == 200
    assert response.json() == {
        "symbol": "AAPL",
        "epoch": backends().history.epoch,
        "last_seq": 5,
        "updates": sent,
    }


def test_history_limit_takes_the_newest_and_after_seq_pages_forward(client: Client):
    publish("EUR/USD", 12)
    newest = client.get(f"{API}/history/EUR/USD?limit=3").json()
    assert [u["seq"] for u in newest["updates"]] == [10, 11, 12]
    page = client.get(f"{API}/history/EUR/USD?after_seq=4&limit=3").json()
    assert [u["seq"] for u in page["updates"]] == [5, 6, 7]
    rest = client.get(f"{API}/history/EUR/USD?after_seq=7").json()
    assert [u["seq"] for u in rest["updates"]] == [8, 9, 10, 11, 12]
    done = client.get(f"{API}/history/EUR/USD?after_seq=12").json()
    assert done["updates"] == [] and done["last_seq"] == 12


def test_history_default_limit_is_300(client: Client):
    publish("MSFT", 310)
    updates = client.get(f"{API}/history/MSFT").json()["updates"]
    assert len(updates) == 300 and updates[0]["seq"] == 11


def test_history_of_a_symbol_without_data_is_404_json(client: Client):
    response = client.get(f"{API}/history/NVDA")
    assert response.status_code == 404
    assert response.json() == {"detail": "No history for NVDA"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "Invalid limit '0': expected an integer from 1 to 1000"),
        ("limit=1001", "Invalid limit '1001': expected an integer from 1 to 1000"),
        ("limit=ten", "Invalid limit 'ten': expected an integer from 1 to 1000"),
        ("after_seq=-1", "Invalid after_seq '-1': expected an integer from 0 to"),
        ("after_seq=1.5", "Invalid after_seq '1.5': expected an integer from 0 to"),
    ],
)
def test_history_bad_parameters_are_400_naming_the_value(client, query, detail):
    publish("AAPL", 1)
    response = client.get(f"{API}/history/AAPL?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_history_invalid_symbol_is_400(client: Client):
    response = client.get(f"{API}/history/A%20A")
    assert response.status_code == 400
    assert "Invalid symbol" in response.json()["detail"]


def test_history_needs_the_same_credentials_as_other_reads(client, settings):
    publish("AAPL", 2)
    settings.REALTIME_ALLOW_ANONYMOUS = False
    assert client.get(f"{API}/history/AAPL").status_code == 401
    user = make_user("reader")
    headers = {"Authorization": f"Token {make_token(user)}"}
    response = client.get(f"{API}/history/AAPL", headers=headers)
    assert response.status_code == 200 and len(response.json()["updates"]) == 2


def test_history_is_in_the_openapi_schema(client: Client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v2/realtime/history/{symbol}"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"symbol", "limit", "after_seq"} <= names
    assert {"200", "400", "404"} <= set(operation["responses"])
