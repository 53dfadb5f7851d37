"""OpenAPI description of the REST API: decorations, examples, security.

Kept apart from the views so realtime/api/views.py shows what each endpoint does
and this module what the schema says about it. Each ``*_schema`` below is a
decorator for one view method. Every endpoint module has the same shape: the
single-endpoint modules (history.py, reference.py, connection_token.py) declare
their ``*_schema`` beside their view, above it, from the shared pieces here
(``SYMBOL_PATH_PARAMETER``, ``READ_ERRORS``, ``detail_response`` ...).

The schema is as strict as the API: symbols carry the REST pattern and length
bounds (realtime/api/serializers.py), the symbol bodies their item bounds, and
reads declare anonymous access (``{}`` in ``security``) exactly when
``REALTIME_ALLOW_ANONYMOUS`` is on.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)

from realtime.api.serializers import (
    CACHE_LIMIT_DEFAULT,
    CACHE_LIMIT_MAX,
    MAX_SYMBOLS_PER_REQUEST,
    REST_SYMBOL_MAX_LENGTH,
    REST_SYMBOL_PATTERN,
    CacheListSerializer,
    CacheSymbolSerializer,
    DetailSerializer,
    HealthSerializer,
    StatusSerializer,
    SymbolsChangeSerializer,
)

TAGS = ["realtime"]
REQUIRED_BODY_OPERATIONS = {"realtime_subscribe", "realtime_unsubscribe"}


class RealtimeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema; ``security`` also lists ``{}`` (no
    credentials) for views whose permission says anonymous callers are let in
    (``anonymous_allowed()``), so the schema matches the deployment's setting."""

    def get_auth(self) -> list[dict[str, Any]]:
        auths = super().get_auth()
        anonymous = any(
            getattr(permission, "anonymous_allowed", lambda: False)()
            for permission in self.view.get_permissions()
        )
        if anonymous and {} not in auths:
            auths.append({})
        return auths

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        # A body given as a raw JSON Schema is never marked required by
        # drf-spectacular; the symbol bodies are (an empty body is a 400).
        body = super()._get_request_body(direction)
        if body is not None and self.get_operation_id() in REQUIRED_BODY_OPERATIONS:
            body["required"] = True
        return body


# --- Shared pieces ------------------------------------------------------------------

SYMBOL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": REST_SYMBOL_PATTERN,
    "minLength": 1,
    "maxLength": REST_SYMBOL_MAX_LENGTH,
    "description": "A ticker such as AAPL, BRK.B, ^GSPC or EUR/USD. Case-insensitive "
    "(normalised to upper case); ASCII only, no surrounding spaces.",
}


def integer_query(
    name: str,
    minimum: int,
    maximum: int,
    description: str,
    default: int | None = None,
) -> OpenApiParameter:
    """A bounded integer query parameter, described as ``_int_param`` checks it
    (realtime/api/history.py): history, bars and the cache list share the shape."""
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return OpenApiParameter(
        name, schema, OpenApiParameter.QUERY, description=description
    )


# ``{symbol}`` in a path: the same pattern (reused by realtime/api/reference.py).
SYMBOL_PATH_PARAMETER = OpenApiParameter(
    "symbol", SYMBOL_SCHEMA, OpenApiParameter.PATH, required=True
)
_SYMBOL_LIST: dict[str, Any] = {
    "type": "array",
    "items": SYMBOL_SCHEMA,
    "minItems": 1,
    "maxItems": MAX_SYMBOLS_PER_REQUEST,
}
SYMBOLS_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _SYMBOL_LIST,
        {
            "type": "object",
            "properties": {"symbols": _SYMBOL_LIST},
            "required": ["symbols"],
        },
    ],
    "description": "A JSON array of symbols (the guide's form) or "
    '{"symbols": [...]} (extension).',
}

_ENTRY_EXAMPLE = {
    "symbol": "AAPL",
    "timestamp": 1699564800000,
    "type": "T",
    "last_price": 189.45,
    "last_size": 1000,
    "ask_price": 189.46,
    "ask_size": 5000,
    "bid_price": 189.44,
    "bid_size": 3000,
    "cached_at": "2024-11-10T12:00:00",
}
_HEALTH_EXAMPLE = {
    "status": "connected",
    "is_running": True,
    "api_configured": True,
    "subscribed_symbols": ["AAPL", "MSFT"],
    "cached_symbols": ["AAPL", "MSFT", "TSLA"],
    "callbacks_registered": 1,
    "reconnect_attempts": 0,
    "source": "fmp",
    "last_error": None,
    "total_clients": 5,
    "last_tick_at": 1699564800.2,
    "heartbeat_at": 1699564799.0,
    "stale": False,
    "updated_at": 1699564800.5,
}


def detail_response(
    status: int, description: str, name: str, detail: str
) -> OpenApiResponse:
    """An error response of the API (``{"detail": ...}``) with one example."""
    return OpenApiResponse(
        DetailSerializer,
        description=description,
        examples=[
            OpenApiExample(
                name,
                value={"detail": detail},
                response_only=True,
                status_codes=[str(status)],
            )
        ],
    )


UNAUTHENTICATED = detail_response(
    401,
    "No credentials where they are needed (anonymous reads are off, "
    "or a write), or a bad token. Carries `WWW-Authenticate: Token`.",
    "Anonymous",
    "Authentication credentials were not provided.",
)
FORBIDDEN = detail_response(
    403,
    "Authenticated, but not allowed (writes are for staff only).",
    "Not staff",
    "Only staff users may change server-side subscriptions.",
)
NOT_ACCEPTABLE = OpenApiResponse(
    DetailSerializer,
    description="The Accept header asks for neither JSON nor HTML.",
)
UNAVAILABLE = OpenApiResponse(
    DetailSerializer, description="Redis (scaled mode) is unreachable."
)
READ_ERRORS = {401: UNAUTHENTICATED, 406: NOT_ACCEPTABLE, 503: UNAVAILABLE}


def detail_400(example: str) -> OpenApiResponse:
    return detail_response(
        400, "Bad request; `detail` names the bad value.", "Bad request", example
    )


# --- Health and status --------------------------------------------------------------

health_schema = extend_schema(
    operation_id="realtime_health",
    summary="Feed health",
    description="200 while the feed worker is running and reporting (its status is "
    "fresher than REALTIME_STATUS_STALE_AFTER) and this process's fan-out works, "
    "503 otherwise; the body is the same either way (with `fanout_error` when the "
    "fan-out failed). Open to anyone, for load balancers.",
    responses={
        200: OpenApiResponse(HealthSerializer, description="The feed is healthy."),
        406: NOT_ACCEPTABLE,
        503: OpenApiResponse(
            HealthSerializer, description="The feed is stopped or not reporting."
        ),
    },
    examples=[
        OpenApiExample("Healthy", value=_HEALTH_EXAMPLE, status_codes=["200"]),
        OpenApiExample(
            "Never reported",
            value={
                **_HEALTH_EXAMPLE,
                "status": "stopped",
                "is_running": False,
                "api_configured": False,
                "subscribed_symbols": [],
                "cached_symbols": [],
                "callbacks_registered": 0,
                "source": None,
                "last_error": "The feed has not reported its status yet",
                "total_clients": 0,
                "last_tick_at": None,
                "heartbeat_at": None,
                "stale": True,
                "updated_at": None,
            },
            status_codes=["503"],
        ),
    ],
    tags=TAGS,
)

status_schema = extend_schema(
    operation_id="realtime_status",
    summary="Connection and cache status",
    responses={200: StatusSerializer, **READ_ERRORS},
    examples=[
        OpenApiExample(
            "Connected",
            value={
                "timestamp": "2024-11-10T12:00:00.000+00:00",
                "connection_status": {
                    "is_connected": True,
                    "is_running": True,
                    "subscribed_symbols": ["AAPL", "MSFT"],
                    "total_clients": 5,
                    "status": "connected",
                },
                "cached_data": {"count": 3, "symbols": ["AAPL", "MSFT", "TSLA"]},
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
    tags=TAGS,
)

# --- Pinned subscriptions -----------------------------------------------------------

_SUBSCRIBE_REQUEST_EXAMPLES = [
    OpenApiExample(
        "Array (the guide's form)", value=["AAPL", "MSFT", "GOOGL"], request_only=True
    ),
    OpenApiExample(
        "Object (extension)",
        value={"symbols": ["AAPL", "MSFT", "GOOGL"]},
        request_only=True,
    ),
]


def symbols_change_schema(
    operation_id: str, verb: str, message: str, changed: list[str]
) -> Any:
    """The schema of ``subscribe`` and ``unsubscribe``, which differ in words only."""
    return extend_schema(
        operation_id=operation_id,
        summary=f"{verb} server-side subscriptions (staff)",
        description="Server-side subscriptions hold with no client connected and "
        "survive restarts. Staff only: a staff session (with the CSRF token) or "
        "`Authorization: Token <key>` of a staff user. The body is a JSON array of "
        f'1 to {MAX_SYMBOLS_PER_REQUEST} symbols or `{{"symbols": [...]}}`; if any '
        "symbol is invalid nothing changes and the 400 names it.",
        request={"application/json": SYMBOLS_BODY_SCHEMA},
        responses={
            200: SymbolsChangeSerializer,
            400: detail_400("Invalid symbols: 'A A', '$$$'"),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            406: NOT_ACCEPTABLE,
            413: OpenApiResponse(
                DetailSerializer,
                description="The body is over DATA_UPLOAD_MAX_MEMORY_SIZE.",
            ),
            415: OpenApiResponse(
                DetailSerializer, description="The body is not application/json."
            ),
        },
        examples=[
            *_SUBSCRIBE_REQUEST_EXAMPLES,
            OpenApiExample(
                "Success",
                value={
                    "status": "success",
                    "message": message,
                    "symbols": ["AAPL", "MSFT", "GOOGL"],
                    "subscribed_total": 10,
                    "changed": changed,
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
        tags=TAGS,
    )


subscribe_schema = symbols_change_schema(
    "realtime_subscribe", "Pin", "Subscribed to 3 symbols", ["GOOGL"]
)
unsubscribe_schema = symbols_change_schema(
    "realtime_unsubscribe", "Unpin", "Unsubscribed from 3 symbols", ["AAPL"]
)

# --- Latest-price cache -------------------------------------------------------------

cache_list_schema = extend_schema(
    operation_id="realtime_cache_list",
    summary="Latest cached prices",
    description="Symbols in alphabetical order, at most `limit` of them.",
    parameters=[
        OpenApiParameter(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": CACHE_LIMIT_MAX,
                "default": CACHE_LIMIT_DEFAULT,
            },
            OpenApiParameter.QUERY,
            description=f"1 to {CACHE_LIMIT_MAX}, default {CACHE_LIMIT_DEFAULT}.",
        )
    ],
    responses={
        200: CacheListSerializer,
        400: detail_400("Invalid limit '0': expected an integer from 1 to 1000"),
        **READ_ERRORS,
    },
    examples=[
        OpenApiExample(
            "One symbol",
            value={
                "total": 1,
                "returned": 1,
                "limit": 50,
                "data": {"AAPL": _ENTRY_EXAMPLE},
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
    tags=TAGS,
)

cache_symbol_schema = extend_schema(
    operation_id="realtime_cache_retrieve",
    summary="Latest cached price of one symbol",
    description="The symbol is normalised (`aapl` finds `AAPL`).",
    parameters=[SYMBOL_PATH_PARAMETER],
    responses={
        200: CacheSymbolSerializer,
        400: detail_400("Invalid symbol: 'A A'"),
        404: detail_response(
            404,
            "Nothing cached for the symbol.",
            "Not cached",
            "No cached data for AAPL",
        ),
        **READ_ERRORS,
    },
    examples=[
        OpenApiExample(
            "AAPL",
            value={"symbol": "AAPL", "data": _ENTRY_EXAMPLE},
            response_only=True,
            status_codes=["200"],
        )
    ],
    tags=TAGS,
)
