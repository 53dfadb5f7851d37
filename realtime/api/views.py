"""REST endpoints under /api/v2/realtime/ (PROTOCOL.md, "REST").

Thin views in the HackSoft sense: parse and validate the request, call one
selector or service, shape the documented response. The feed may run in another
process (scaled mode), so health and status read the status it publishes
(realtime/feed/status.py) and the shared tick cache (realtime/feed/cache.py),
never the feed.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status as http
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime import services
from realtime.api.permissions import CanReadRealtime, IsStaffUser
from realtime.api.serializers import (
    CACHE_LIMIT_DEFAULT,
    CACHE_LIMIT_MAX,
    MAX_SYMBOLS_PER_REQUEST,
    SYMBOLS_BODY_SCHEMA,
    CacheListSerializer,
    CacheSymbolSerializer,
    DetailSerializer,
    HealthSerializer,
    StatusSerializer,
    SymbolsChangeSerializer,
    parse_cache_limit,
    parse_symbols_body,
)
from realtime.feed.cache import get_tick_cache
from realtime.feed.state import to_cache_entry, utc_now_iso
from realtime.feed.status import FeedStatus, read_feed_status
from realtime.symbols import InvalidSymbol, normalize_symbol

logger = logging.getLogger(__name__)

# Redis (scaled mode) being down must give a clear 503, not a 500.
STORE_ERRORS = (redis.RedisError, OSError)


class StoreUnavailable(APIException):
    status_code = http.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The tick cache or feed status store is unavailable."
    default_code = "store_unavailable"


def _cached_symbols() -> list[str]:
    try:
        return get_tick_cache().symbols()
    except STORE_ERRORS as exc:
        logger.warning("event=cache_read_failed error=%r", exc)
        raise StoreUnavailable() from exc


def _feed_status() -> FeedStatus | None:
    try:
        return read_feed_status()
    except STORE_ERRORS as exc:
        logger.warning("event=status_read_failed error=%r", exc)
        raise StoreUnavailable() from exc


# --- Examples shared by the schema --------------------------------------------------

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
_FORBIDDEN = OpenApiResponse(
    DetailSerializer,
    description="Not allowed (anonymous access is off, or not staff for writes).",
    examples=[
        OpenApiExample(
            "Anonymous",
            value={"detail": "Authentication credentials were not provided."},
            response_only=True,
            status_codes=["403"],
        )
    ],
)
_UNAVAILABLE = OpenApiResponse(
    DetailSerializer, description="Redis (scaled mode) is unreachable."
)


def _detail_400(example: str) -> OpenApiResponse:
    return OpenApiResponse(
        DetailSerializer,
        description="Bad request; `detail` names the bad value.",
        examples=[
            OpenApiExample(
                "Bad request",
                value={"detail": example},
                response_only=True,
                status_codes=["400"],
            )
        ],
    )


# --- Health and status --------------------------------------------------------------


def _health_body(
    feed: FeedStatus | None, cached_symbols: list[str]
) -> tuple[dict[str, Any], bool]:
    """PROTOCOL.md's health body and whether the feed counts as healthy."""
    if feed is None:
        body: dict[str, Any] = {
            "status": "stopped",
            "is_running": False,
            "api_configured": False,
            "subscribed_symbols": [],
            "cached_symbols": cached_symbols,
            "callbacks_registered": 0,
            "reconnect_attempts": 0,
            "source": None,
            "last_error": "The feed has not reported its status yet",
            "total_clients": 0,
            "last_tick_at": None,
            "heartbeat_at": None,
            "stale": True,
            "updated_at": None,
        }
        return body, False
    fresh = feed.is_fresh()
    running = feed.is_running and fresh
    body = {
        # A feed that stopped reporting is not running, whatever it last said.
        "status": feed.state if fresh else "stopped",
        "is_running": running,
        "api_configured": feed.api_configured,
        "subscribed_symbols": list(feed.subscribed_symbols),
        "cached_symbols": cached_symbols,
        "callbacks_registered": feed.callbacks_registered,
        "reconnect_attempts": feed.reconnect_attempts,
        "source": feed.source,
        "last_error": feed.last_error,
        "total_clients": feed.total_clients,
        "last_tick_at": feed.last_tick_at,
        "heartbeat_at": feed.heartbeat_at,
        "stale": not fresh,
        "updated_at": feed.updated_at,
    }
    return body, running


class HealthView(APIView):
    """Liveness of the feed, for people and load balancers.

    Open to anyone, whatever ``REALTIME_ALLOW_ANONYMOUS`` says: load balancers probe
    it without credentials (docs/operations.md), and it is exempt from the HTTPS
    redirect for the same reason.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="realtime_health",
        summary="Feed health",
        description="200 while the feed worker is running and reporting (its status "
        "is fresher than REALTIME_STATUS_STALE_AFTER), 503 otherwise; the body is "
        "the same either way.",
        responses={
            200: OpenApiResponse(HealthSerializer, description="The feed is healthy."),
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
        tags=["realtime"],
    )
    def get(self, request: Request) -> Response:
        try:
            feed = read_feed_status()
            cached = get_tick_cache().symbols()
        except STORE_ERRORS as exc:
            logger.warning("event=health_store_failed error=%r", exc)
            body, _ = _health_body(None, [])
            body["last_error"] = f"Status store unavailable: {exc}"
            return Response(body, status=http.HTTP_503_SERVICE_UNAVAILABLE)
        body, healthy = _health_body(feed, cached)
        return Response(
            body,
            status=http.HTTP_200_OK if healthy else http.HTTP_503_SERVICE_UNAVAILABLE,
        )


@extend_schema_view(get=extend_schema(exclude=True))
class RootHealthView(HealthView):
    """``/health`` at the site root, probed by the guide's troubleshooting section;
    the same view, documented once under /api/v2/realtime/health."""


class StatusView(APIView):
    permission_classes = [CanReadRealtime]

    @extend_schema(
        operation_id="realtime_status",
        summary="Connection and cache status",
        responses={200: StatusSerializer, 403: _FORBIDDEN, 503: _UNAVAILABLE},
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
        tags=["realtime"],
    )
    def get(self, request: Request) -> Response:
        feed = _feed_status()
        cached = _cached_symbols()
        body, running = _health_body(feed, cached)
        return Response(
            {
                "timestamp": utc_now_iso(),
                "connection_status": {
                    "is_connected": running and body["status"] == "connected",
                    "is_running": running,
                    "subscribed_symbols": body["subscribed_symbols"],
                    "total_clients": body["total_clients"],
                    "status": body["status"],
                },
                "cached_data": {"count": len(cached), "symbols": cached},
            }
        )


# --- Pinned subscriptions -----------------------------------------------------------

_SUBSCRIBE_REQUEST_EXAMPLES = [
    OpenApiExample(
        "Array (the guide's form)",
        value=["AAPL", "MSFT", "GOOGL"],
        request_only=True,
    ),
    OpenApiExample(
        "Object (extension)",
        value={"symbols": ["AAPL", "MSFT", "GOOGL"]},
        request_only=True,
    ),
]


def _symbols_change_schema(
    operation_id: str, verb: str, message: str, changed: list[str]
) -> Any:
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
            400: _detail_400("Invalid symbols: 'A A', '$$$'"),
            403: _FORBIDDEN,
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
        tags=["realtime"],
    )


class SubscribeView(APIView):
    permission_classes = [IsStaffUser]

    @_symbols_change_schema(
        "realtime_subscribe", "Pin", "Subscribed to 3 symbols", ["GOOGL"]
    )
    def post(self, request: Request) -> Response:
        symbols = parse_symbols_body(request.data)
        added = services.pins_add(symbols=symbols, user=request.user)
        return Response(
            {
                "status": "success",
                "message": f"Subscribed to {len(symbols)} symbols",
                "symbols": symbols,
                "subscribed_total": services.subscribed_total(),
                "changed": added,
            }
        )


class UnsubscribeView(APIView):
    permission_classes = [IsStaffUser]

    @_symbols_change_schema(
        "realtime_unsubscribe", "Unpin", "Unsubscribed from 3 symbols", ["AAPL"]
    )
    def post(self, request: Request) -> Response:
        symbols = parse_symbols_body(request.data)
        removed = services.pins_remove(symbols=symbols, user=request.user)
        return Response(
            {
                "status": "success",
                "message": f"Unsubscribed from {len(symbols)} symbols",
                "symbols": symbols,
                "subscribed_total": services.subscribed_total(),
                "changed": removed,
            }
        )


# --- Latest-price cache -------------------------------------------------------------


class CacheListView(APIView):
    permission_classes = [CanReadRealtime]

    @extend_schema(
        operation_id="realtime_cache_list",
        summary="Latest cached prices",
        description="Symbols in alphabetical order, at most `limit` of them.",
        parameters=[
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                OpenApiParameter.QUERY,
                description=f"1 to {CACHE_LIMIT_MAX}, default {CACHE_LIMIT_DEFAULT}.",
                default=CACHE_LIMIT_DEFAULT,
            )
        ],
        responses={
            200: CacheListSerializer,
            400: _detail_400("Invalid limit '0': expected an integer from 1 to 1000"),
            403: _FORBIDDEN,
            503: _UNAVAILABLE,
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
        tags=["realtime"],
    )
    def get(self, request: Request) -> Response:
        limit = parse_cache_limit(request.query_params.get("limit"))
        try:
            total = len(get_tick_cache().symbols())
            data = get_tick_cache().entries(limit)
        except STORE_ERRORS as exc:
            logger.warning("event=cache_read_failed error=%r", exc)
            raise StoreUnavailable() from exc
        return Response(
            {"total": total, "returned": len(data), "limit": limit, "data": data}
        )


class CacheSymbolView(APIView):
    permission_classes = [CanReadRealtime]

    @extend_schema(
        operation_id="realtime_cache_retrieve",
        summary="Latest cached price of one symbol",
        description="The symbol is normalised (`aapl` finds `AAPL`).",
        responses={
            200: CacheSymbolSerializer,
            400: _detail_400("Invalid symbol: 'A A'"),
            403: _FORBIDDEN,
            404: OpenApiResponse(
                DetailSerializer,
                description="Nothing cached for the symbol.",
                examples=[
                    OpenApiExample(
                        "Not cached",
                        value={"detail": "No cached data for AAPL"},
                        response_only=True,
                        status_codes=["404"],
                    )
                ],
            ),
            503: _UNAVAILABLE,
        },
        examples=[
            OpenApiExample(
                "AAPL",
                value={"symbol": "AAPL", "data": _ENTRY_EXAMPLE},
                response_only=True,
                status_codes=["200"],
            )
        ],
        tags=["realtime"],
    )
    def get(self, request: Request, symbol: str) -> Response:
        try:
            symbol = normalize_symbol(symbol)
        except InvalidSymbol as exc:
            raise ParseError(str(exc)) from exc
        try:
            state = get_tick_cache().get(symbol)
        except STORE_ERRORS as exc:
            logger.warning("event=cache_read_failed symbol=%s error=%r", symbol, exc)
            raise StoreUnavailable() from exc
        if state is None:
            raise NotFound(f"No cached data for {symbol}")
        return Response({"symbol": symbol, "data": to_cache_entry(state)})
