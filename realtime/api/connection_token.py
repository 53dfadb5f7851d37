"""``POST /api/v2/realtime/connection-token``: a connection token for the caller.

For a page of this site, or a frontend whose users log in here: the logged-in user
(session with CSRF, or ``Authorization: Token <key>``) gets a short-lived
connection token (realtime/tokens.py) to append to the WebSocket URL as
``?token=``. Frontends with their own backend mint tokens themselves with the
shared secret (docs/frontends.md) and never call this.

Only session and DRF token authentication are accepted here: a connection token
cannot buy its successor, so a leaked one dies at its ``exp``.
"""

from __future__ import annotations

import logging

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.api.schema import TAGS
from realtime.api.serializers import DetailSerializer
from realtime.tokens import connection_tokens_enabled, mint_connection_token

logger = logging.getLogger(__name__)


class ConnectionTokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="HS256 JWT with claims sub (your user id), iat and exp. Append "
        "it to the WebSocket URL as ?token=, or send it as "
        "'Authorization: Bearer' on REST reads."
    )
    expires_at = serializers.DateTimeField(
        help_text="When the token stops opening connections (ISO 8601, UTC). "
        "A connection opened before then stays open."
    )


class ConnectionTokensDisabled(APIException):
    status_code = http.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        "Connection tokens are not enabled on this server "
        "(REALTIME_CONNECTION_TOKEN_SECRET is not set)."
    )
    default_code = "connection_tokens_disabled"


connection_token_schema = extend_schema(
    operation_id="realtime_connection_token_create",
    summary="Issue a short-lived WebSocket connection token",
    description=(
        "For a logged-in user: a session (with the X-CSRFToken header) or "
        "`Authorization: Token <key>`. The token opens "
        "`/api/v2/realtime/ws/prices?token=<token>` from any origin listed in "
        "REALTIME_ALLOWED_ORIGINS until `expires_at` "
        "(REALTIME_CONNECTION_TOKEN_TTL seconds); it is checked at the "
        "handshake only. Limits count per user."
    ),
    request=None,
    responses={
        200: OpenApiResponse(
            ConnectionTokenSerializer,
            description="A token for the caller.",
            examples=[
                OpenApiExample(
                    "Token",
                    value={
                        "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIi"
                        "OiI0MiIsImlhdCI6MTczMTI0MDAwMCwiZXhwIjoxNzMxMjQwMzAw"
                        "LCJpc3MiOiJmbXBzaXRlIn0.signature",
                        "expires_at": "2024-11-10T12:05:00Z",
                    },
                    response_only=True,
                    status_codes=["200"],
                )
            ],
        ),
        401: OpenApiResponse(
            DetailSerializer,
            description="Not logged in, or an unknown DRF token "
            "(`WWW-Authenticate: Token`).",
        ),
        403: OpenApiResponse(
            DetailSerializer,
            description="A session without the CSRF token.",
        ),
        503: OpenApiResponse(
            DetailSerializer,
            description="REALTIME_CONNECTION_TOKEN_SECRET is not set.",
        ),
    },
    tags=TAGS,
)


class ConnectionTokenView(APIView):
    """Mint a connection token for the logged-in user (``sub`` = the user's id)."""

    # Token first: an anonymous caller gets 401 with ``WWW-Authenticate: Token``,
    # like the other endpoints (realtime/api/permissions.py).
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @connection_token_schema
    def post(self, request: Request) -> Response:
        if not connection_tokens_enabled():
            raise ConnectionTokensDisabled()
        token, expires_at = mint_connection_token(
            sub=str(request.user.pk), site_user=True
        )
        logger.info(
            "event=connection_token_issued user=%s expires_at=%s",
            request.user.pk,
            expires_at.isoformat(),
        )
        return Response(
            ConnectionTokenSerializer({"token": token, "expires_at": expires_at}).data
        )


class ConnectionTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Bearer <connection token>`` in the schema."""

    target_class = "realtime.api.authentication.ConnectionTokenAuthentication"
    name = "connectionToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A connection token; GET requests only.",
        }
