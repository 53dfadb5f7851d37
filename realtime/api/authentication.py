"""Connection tokens on the REST side: ``Authorization: Bearer <jwt>``, reads only.

A browser frontend on another origin gets no cookies through CORS
(``CORS_ALLOW_CREDENTIALS`` is false), so its cross-origin reads of /api/ carry a
header instead. The short-lived connection token it already holds for the
WebSocket (realtime/tokens.py) serves, so no long-lived DRF token has to sit in a
bundle. It authorizes safe methods only: a connection token is a read credential
and never pins symbols nor mints another token (which would make it
self-renewing).

Kept apart from the views: DRF resolves DEFAULT_AUTHENTICATION_CLASSES while it
imports ``rest_framework.views``, so this module must not import it back.
"""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from realtime.tokens import (
    ConnectionClaims,
    ConnectionTokenError,
    ConnectionTokenUser,
    verify_connection_token,
)

KEYWORD = "bearer"


class ConnectionTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <connection token>`` on GET, HEAD and OPTIONS."""

    def authenticate(self, request: Request) -> tuple[object, ConnectionClaims] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.encode():
            return None  # not ours: session or DRF token may apply
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Invalid Authorization header: use 'Bearer <connection token>'."
            )
        if request.method not in SAFE_METHODS:
            raise AuthenticationFailed(
                "Connection tokens allow reads only; use a session or a DRF token "
                "for this request."
            )
        try:
            claims = verify_connection_token(parts[1].decode("latin-1"))
        except ConnectionTokenError as exc:
            raise AuthenticationFailed(
                f"Invalid connection token ({exc.reason})."
            ) from exc
        if not claims.issued_by_site:
            return ConnectionTokenUser(claims.sub), claims
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        try:
            user = user_model.objects.get(pk=claims.sub, is_active=True)
        except (user_model.DoesNotExist, ValueError) as exc:
            raise AuthenticationFailed(
                "Invalid connection token (token_user_inactive)."
            ) from exc
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
