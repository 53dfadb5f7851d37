"""Who may open a price stream (PROTOCOL.md, "Who may connect").

Browsers present their Django session cookie. API clients may instead present a
DRF token, as ``Authorization: Token <key>`` or ``?token=<key>`` (browsers cannot
set headers on a WebSocket). A token, when given, wins over the session; a bad
token or session is treated as anonymous and refused unless anonymous access is
allowed.

The user is resolved once, at the handshake, by one middleware layer. Channels'
cookie -> session -> auth stack does the same in three layers, each of which keeps
a copy of the scope and a coroutine frame alive for the connection's whole life,
and the session layer also wraps every ``send``: ~5 KB per idle connection
measured with 200 connections (docs/benchmarks.md), for a session this consumer
never reads after the handshake. The session lookup itself is channels'
``get_user`` and Django's session engine, unchanged.
"""

from __future__ import annotations

from importlib import import_module
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, key = value.decode("latin-1").partition(" ")
            if kind.lower() == "token" and key.strip():
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


async def user_for_scope(scope):
    """The connecting user: token first, then the session cookie, else anonymous."""
    key = _token_from_scope(scope)
    if key is not None:
        return await _user_for_token(key)
    session_key = _session_key_from_scope(scope)
    if session_key is None:
        return AnonymousUser()  # no database hit for scripts and wscat
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return await get_user({"session": session})


class StreamAuthMiddleware:
    """Puts the resolved ``user`` in the scope; nothing else stays per connection."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = await user_for_scope(scope)
        return await self.inner({**scope, "user": user}, receive, send)


def RealtimeAuthMiddlewareStack(inner):  # noqa: N802 (named like channels' stacks)
    return StreamAuthMiddleware(inner)


class BrowserOriginValidator(OriginValidator):
    """Refuse cross-site browser connections; let non-browser clients in.

    Channels' AllowedHostsOriginValidator also refuses a handshake with no Origin
    header, which would lock out the guide's Python client and wscat. Only browsers
    carry a victim's cookies (the hijacking risk) and browsers always send Origin,
    so a missing Origin is allowed and a present one must match ALLOWED_HOSTS.
    """

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def BrowserOriginValidatorStack(inner):  # noqa: N802
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(inner, allowed)
