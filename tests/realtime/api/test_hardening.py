"""Issue 12 items 5, 6 and 9 and issue 16 item 8 through Django's test client:
every answer under /api/ is JSON (errors included), a deep body is a 400, a store
failure a 503, missing credentials a 401 with the Token challenge, a browser gets
the browsable API, the API roots list the endpoints, HTML pages carry the CSP.
(The handshake refusal and the 413 through daphne are in test_live_hardening.py.)
"""

from __future__ import annotations

import json

import pytest
import yaml
from django.test import Client

from fmpsite.csp import POLICY
from realtime.api.parsers import MAX_DEPTH, json_depth_exceeds
from realtime.models import PinnedSubscription
from tests.factories import make_token, make_user, publish_status, seed_price
from tests.live import free_port

pytestmark = pytest.mark.django_db

API = "/api/v2/realtime"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def staff_headers() -> dict[str, str]:
    return {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}


def post_raw(client: Client, path: str, raw: bytes | str, **kwargs):
    return client.post(path, raw, content_type="application/json", **kwargs)


# --- item 5: deeply nested JSON -------------------------------------------------------


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_bodies_are_400_not_500(client, staff_headers, name, depth):
    for body in ("[" * depth + "]" * depth, '{"symbols":' * depth + "1" + "}" * depth):
        response = post_raw(client, f"{API}/{name}", body, headers=staff_headers)
        assert response.status_code == 400, response.content[:200]
        assert "nested deeper" in response.json()["detail"]
    assert PinnedSubscription.objects.count() == 0


def test_depth_bound_counts_levels():
    assert not json_depth_exceeds(["AAPL"], 1)
    assert json_depth_exceeds([["AAPL"]], 1)
    assert not json_depth_exceeds({"symbols": ["AAPL"]}, 2)
    assert json_depth_exceeds({"symbols": [{"a": []}]}, 3)


# --- item 6: JSON everywhere under /api/ ----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/nope",
        f"{API}/health/",
        f"{API}/ws/prices",
        f"{API}/ws/prices/",
        "/api/nope",
        "/api/v1/anything",
        "/api/v2/realtime",
    ],
)
def test_unknown_api_paths_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert path in response.json()["detail"]


def test_unknown_api_paths_are_json_404_with_debug_off_too(client, settings):
    settings.DEBUG = False
    response = client.get("/api/v2/realtime/unknown")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_non_api_paths_keep_html_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True])
def test_body_over_the_upload_limit_is_json_413(client, settings, staff_headers, debug):
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps(["AAPL"] * 400)
    assert len(body) > 1000
    response = post_raw(client, f"{API}/subscribe", body, headers=staff_headers)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "1000 bytes" in response.json()["detail"]
    assert PinnedSubscription.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "subscribe"),
        ("get", "subscribe"),
        ("delete", "cache"),
        ("post", "health"),
    ],
)
def test_wrong_method_is_json_405(client, staff_headers, method, path):
    response = getattr(client, method)(f"{API}/{path}", headers=staff_headers)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "not allowed" in response.json()["detail"]


def test_unacceptable_accept_is_json_406(client):
    response = client.get(f"{API}/status", headers={"Accept": "application/xml"})
    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


def test_store_failure_is_json_503_on_every_read(client, settings):
    """Redis (scaled mode) down: one handler turns it into a JSON 503."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    settings.REALTIME_MODE = "scaled"
    try:
        for path in ("status", "cache", "cache/AAPL"):
            response = client.get(f"{API}/{path}")
            assert response.status_code == 503, (path, response.content)
            assert response.json() == {
                "detail": "The tick cache or feed status store is unavailable."
            }
        health = client.get(f"{API}/health")
        assert health.status_code == 503
        assert health.json()["last_error"].startswith("Status store unavailable")
        assert health.json()["is_running"] is False
    finally:
        settings.REALTIME_MODE = "embedded"
        settings.REDIS_URL = ""


# --- fan-out failure hook of the health selector --------------------------------------


def test_health_reports_a_fanout_failure_as_503(client, monkeypatch):
    from realtime.fanout import health

    publish_status()
    assert client.get(f"{API}/health").status_code == 200
    monkeypatch.setattr(
        health, "fanout_failure", lambda: "flush task died: KeyError", raising=False
    )
    response = client.get(f"{API}/health")
    assert response.status_code == 503
    assert response.json()["fanout_error"] == "flush task died: KeyError"
    assert response.json()["status"] == "connected"
    monkeypatch.setattr(health, "fanout_failure", lambda: None, raising=False)
    assert client.get(f"{API}/health").status_code == 200


# --- item 9: 401 with the challenge, 403 for non-staff --------------------------------


def test_missing_credentials_get_401_with_the_token_challenge(client, settings):
    settings.REALTIME_ALLOW_ANONYMOUS = False
    for response in (
        client.get(f"{API}/status"),
        post_raw(client, f"{API}/subscribe", "[]"),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"


def test_authenticated_non_staff_gets_403(client):
    headers = {"Authorization": f"Token {make_token(make_user())}"}
    response = post_raw(client, f"{API}/subscribe", '["AAPL"]', headers=headers)
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response


def _security(client: Client, path: str, method: str = "get") -> list[dict]:
    document = yaml.safe_load(client.get("/api/schema/").content)
    return document["paths"][f"{API}/{path}"][method].get("security", [])


def test_schema_declares_anonymous_reads_only_when_they_are_allowed(client, settings):
    settings.REALTIME_ALLOW_ANONYMOUS = True
    assert {} in _security(client, "status")
    assert {} in _security(client, "cache/{symbol}")
    assert {} not in _security(client, "subscribe", "post")
    assert {"tokenAuth": []} in _security(client, "subscribe", "post")
    assert _security(client, "health") == [{}]
    settings.REALTIME_ALLOW_ANONYMOUS = False
    assert {} not in _security(client, "status")
    assert {"tokenAuth": []} in _security(client, "status")


def test_schema_symbols_carry_the_rest_pattern(client):
    document = yaml.safe_load(client.get("/api/schema/").content)
    (param,) = document["paths"][f"{API}/cache/{{symbol}}"]["get"]["parameters"]
    schema = param["schema"]
    assert schema["pattern"] == "^[A-Za-z0-9^][A-Za-z0-9.=^/-]{0,19}$"
    assert (schema["minLength"], schema["maxLength"]) == (1, 20)
    body = document["paths"][f"{API}/subscribe"]["post"]["requestBody"]
    array, obj = body["content"]["application/json"]["schema"]["oneOf"]
    assert array["items"]["pattern"] == schema["pattern"]
    assert obj["properties"]["symbols"]["maxItems"] == 100
    responses = document["paths"][f"{API}/subscribe"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "415"} <= responses.keys()


# --- issue 16 item 8: browsable API, API roots, viewable schema -----------------------


def test_json_stays_the_default_without_an_accept_header(client):
    publish_status()
    for accept in (None, "*/*", "application/json"):
        headers = {"Accept": accept} if accept else {}
        response = client.get(f"{API}/status", headers=headers)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["status", "cache", "health", "cache/AAPL", ""])
def test_a_browser_gets_the_browsable_api(client, path):
    publish_status()
    seed_price("AAPL")
    response = client.get(f"{API}/{path}", headers=HTML)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Django REST framework" in response.content
    assert response["Content-Security-Policy"] == POLICY


def test_realtime_root_lists_every_named_route(client):
    response = client.get(f"{API}/")
    assert response.status_code == 200
    listing = response.json()
    base = f"http://testserver{API}/"
    for name, route in {
        "health": "health",
        "status": "status",
        "subscribe": "subscribe",
        "unsubscribe": "unsubscribe",
        "cache": "cache",
        "cache-symbol": "cache/{symbol}",
    }.items():
        assert listing[name] == base + route
    assert "root" not in listing
    for url in listing.values():
        if "{" not in url:
            assert client.get(url.removeprefix("http://testserver")).status_code != 404


def test_api_root_lists_the_api(client):
    response = client.get("/api/")
    assert response.status_code == 200
    body = response.json()
    assert body["realtime"] == f"http://testserver{API}/"
    assert body["schema"] == "http://testserver/api/schema/"
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["websocket"] == "ws://testserver/api/v2/realtime/ws/prices"


def test_schema_is_yaml_for_curl_and_a_page_for_a_browser(client):
    plain = client.get("/api/schema/", headers={"Accept": "*/*"})
    assert plain["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(plain.content)["openapi"].startswith("3.")
    page = client.get("/api/schema/", headers=HTML)
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"openapi:" in page.content
    as_json = client.get("/api/schema/", {"format": "json"})
    assert json.loads(as_json.content)["openapi"].startswith("3.")


# --- item 10: CSP header and the sidecar ----------------------------------------------


def test_html_pages_carry_the_csp_and_json_does_not_need_it(client):
    docs = client.get("/api/docs/")
    assert docs["Content-Security-Policy"] == POLICY
    assert b"cdn.jsdelivr" not in docs.content
    assert b"<style" not in docs.content
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content
    login = client.get("/accounts/login/")
    assert login["Content-Security-Policy"] == POLICY
    assert "Content-Security-Policy" not in client.get(f"{API}/health")
