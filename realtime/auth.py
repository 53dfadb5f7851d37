"""Who may open a price stream (PROTOCOL.md, "Who may connect").

Browser sessions come through channels' session/auth middleware. API clients may
instead present a DRF token, as ``Authorization: Token <key>`` or ``?token=<key>``
(browsers cannot set headers on a WebSocket). A token, when given, wins over the
session; a bad token is treated as anonymous and refused unless anonymous access
is allowed.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, key = value.decode("latin-1").partition(" ")
            if kind.lower() == "token" and key.strip():
                return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens and tokens[0] else None


@database_sync_to_async
def _user_for_token(key: str):
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        key = _token_from_scope(scope)
        if key is not None:
            scope = dict(scope, user=await _user_for_token(key))
        return await super().__call__(scope, receive, send)


def RealtimeAuthMiddlewareStack(inner):  # noqa: N802 (named like channels' stacks)
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


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
