"""Who may open a price stream (docs/protocol.md, "Who may connect").

Browsers present their Django session cookie. API clients may instead present a
DRF token, as ``Authorization: Token <key>`` or ``?token=<key>`` (browsers cannot
set headers on a WebSocket). ``?token=`` (or ``Authorization: Bearer``) also takes a
connection token, a short-lived JWT (realtime/tokens.py): a JWT has two dots, a DRF
key none. A token, when given, wins over the session. An unknown DRF token or a bad
session is treated as anonymous and refused unless anonymous access is allowed; a
connection token that is expired, malformed or wrongly signed is refused at the
handshake whatever that setting, so a frontend never silently runs anonymous.

The user is resolved once, at the handshake, by one middleware layer. Channels'
cookie -> session -> auth stack does the same in three layers, each of which keeps
a copy of the scope and a coroutine frame alive for the connection's whole life,
and the session layer also wraps every ``send``: ~5 KB per idle connection
measured with 200 connections (docs/benchmarks.md), for a session this consumer
never reads after the handshake. The session lookup itself is channels'
``get_user`` and Django's session engine, unchanged.

Besides ``user`` the scope gets ``realtime_principal``, the key that limits count
per: ``"user:<pk>"`` for a session or DRF token user and for a connection token
this site minted, ``"ext:<iss or kid>:<sub>"`` for any other connection token
(realtime/tokens.py), ``None`` for anonymous.

Every refused handshake logs one ``event=ws_refused`` line naming the reason and
the Origin (docs/frontends.md).
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any
from urllib.parse import ParseResult, parse_qs, urlparse

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from realtime.tokens import (
    ConnectionTokenError,
    ConnectionTokenUser,
    is_connection_token,
    verify_connection_token,
)

logger = logging.getLogger(__name__)


class HandshakeRefused(Exception):
    """The connection must be refused at the handshake (HTTP 403).

    ``detail`` (e.g. how far ahead a token's ``exp`` is) goes on the one
    ``ws_refused`` log line, so the refusal says why.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, key = value.decode("latin-1").partition(" ")
            if kind.lower() in ("token", "bearer") and key.strip():
                return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens and tokens[0] else None


def _session_key_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            key = parse_cookie(value.decode("latin-1")).get(
                settings.SESSION_COOKIE_NAME
            )
            if key:
                return key
    return None


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


@database_sync_to_async
def _site_user(pk: str):
    from django.contrib.auth import get_user_model

    try:
        return get_user_model().objects.get(pk=pk, is_active=True)
    except (get_user_model().DoesNotExist, ValueError):
        return None


async def site_user_active(pk: str) -> bool:
    """Whether this site's user ``pk`` still exists and is active (a refresh of a
    site-issued token stops here once the user is deactivated)."""
    return await _site_user(pk) is not None


async def _user_for_connection_token(token: str):
    try:
        claims = verify_connection_token(token)
    except ConnectionTokenError as exc:
        raise HandshakeRefused(exc.reason, exc.detail) from exc
    if not claims.issued_by_site:
        return ConnectionTokenUser(claims.sub), claims.principal, claims
    # Minted by this site for one of its users: that user, while still active.
    user = await _site_user(claims.sub)
    if user is None:
        raise HandshakeRefused("token_user_inactive")
    return user, claims.principal, claims


def _principal(user) -> str | None:
    return f"user:{user.pk}" if user.is_authenticated else None


async def resolve_connection(scope) -> tuple[Any, str | None, Any]:
    """The connecting user, the principal limits count per and, for a connection
    token, its verified claims (the connection ends at their ``exp``).

    Token first (connection token or DRF token), then the session cookie, else
    anonymous. Raises ``HandshakeRefused`` for a connection token that must not
    connect.
    """
    key = _token_from_scope(scope)
    if key is not None:
        if is_connection_token(key):
            return await _user_for_connection_token(key)
        user = await _user_for_token(key)
        return user, _principal(user), None
    session_key = _session_key_from_scope(scope)
    if session_key is None:
        return AnonymousUser(), None, None  # no database hit for scripts and wscat
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = await get_user({"session": session})
    return user, _principal(user), None


def _log_value(value: str | None) -> str:
    """A header value fit for a one-line log: bounded, no spaces or controls."""
    if not value:
        return "-"
    value = value[:200]
    return "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in value)


def _origin_header(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return value.decode("latin-1")
    return None


def origin_for_log(scope) -> str:
    """The handshake's Origin header as a log field value (``-`` when absent)."""
    return _log_value(_origin_header(scope))


def log_refused(scope, reason: str, **fields: object) -> None:
    """One line per refused handshake: the reason, the Origin, the peer and path.

    The consumer's own refusals (anonymous, connection cap) can call it too, with
    their extra fields (``conn=``, ``principal=``), so every refusal reads alike.
    """
    client = scope.get("client") or ("-", 0)
    extra = "".join(f" {k}={_log_value(str(v))}" for k, v in fields.items())
    logger.info(
        "event=ws_refused reason=%s origin=%s client=%s path=%s%s",
        reason,
        origin_for_log(scope),
        client[0],
        _log_value(scope.get("path")),
        extra,
    )


class _Denier(WebsocketDenier):
    # No channel-layer channel for a connection that is being refused (and no
    # Redis round trip: a refusal works while Redis is down). See consumers.py.
    channel_layer_alias = "fmpsite.no-layer-per-consumer"


async def deny(scope, receive, send) -> None:
    """Close before accept: daphne answers the handshake with HTTP 403."""
    return await _Denier()(scope, receive, send)


class StreamAuthMiddleware:
    """Puts ``user``, ``realtime_principal`` and ``realtime_token_claims`` (a
    connection token's, else None) in the scope; nothing else stays per
    connection."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        try:
            user, principal, claims = await resolve_connection(scope)
        except HandshakeRefused as exc:
            # One word for the log line: "exp_is_315360000_s_ahead;_at_most...".
            detail = {"detail": exc.detail.replace(" ", "_")} if exc.detail else {}
            log_refused(scope, exc.reason, **detail)
            return await deny(scope, receive, send)
        return await self.inner(
            {
                **scope,
                "user": user,
                "realtime_principal": principal,
                "realtime_token_claims": claims,
            },
            receive,
            send,
        )


def RealtimeAuthMiddlewareStack(inner):  # noqa: N802 (named like channels' stacks)
    return StreamAuthMiddleware(inner)


def origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin, default ports filled in; None if it is
    not a ``scheme://host[:port]`` origin."""
    try:
        parsed = urlparse(origin.strip().lower())
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        return None
    if parsed.username is not None or parsed.password is not None:
        return None
    if port is None:
        port = 443 if parsed.scheme == "https" else 80
    return parsed.scheme, parsed.hostname, port


class BrowserOriginValidator(OriginValidator):
    """Refuse cross-site browser connections; let non-browser clients in.

    Channels' AllowedHostsOriginValidator also refuses a handshake with no Origin
    header, which would lock out the guide's Python client and wscat. Only browsers
    carry a victim's cookies (the hijacking risk) and browsers always send Origin,
    so a missing Origin is allowed and a present one must either match
    ALLOWED_HOSTS (the site's own pages, any port, as channels matches them) or be
    exactly one of ``REALTIME_ALLOWED_ORIGINS`` (scheme, host and port, as
    django-cors-headers' CORS_ALLOWED_ORIGINS). Both lists are read per handshake,
    so settings overrides in tests apply.

    A refusal logs one line naming the Origin and the reason
    (``origin_not_allowed``), where channels' validator leaves only daphne's bare
    ``WSREJECT``.
    """

    def __init__(
        self,
        application,
        allowed_hosts: list[str] | None = None,
        allowed_origins: list[str] | None = None,
    ) -> None:
        super().__init__(application, allowed_hosts)
        self._allowed_hosts = allowed_hosts
        self._allowed_origins = allowed_origins

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("BrowserOriginValidator handles WebSocket scopes only")
        origin = _origin_header(scope)
        if origin is None or self.origin_allowed(origin):
            return await self.application(scope, receive, send)
        log_refused(scope, "origin_not_allowed")
        return await deny(scope, receive, send)

    def origin_allowed(self, origin: str) -> bool:
        key = origin_key(origin)
        if key is not None and key in {
            origin_key(allowed) for allowed in self._extra_origins()
        }:
            return True
        try:  # a bad port ("http://a:99999") raises ValueError on .port
            parsed: ParseResult = urlparse(origin)
            return any(
                pattern == "*" or self.match_allowed_origin(parsed, pattern)
                for pattern in self._hosts()
            )
        except ValueError:
            return False

    def _hosts(self) -> list[str]:
        if self._allowed_hosts is not None:
            return self._allowed_hosts
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        return allowed

    def _extra_origins(self) -> list[str]:
        if self._allowed_origins is not None:
            return self._allowed_origins
        return list(getattr(settings, "REALTIME_ALLOWED_ORIGINS", ()))


def BrowserOriginValidatorStack(inner):  # noqa: N802
    return BrowserOriginValidator(inner)
