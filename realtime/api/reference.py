"""``GET /api/v2/realtime/reference/{symbol}``: a symbol's reference data.

Name, exchange, asset class, previous close, open and the day's range, from FMP's
REST quote endpoint (or the simulator's), cached per trading day
(realtime/reference/). 404 when FMP does not know the symbol, 503 when FMP's REST
API cannot answer now (no key and no simulator, back-off after a 429, network).
Same read permission as ``/cache/{symbol}``.
"""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.api.permissions import CanReadRealtime
from realtime.api.schema import (
    NOT_ACCEPTABLE,
    SYMBOL_PATH_PARAMETER,
    TAGS,
    detail_response,
)
from realtime.api.serializers import parse_rest_symbol
from realtime.reference import selectors

logger = logging.getLogger(__name__)

ASSET_CLASSES = ("stock", "etf", "index", "crypto", "forex", "commodity", "unknown")


class ReferenceUnavailable(APIException):
    status_code = http.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Reference data is unavailable right now; try again later."
    default_code = "reference_unavailable"


class ReferenceSerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text="Canonical (upper-case) symbol.")
    name = serializers.CharField(allow_null=True, help_text="Company or asset name.")
    exchange = serializers.CharField(
        allow_null=True, help_text="FMP's exchange: NASDAQ, NYSE, CRYPTO, FOREX ..."
    )
    asset_class = serializers.ChoiceField(
        choices=ASSET_CLASSES, help_text="Derived from the exchange."
    )
    previous_close = serializers.FloatField(
        allow_null=True, help_text="Close of the previous session."
    )
    open = serializers.FloatField(allow_null=True, help_text="Session open.")
    day_high = serializers.FloatField(
        allow_null=True, help_text="Session high when fetched."
    )
    day_low = serializers.FloatField(
        allow_null=True, help_text="Session low when fetched."
    )
    simulated = serializers.BooleanField(
        help_text="True when the built-in simulator, not FMP, produced it."
    )
    trading_day = serializers.CharField(
        help_text="Trading day (ISO date, New York; rolls at 09:30) it belongs to."
    )


_EXAMPLE = {
    "symbol": "AAPL",
    "name": "Apple Inc.",
    "exchange": "NASDAQ",
    "asset_class": "stock",
    "previous_close": 189.84,
    "open": 190.12,
    "day_high": 191.05,
    "day_low": 189.2,
    "simulated": False,
    "trading_day": "2026-11-30",
}


reference_schema = extend_schema(
    operation_id="realtime_reference_retrieve",
    summary="Reference data of one symbol (name, previous close, open)",
    description=(
        "From FMP's REST quote endpoint with the server's key (or the built-in "
        "simulator's), cached per symbol per trading day. The symbol is "
        "normalised (`aapl` finds `AAPL`)."
    ),
    parameters=[SYMBOL_PATH_PARAMETER],
    responses={
        200: ReferenceSerializer,
        400: detail_response(
            400, "Invalid symbol", "Invalid symbol", "Invalid symbol: 'A A'"
        ),
        401: detail_response(
            401,
            "No credentials (anonymous reads are off) or a bad token",
            "No credentials (anonymous reads are off) or a bad token",
            "Authentication credentials were not provided.",
        ),
        403: detail_response(
            403,
            "Not allowed",
            "Not allowed",
            "You do not have permission to perform this action.",
        ),
        404: detail_response(
            404, "Unknown symbol", "Unknown symbol", "Unknown symbol: ZZZZZZ"
        ),
        406: NOT_ACCEPTABLE,
        503: detail_response(
            503,
            "FMP's REST API cannot answer now",
            "FMP's REST API cannot answer now",
            ReferenceUnavailable.default_detail,
        ),
    },
    examples=[
        OpenApiExample("AAPL", value=_EXAMPLE, response_only=True, status_codes=["200"])
    ],
    tags=TAGS,
)


class ReferenceView(APIView):
    permission_classes = [CanReadRealtime]

    @reference_schema
    def get(self, request: Request, symbol: str) -> Response:
        symbol = parse_rest_symbol(symbol)
        resolution = selectors.resolve_sync([symbol])
        reference = resolution.references.get(symbol)
        if reference is not None:
            return Response(ReferenceSerializer(reference.to_dict()).data)
        if symbol in resolution.unknown:
            raise NotFound(f"Unknown symbol: {symbol}")
        status = selectors.reference_status()
        logger.info(
            "event=reference_unavailable symbol=%s error=%s",
            symbol,
            status["last_error"],
        )
        raise ReferenceUnavailable()
