"""OpenAPI schema and docs, /metrics, and fuzzing of the REST inputs: every answer
is one of the status codes the schema documents for the operation, never a 500."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import include, path
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.models import PinnedSubscription
from tests.factories import make_token, make_user, publish_status, seed_price

# Until fmpsite/urls.py includes fmpsite.api_urls, this module routes it itself.
urlpatterns = [path("", include("fmpsite.urls")), path("", include("fmpsite.api_urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

API = "/api/v2/realtime"


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


# --- schema and docs ------------------------------------------------------------------


def test_schema_is_a_valid_openapi_3_document(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_schema_generation_has_no_warnings(tmp_path):
    """``manage.py spectacular --validate --fail-on-warn``, as CI would run it."""
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--urlconf",
        __name__,
        "--file",
        str(tmp_path / "schema.yaml"),
    )


def test_schema_lists_every_endpoint_with_examples(schema):
    operations = {
        ("get", "health"),
        ("get", "status"),
        ("post", "subscribe"),
        ("post", "unsubscribe"),
        ("get", "cache"),
        ("get", "cache/{symbol}"),
    }
    for method, name in operations:
        operation = schema["paths"][f"{API}/{name}"][method]
        ok = operation["responses"]["200"]["content"]["application/json"]
        assert ok.get("examples"), f"{method} {name} has no response example"
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]
            assert body.get("examples"), f"{name} has no request example"


def test_documented_examples_match_the_protocol(schema):
    op = schema["paths"][f"{API}/subscribe"]["post"]
    example = op["responses"]["200"]["content"]["application/json"]["examples"]
    (value,) = [e["value"] for e in example.values()]
    assert value["message"] == "Subscribed to 3 symbols"
    health = schema["paths"][f"{API}/health"]["get"]["responses"]
    assert {"200", "503"} <= health.keys()


def test_swagger_ui_renders(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    script = client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200
    assert b"/api/schema/" in script.content


def test_schema_json_format(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert json.loads(response.content)["info"]["version"] == "2.0.0"


# --- metrics and the guide's root /health ---------------------------------------------


def test_metrics_in_prometheus_text_format(client):
    publish_status(subscribed_symbols=["AAPL", "MSFT", "TSLA"], total_clients=4)
    seed_price("AAPL")
    seed_price("MSFT")
    PinnedSubscription.objects.create(symbol="NFLX")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for line in [
        "fmpsite_feed_up 1.0",
        "fmpsite_feed_subscribed_symbols 3.0",
        "fmpsite_feed_clients 4.0",
        "fmpsite_feed_reconnect_attempts 0.0",
        "fmpsite_feed_callbacks_registered 1.0",
        "fmpsite_feed_ticks_received_total 42.0",
        "fmpsite_pinned_symbols 1.0",
        "fmpsite_cache_symbols 2.0",
        'fmpsite_upstream_state{state="connected"} 1.0',
        'fmpsite_upstream_state{state="reconnecting"} 0.0',
        "# TYPE fmpsite_ticks_received_total counter",
        "# TYPE fmpsite_tick_to_send_seconds histogram",
        "# TYPE fmpsite_ws_clients gauge",
    ]:
        assert line in text, line
    assert "fmpsite_feed_status_age_seconds" in text


def test_metrics_when_the_feed_is_gone(client, settings):
    publish_status(updated_at=time.time() - settings.REALTIME_STATUS_STALE_AFTER - 1)
    text = client.get("/metrics").content.decode()
    assert "fmpsite_feed_up 0.0" in text
    assert 'fmpsite_upstream_state{state="stopped"} 1.0' in text
    assert 'fmpsite_upstream_state{state="connected"} 0.0' in text


def test_metrics_when_the_feed_never_reported(client):
    text = client.get("/metrics").content.decode()
    assert "fmpsite_feed_up 0.0" in text
    assert "fmpsite_cache_symbols 0.0" in text


def test_metrics_refuses_post(client):
    assert client.post("/metrics").status_code == 405


def test_guide_troubleshooting_root_health(client):
    publish_status()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "connected"


# --- fuzzing --------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=8)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
symbolish = st.text(
    alphabet=st.sampled_from("ABCXYZabc019.-=^/ $"), min_size=0, max_size=24
)
bodies = (
    json_values
    | st.lists(symbolish, max_size=120)
    | st.builds(lambda s: {"symbols": s}, st.lists(symbolish | json_values, max_size=8))
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def documented(schema: dict, name: str, method: str) -> set[int]:
    return {int(code) for code in schema["paths"][f"{API}/{name}"][method]["responses"]}


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
def test_fuzz_symbol_bodies_get_documented_answers(schema, name):
    codes = documented(schema, name, "post")
    headers = {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}
    client = Client()

    @FUZZ
    @given(body=bodies)
    def check(body):
        response = client.post(
            f"{API}/{name}",
            json.dumps(body),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code in codes, (body, response.content)
        payload = response.json()
        if response.status_code == 200:
            assert payload["status"] == "success"
            assert len(payload["symbols"]) <= 100
        else:
            assert payload["detail"]

    check()


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
def test_fuzz_raw_bytes_bodies_get_documented_answers(schema, name):
    codes = documented(schema, name, "post")
    headers = {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}
    client = Client()

    @FUZZ
    @given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
    def check(raw):
        response = client.post(
            f"{API}/{name}", raw, content_type="application/json", headers=headers
        )
        assert response.status_code in codes, (raw, response.content)
        assert response.json()["detail" if response.status_code != 200 else "status"]

    check()


def test_fuzz_cache_limit_gets_documented_answers(schema):
    codes = documented(schema, "cache", "get")
    seed_price("AAPL")
    client = Client()

    @FUZZ
    @given(
        limit=st.integers(-(10**6), 10**6).map(str)
        | st.text(max_size=30)
        | st.integers(0, 1001).map(str)
    )
    def check(limit):
        response = client.get(f"{API}/cache", {"limit": limit})
        assert response.status_code in codes, (limit, response.content)
        body = response.json()
        if response.status_code == 200:
            assert 1 <= body["limit"] <= 1000
            assert body["returned"] == 1
        else:
            assert response.status_code == 400
            assert "limit" in body["detail"]

    check()


def test_fuzz_cache_symbol_gets_documented_answers(schema):
    codes = documented(schema, "cache/{symbol}", "get")
    client = Client()

    @FUZZ
    @given(symbol=symbolish.filter(lambda s: s.strip("/")))
    def check(symbol):
        from urllib.parse import quote

        response = client.get(f"{API}/cache/{quote(symbol)}")
        # A path that normalises away (e.g. "A//B") may not reach the view at all.
        assert response.status_code in codes | {404}, (symbol, response.content)

    check()


def test_metrics_answers_head_for_probes(client):
    # Load balancers and uptime checks probe with HEAD; 405 would read as down.
    response = client.head("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
