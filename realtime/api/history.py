"""``GET /api/v2/realtime/history/{symbol}``: a symbol's recent updates.

The same ``price_update`` objects the stream sent (each with its ``seq``), oldest
first, from the feed's bounded history (realtime/feed/history.py: memory in
embedded mode, Redis in scaled mode), so a chart can draw the last minutes at once
and a client can fill a gap in ``seq`` it saw. Same read permission as
``/cache/{symbol}``; 404 when the feed never published the symbol in this epoch.
"""

from __future__ import annotations

import logging
import re

import orjson
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
)
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.api.permissions import CanReadRealtime
from realtime.api.schema import (
    READ_ERRORS,
    SYMBOL_PATH_PARAMETER,
    TAGS,
    detail_400,
    detail_response,
    integer_query,
)
from realtime.api.serializers import parse_rest_symbol
from realtime.backends import backends

logger = logging.getLogger(__name__)

HISTORY_LIMIT_DEFAULT = 300
HISTORY_LIMIT_MAX = 1000
SEQ_MAX = 2**53  # the largest integer every JSON client reads exactly
_DIGITS = re.compile(r"[0-9]+")


class HistoryUnavailable(APIException):
    status_code = http.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The history store cannot be read right now; try again later."
    default_code = "history_unavailable"


def _int_param(raw: str | None, name: str, low: int, high: int) -> int | None:
    """An ASCII integer query parameter in [low, high], None when absent."""
    if raw is None:
        return None
    text = raw.strip()
    if not _DIGITS.fullmatch(text) or len(text) > 18 or not low <= int(text) <= high:
        raise ParseError(
            f"Invalid {name} {raw[:30]!r}: expected an integer from {low} to {high}"
        )
    return int(text)


class HistorySerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text="Canonical (upper-case) symbol.")
    epoch = serializers.CharField(
        help_text="The sequence space of the seq numbers; a new one after the "
        "history was lost (an embedded server restarted, Redis flushed)."
    )
    last_seq = serializers.IntegerField(
        help_text="The newest seq the feed published for the symbol."
    )
    updates = serializers.ListField(
        child=serializers.DictField(),
        help_text="price_update objects (with seq), oldest first.",
    )


_UPDATE_EXAMPLE = {
    "type": "price_update",
    "symbol": "AAPL",
    "timestamp": 1699564800000,
    "data_type": "T",
    "last_price": 189.45,
    "last_size": 100,
    "ask_price": 189.46,
    "ask_size": 200,
    "bid_price": 189.44,
    "bid_size": 300,
    "cached_at": "2024-11-10T12:00:00.123+00:00",
    "seq": 1235,
}


history_schema = extend_schema(
    operation_id="realtime_history_retrieve",
    summary="Recent updates of one symbol (with seq), oldest first",
    description=(
        "Without `after_seq`: the newest `limit` updates. With it: the first "
        "`limit` updates after that seq (page forward with the last seq "
        "returned). The server keeps at most REALTIME_HISTORY_SIZE updates per "
        "symbol, none older than REALTIME_HISTORY_SECONDS."
    ),
    parameters=[
        SYMBOL_PATH_PARAMETER,
        integer_query(
            "limit",
            1,
            HISTORY_LIMIT_MAX,
            f"1 to {HISTORY_LIMIT_MAX}, default {HISTORY_LIMIT_DEFAULT}.",
            default=HISTORY_LIMIT_DEFAULT,
        ),
        integer_query("after_seq", 0, SEQ_MAX, "Only updates whose seq is greater."),
    ],
    responses={
        200: HistorySerializer,
        400: detail_400("Invalid limit '0': expected an integer from 1 to 1000"),
        404: detail_response(
            404,
            "The feed has published nothing for the symbol.",
            "No history",
            "No history for AAPL",
        ),
        **READ_ERRORS,
    },
    examples=[
        OpenApiExample(
            "AAPL",
            value={
                "symbol": "AAPL",
                "epoch": "k3x9Qa1b",
                "last_seq": 1235,
                "updates": [_UPDATE_EXAMPLE],
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
    tags=TAGS,
)


class HistoryView(APIView):
    permission_classes = [CanReadRealtime]

    @history_schema
    def get(self, request: Request, symbol: str) -> Response:
        symbol = parse_rest_symbol(symbol)
        params = request.query_params
        limit = _int_param(params.get("limit"), "limit", 1, HISTORY_LIMIT_MAX)
        after = _int_param(params.get("after_seq"), "after_seq", 0, SEQ_MAX)
        try:
            page = backends().history.read(
                symbol, after, limit or HISTORY_LIMIT_DEFAULT
            )
        except Exception as exc:  # Redis down in scaled mode
            logger.warning("event=history_read_failed symbol=%s error=%r", symbol, exc)
            raise HistoryUnavailable() from exc
        if page is None:
            raise NotFound(f"No history for {symbol}")
        return Response(
            {
                "symbol": symbol,
                "epoch": page.epoch,
                "last_seq": page.last_seq,
                "updates": [orjson.loads(text) for _, text in page.updates],
            }
        )
