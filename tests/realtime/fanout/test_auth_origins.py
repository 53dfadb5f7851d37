"""Browser frontends on other origins (issue 18, docs/frontends.md).

- Connection tokens (realtime/tokens.py): mint, verify, and every refusal reason.
- The stream's auth middleware: the scope's ``user`` and ``realtime_principal``.
- ``POST /api/v2/realtime/connection-token`` with a session and CSRF.
- A production-configured daphne (DEBUG off, anonymous off) on a real socket:
  ``REALTIME_ALLOWED_ORIGINS`` at the handshake, one log line per refusal naming
  origin and reason, tokens at the handshake, limits per ``sub``, CORS on /api/.
- Settings refuse a short secret and a malformed origin at start.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from websockets.exceptions import InvalidStatus

from realtime.fanout.auth import (
    BrowserOriginValidator,
    StreamAuthMiddleware,
    log_refused,
    origin_key,
)
from realtime.tokens import (
    SITE_ISSUER,
    ConnectionTokenError,
    ConnectionTokenUser,
    is_connection_token,
    mint_connection_token,
    verify_connection_token,
)
from tests.live import (
    ROOT,
    clean_env,
    manage,
    start_product,
    wait_until,
)
from tests.realtime.wsclient import WS_PATH

SECRET = "test-connection-token-secret-" + "x" * 20  # >= 32 bytes
APP_ORIGIN = "http://app.test:8375"
OTHER_APP_ORIGIN = "https://frontend.example.com"
WITHIN = 60.0


def _token(sub: str = "visitor-1", *, exp_in: float = 300, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(exp_in)}
    claims.update(extra)
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
def token_secret(settings):
    settings.REALTIME_CONNECTION_TOKEN_SECRET = SECRET
    settings.REALTIME_CONNECTION_TOKEN_TTL = 300
    return SECRET


# --- Tokens -------------------------------------------------------------------------


def test_minted_token_verifies_to_its_subject_and_expiry(token_secret):
    token, expires_at = mint_connection_token(sub="42", site_user=True)
    claims = verify_connection_token(token)
    assert (claims.sub, claims.issued_by_site, claims.principal) == (
        "42",
        True,
        "user:42",
    )
    assert claims.exp == int(expires_at.timestamp())
    assert expires_at.tzinfo is not None
    lifetime = expires_at - dt.datetime.now(tz=dt.UTC)
    assert dt.timedelta(seconds=290) < lifetime <= dt.timedelta(seconds=300)
    raw = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert raw["iss"] == SITE_ISSUER and raw["exp"] - raw["iat"] == 300


def test_token_minted_elsewhere_is_not_a_site_user(token_secret):
    claims = verify_connection_token(_token("crm-user-7"))
    assert (claims.sub, claims.issued_by_site) == ("crm-user-7", False)


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "token_expired": _token(exp_in=-5),
        "token_bad_signature": jwt.encode(
            {"sub": "a", "exp": now + 60}, "another-secret-" + "y" * 32, "HS256"
        ),
        "token_malformed": "not.a.jwt",
        "token_bad_algorithm": jwt.encode(
            {"sub": "a", "exp": now + 60}, SECRET * 2, algorithm="HS512"
        ),
        "token_missing_claim": jwt.encode({"sub": "a"}, SECRET, algorithm="HS256"),
        "token_not_yet_valid": _token(nbf=now + 3600),
        "token_invalid_claims": _token(sub="has space"),
    }


def test_external_subjects_live_in_their_issuers_namespace(token_secret):
    """A frontend's sub="2" is not this site's user 2 (issue 28, defect 4)."""
    assert verify_connection_token(_token("2")).principal == "ext:-:2"
    assert verify_connection_token(_token("2", iss="crm")).principal == "ext:crm:2"
    keyed = jwt.encode(
        {"sub": "2", "exp": int(time.time()) + 60},
        SECRET,
        algorithm="HS256",
        headers={"kid": "frontend-a"},
    )
    assert verify_connection_token(keyed).principal == "ext:frontend-a:2"
    site, _ = mint_connection_token(sub="2", site_user=True)
    assert verify_connection_token(site).principal == "user:2"
    with pytest.raises(ConnectionTokenError) as refused:
        verify_connection_token(_token("2", iss="has:colon"))
    assert refused.value.reason == "token_invalid_claims"


def _bad_lifetimes() -> dict[str, tuple[dict[str, Any], str]]:
    now = int(time.time())
    return {
        "ten_years": ({"exp": now + 10 * 365 * 86400}, "token_lifetime_too_long"),
        "1e300": ({"exp": 1e300}, "token_lifetime_too_long"),
        "infinity": ({"exp": float("inf")}, "token_invalid_claims"),
        "nan": ({"exp": float("nan")}, "token_invalid_claims"),
        "string": ({"exp": str(now + 60)}, "token_invalid_claims"),
        "bool": ({"exp": True}, "token_invalid_claims"),
        "nbf_string": ({"exp": now + 60, "nbf": str(now)}, "token_invalid_claims"),
        "iat_in_future": ({"exp": now + 60, "iat": now + 3600}, "token_invalid_claims"),
        "nbf_in_future": ({"exp": now + 600, "nbf": now + 300}, "token_not_yet_valid"),
    }


@pytest.mark.parametrize("case", sorted(_bad_lifetimes()))
def test_exp_must_be_a_bounded_numeric_date(token_secret, settings, case):
    """RFC 7519 NumericDates, at most REALTIME_CONNECTION_TOKEN_MAX_TTL ahead
    (issue 28, defect 5); the error says why."""
    settings.REALTIME_CONNECTION_TOKEN_MAX_TTL = 24 * 3600
    claims, reason = _bad_lifetimes()[case]
    token = jwt.encode({"sub": "a", **claims}, SECRET, algorithm="HS256")
    with pytest.raises(ConnectionTokenError) as refused:
        verify_connection_token(token)
    assert refused.value.reason == reason
    assert refused.value.detail


def test_a_day_long_token_is_within_the_default_bound(token_secret):
    claims = verify_connection_token(_token(exp_in=24 * 3600 - 60))
    assert claims.sub == "visitor-1"


@pytest.mark.parametrize("reason", sorted(_bad_tokens()))
def test_bad_token_is_refused_with_its_reason(token_secret, reason):
    with pytest.raises(ConnectionTokenError) as refused:
        verify_connection_token(_bad_tokens()[reason])
    assert refused.value.reason == reason


def test_unsigned_token_is_refused(token_secret):
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(
        json.dumps({"sub": "a", "exp": int(time.time()) + 60}).encode()
    ).decode()
    with pytest.raises(ConnectionTokenError) as refused:
        verify_connection_token(f"{header}.{body}.")
    assert refused.value.reason == "token_bad_algorithm"


def test_tokens_are_off_without_a_secret(settings):
    settings.REALTIME_CONNECTION_TOKEN_SECRET = ""
    with pytest.raises(ConnectionTokenError) as refused:
        verify_connection_token(_token())
    assert refused.value.reason == "connection_tokens_disabled"
    with pytest.raises(ConnectionTokenError):
        mint_connection_token(sub="1")


def test_drf_keys_and_jwts_are_told_apart():
    assert is_connection_token(_token())
    assert not is_connection_token(secrets.token_hex(20))  # a DRF token's shape


@pytest.mark.parametrize(
    ("origin", "key"),
    [
        ("http://App.Test:8375", ("http", "app.test", 8375)),
        ("https://app.test", ("https", "app.test", 443)),
        ("http://app.test/", ("http", "app.test", 80)),
        ("null", None),
        ("app.test:8375", None),
        ("http://app.test:99999", None),
        ("http://app.test/path", None),
    ],
)
def test_origin_key(origin, key):
    assert origin_key(origin) == key


# --- The middleware: user and principal in the scope -------------------------------


class _ScopeRecorder(AsyncWebsocketConsumer):
    """Accepts and keeps the scope it was given (no database, no layer)."""

    channel_layer_alias = "fmpsite.no-layer-per-consumer"
    seen: list[dict[str, Any]] = []

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Without channels' close_old_connections hop, as PriceStreamConsumer.
        await getattr(self, get_handler_name(message))(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        raise StopConsumer()

    async def connect(self) -> None:
        _ScopeRecorder.seen.append(self.scope)
        await self.accept()


async def _scope_for(query: str = "", headers=()) -> dict[str, Any] | None:
    _ScopeRecorder.seen = []
    app = StreamAuthMiddleware(_ScopeRecorder.as_asgi())
    comm = WebsocketCommunicator(app, f"{WS_PATH}{query}", headers=list(headers))
    connected, _ = await comm.connect()
    if connected:
        await comm.disconnect()
        return _ScopeRecorder.seen[0]
    return None


async def test_external_subject_becomes_token_user_and_principal(token_secret):
    scope = await _scope_for(f"?token={_token('crm-7')}")
    assert scope is not None
    assert scope["user"] == ConnectionTokenUser("crm-7")
    assert scope["user"].is_authenticated and not scope["user"].is_staff
    # Its own namespace: never a site user's "user:<pk>" (issue 28, defect 4).
    assert scope["realtime_principal"] == "ext:-:crm-7"


async def test_bearer_header_works_like_the_query(token_secret):
    scope = await _scope_for(
        headers=[(b"authorization", f"Bearer {_token()}".encode())]
    )
    assert scope is not None and scope["realtime_principal"] == "ext:-:visitor-1"


async def test_anonymous_has_no_principal():
    scope = await _scope_for()
    assert scope is not None
    assert not scope["user"].is_authenticated and scope["realtime_principal"] is None


async def test_bad_connection_token_refused_even_when_anonymous_is_allowed(
    token_secret, settings, caplog
):
    settings.REALTIME_ALLOW_ANONYMOUS = True
    with caplog.at_level("INFO", logger="realtime.fanout.auth"):
        scope = await _scope_for(
            f"?token={_token(exp_in=-5)}", headers=[(b"origin", APP_ORIGIN.encode())]
        )
    assert scope is None
    assert f"event=ws_refused reason=token_expired origin={APP_ORIGIN}" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_site_token_resolves_to_the_active_django_user(token_secret):
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    @database_sync_to_async
    def make_user():
        user = User.objects.create_user("dora", password="x")
        return user, Token.objects.create(user=user).key

    user, drf_key = await make_user()
    token, _ = await database_sync_to_async(mint_connection_token)(
        sub=str(user.pk), site_user=True
    )
    scope = await _scope_for(f"?token={token}")
    assert scope is not None
    assert scope["user"].pk == user.pk and scope["user"].username == "dora"
    assert scope["realtime_principal"] == f"user:{user.pk}"

    scope = await _scope_for(f"?token={drf_key}")
    assert scope is not None and scope["realtime_principal"] == f"user:{user.pk}"

    await database_sync_to_async(User.objects.filter(pk=user.pk).update)(
        is_active=False
    )
    assert await _scope_for(f"?token={token}") is None


async def test_refusal_log_is_one_line_whatever_the_origin_holds(settings, caplog):
    settings.REALTIME_ALLOWED_ORIGINS = [APP_ORIGIN]
    app = BrowserOriginValidator(_ScopeRecorder.as_asgi())
    hostile = b"http://evil.test\r\nevent=ws_connected user=admin"
    comm = WebsocketCommunicator(app, WS_PATH, headers=[(b"origin", hostile)])
    with caplog.at_level("INFO", logger="realtime.fanout.auth"):
        connected, _ = await comm.connect()
    assert not connected
    (line,) = [r.getMessage() for r in caplog.records if "ws_refused" in r.message]
    assert line.startswith("event=ws_refused reason=origin_not_allowed origin=")
    assert "\n" not in line and "\r" not in line and " user=admin" not in line


def test_consumer_refusals_can_share_the_line_format(caplog):
    scope = {"headers": [(b"origin", APP_ORIGIN.encode())], "path": WS_PATH}
    with caplog.at_level("INFO", logger="realtime.fanout.auth"):
        log_refused(scope, "connection_cap", conn="ws-7", principal="user:a b")
    assert caplog.records[-1].getMessage() == (
        f"event=ws_refused reason=connection_cap origin={APP_ORIGIN} client=- "
        f"path={WS_PATH} conn=ws-7 principal=user:a?b"
    )


# --- POST connection-token with a session -------------------------------------------


@pytest.mark.django_db
def test_session_user_gets_a_token_only_with_csrf(token_secret):
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_user("erin", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = "/api/v2/realtime/connection-token"
    refused = client.post(url, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

    csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret
    client.cookies["csrftoken"] = csrf
    response = client.post(url, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(user.pk) and claims["iss"] == SITE_ISSUER
    expires_at = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert body["expires_at"].endswith("Z")
    assert int(expires_at.timestamp()) == claims["exp"]


@pytest.mark.django_db
def test_token_endpoint_refuses_anonymous_and_says_when_disabled(settings):
    from django.contrib.auth.models import User
    from django.test import Client

    settings.REALTIME_CONNECTION_TOKEN_SECRET = ""
    client = Client()
    url = "/api/v2/realtime/connection-token"
    assert client.post(url, content_type="application/json").status_code == 401
    client.force_login(User.objects.create_user("fred", password="x"))
    response = client.post(url, content_type="application/json")
    assert response.status_code == 503
    assert "REALTIME_CONNECTION_TOKEN_SECRET" in response.json()["detail"]


def test_token_endpoint_is_in_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v2/realtime/connection-token"]["post"]
    assert operation["operationId"] == "realtime_connection_token_create"
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = ref["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][name]["properties"]) == {
        "token",
        "expires_at",
    }
    assert schema["components"]["securitySchemes"]["connectionToken"]["scheme"] == (
        "bearer"
    )


# --- A production-configured daphne -------------------------------------------------


@pytest.fixture(scope="module")
def prod_server(migrated_sqlite: str) -> Iterator[dict[str, Any]]:
    """daphne with DEBUG off, anonymous off, one extra origin and tokens on."""
    with start_product(
        "daphne-prod-origins",
        timeout=WITHIN,
        DATABASE_URL=migrated_sqlite,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback
        REALTIME_ALLOW_ANONYMOUS="false",
        REALTIME_ALLOWED_ORIGINS=f"{APP_ORIGIN},{OTHER_APP_ORIGIN}",
        REALTIME_CONNECTION_TOKEN_SECRET=SECRET,
        REALTIME_CONNECTION_TOKEN_TTL="120",
        REALTIME_MAX_CONNECTIONS_PER_USER="2",
    ) as live:
        yield {"port": live.port, "env": live.env, "process": live.proc}


def _server_log(server: dict[str, Any]) -> str:
    return Path(server["process"].log_path).read_text(errors="replace")


def _wait_log(server: dict[str, Any], text: str) -> None:
    wait_until(lambda: text in _server_log(server), WITHIN, f"log line {text!r}")


async def _open(port: int, *, origin: str | None, token: str | None):
    query = f"?token={token}" if token else ""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}{WS_PATH}{query}",
        origin=origin,
        open_timeout=WITHIN,
    )
    greeting = json.loads(await ws.recv())
    assert greeting["type"] == "connected", greeting
    return ws


async def _refused(port: int, *, origin: str | None, token: str | None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        ws = await _open(port, origin=origin, token=token)
        await ws.close()
    return refused.value.response.status_code


@pytest.mark.parametrize(
    "origin", [APP_ORIGIN, OTHER_APP_ORIGIN, "own-host", None], ids=str
)
async def test_allowed_origins_connect_with_a_connection_token(prod_server, origin):
    port = prod_server["port"]
    if origin == "own-host":  # the site's own pages (ALLOWED_HOSTS) still connect
        origin = f"http://127.0.0.1:{port}"
    ws = await _open(port, origin=origin, token=_token(f"sub-{secrets.token_hex(4)}"))
    await ws.close()


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.test:8375",
        "http://app.test:9999",  # the right host on another port
        "https://app.test:8375",  # ... or with another scheme
        "null",  # sandboxed iframes and file:// pages
    ],
)
async def test_other_origin_gets_403_and_one_log_line(prod_server, origin):
    status = await _refused(prod_server["port"], origin=origin, token=_token())
    assert status == 403
    _wait_log(
        prod_server, f"event=ws_refused reason=origin_not_allowed origin={origin}"
    )


@pytest.mark.parametrize(
    "reason", ["token_expired", "token_bad_signature", "token_malformed"]
)
async def test_bad_token_gets_403_and_the_log_says_which(prod_server, reason):
    status = await _refused(
        prod_server["port"], origin=APP_ORIGIN, token=_bad_tokens()[reason]
    )
    assert status == 403
    _wait_log(prod_server, f"event=ws_refused reason={reason} origin={APP_ORIGIN}")


async def test_a_ten_year_token_is_refused_and_logged_once_with_why(prod_server):
    token = _token(f"long-{secrets.token_hex(4)}", exp_in=10 * 365 * 86400)
    assert await _refused(prod_server["port"], origin=APP_ORIGIN, token=token) == 403
    _wait_log(prod_server, "event=ws_refused reason=token_lifetime_too_long")
    lines = [
        line
        for line in _server_log(prod_server).splitlines()
        if "reason=token_lifetime_too_long" in line
    ]
    assert len(lines) == 1 and "detail=exp_is_" in lines[0], lines


async def test_external_subjects_cannot_use_up_a_site_users_connections(prod_server):
    """20 tokens with sub=<pk> used to lock user <pk>'s DRF token out (403)."""
    env = prod_server["env"]
    pk, drf_key = manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "from rest_framework.authtoken.models import Token; "
        "u, _ = User.objects.get_or_create(username='nadia'); "
        "print(u.pk, Token.objects.get_or_create(user=u)[0].key)",
    ).split()[-2:]
    port = prod_server["port"]
    # The cap is 2: two external connections with the user's pk as sub...
    external = [await _open(port, origin=APP_ORIGIN, token=_token(pk)) for _ in "ab"]
    try:
        # ...leave the user's own two connections alone.
        own = [await _open(port, origin=APP_ORIGIN, token=drf_key) for _ in "ab"]
        for ws in own:
            await ws.close()
    finally:
        for ws in external:
            await ws.close()


async def test_no_credential_is_refused_in_production(prod_server):
    assert await _refused(prod_server["port"], origin=APP_ORIGIN, token=None) == 403


async def test_connection_cap_counts_per_subject(prod_server):
    port = prod_server["port"]
    sub = f"capped-{secrets.token_hex(4)}"
    first = await _open(port, origin=APP_ORIGIN, token=_token(sub))
    second = await _open(port, origin=APP_ORIGIN, token=_token(sub, exp_in=200))
    try:
        # A third connection of the same sub is over REALTIME_MAX_CONNECTIONS_PER_USER
        # (2), whatever token it carries; another sub is not.
        assert await _refused(port, origin=APP_ORIGIN, token=_token(sub)) == 403
        other = await _open(port, origin=APP_ORIGIN, token=_token(f"{sub}-other"))
        await other.close()
    finally:
        await first.close()
        await second.close()


def _http(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WITHIN)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        head = {k.lower(): v for k, v in response.getheaders()}
        body = (
            json.loads(raw) if raw and "json" in head.get("content-type", "") else raw
        )
        return response.status, head, body
    finally:
        conn.close()


def test_drf_token_buys_a_connection_token_that_opens_the_stream(prod_server):
    import asyncio

    env = prod_server["env"]
    drf_key = manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "from rest_framework.authtoken.models import Token; "
        "u, _ = User.objects.get_or_create(username='gina'); "
        "print(Token.objects.get_or_create(user=u)[0].key)",
    ).split()[-1]  # the shell may print a banner first
    url = "/api/v2/realtime/connection-token"
    status, _, body = _http(prod_server["port"], "POST", url)
    assert status == 401, body
    status, _, body = _http(
        prod_server["port"], "POST", url, {"Authorization": f"Token {drf_key}"}
    )
    assert status == 200, body
    expires_at = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    left = expires_at - dt.datetime.now(tz=dt.UTC)
    assert dt.timedelta(seconds=60) < left <= dt.timedelta(seconds=120)  # TTL 120

    async def use_it() -> None:
        ws = await _open(prod_server["port"], origin=APP_ORIGIN, token=body["token"])
        await ws.close()

    asyncio.run(use_it())
    # A connection token cannot buy its successor.
    status, _, body = _http(
        prod_server["port"], "POST", url, {"Authorization": f"Bearer {body['token']}"}
    )
    assert status == 401, body


def test_cors_reads_for_listed_origins_without_credentials(prod_server):
    port = prod_server["port"]
    path = "/api/v2/realtime/status"
    bearer = {"Authorization": f"Bearer {_token('reader-1')}"}

    status, head, body = _http(port, "GET", path, {"Origin": APP_ORIGIN, **bearer})
    assert status == 200, body
    assert head["access-control-allow-origin"] == APP_ORIGIN
    assert "access-control-allow-credentials" not in head

    status, head, _ = _http(port, "GET", path, {"Origin": "http://evil.test", **bearer})
    assert "access-control-allow-origin" not in head  # the browser hides the answer

    status, head, _ = _http(
        port,
        "OPTIONS",
        path,
        {
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert status == 200
    assert head["access-control-allow-origin"] == APP_ORIGIN
    assert "authorization" in head["access-control-allow-headers"]

    status, _, body = _http(port, "GET", path, {"Origin": APP_ORIGIN})
    assert status in (401, 403), body  # anonymous reads are off in production

    status, _, body = _http(
        port,
        "POST",
        "/api/v2/realtime/subscribe",
        {"Origin": APP_ORIGIN, "Content-Type": "application/json", **bearer},
    )
    assert status in (401, 403)
    assert "reads only" in body["detail"]


# --- Settings refuse bad values at start --------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REALTIME_CONNECTION_TOKEN_SECRET", "too-short", "at least 32 bytes"),
        ("REALTIME_ALLOWED_ORIGINS", "app.test:8375", "is not an origin"),
        ("REALTIME_ALLOWED_ORIGINS", "https://app.test/path", "is not an origin"),
        ("REALTIME_CONNECTION_TOKEN_TTL", "0", "REALTIME_CONNECTION_TOKEN_TTL"),
    ],
)
def test_settings_refuse_bad_values_at_start(variable, value, message):
    env = clean_env()
    env.update(
        DJANGO_SETTINGS_MODULE="fmpsite.settings.base",
        DJANGO_DEBUG="true",
        **{variable: value},
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
