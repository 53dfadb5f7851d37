"""``GET /api/v2/realtime/bars/{symbol}?interval=1m``: a symbol's recent bars.

The same ``bar`` objects the stream sent, oldest first, from the bar history
(``backends().bar_history``, the store ``recover`` reads), one per window: a
revision (``"updated": true``) replaces the bar it revises. ``start``/``end``
(ms) select windows starting in ``[start, end)``; ``limit`` keeps the newest.
"""

from __future__ import annotations

import logging

import orjson
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.api import schema
from realtime.api.history import HistoryUnavailable, _int_param
from realtime.api.permissions import CanReadRealtime
from realtime.api.serializers import parse_rest_symbol
from realtime.backends import backends
from realtime.bars.keys import parse_intervals, stream_key

logger = logging.getLogger(__name__)

BARS_LIMIT_DEFAULT = 390  # a US trading day of 1-minute bars
BARS_LIMIT_MAX = 5000
MS_MAX = 2**53
# The schema names the configured intervals (read once, when the schema is built).
_INTERVALS = getattr(settings, "REALTIME_BAR_INTERVALS", "")


class BarsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    epoch = serializers.CharField(help_text="The bar stream's sequence space.")
    last_seq = serializers.IntegerField()
    bars = serializers.ListField(
        child=serializers.DictField(),
        help_text="bar objects (with seq), oldest first, one per window.",
    )


bars_schema = extend_schema(
    operation_id="realtime_bars_retrieve",
    summary="Recent OHLCV bars of one symbol and interval, oldest first",
    parameters=[
        schema.SYMBOL_PATH_PARAMETER,
        OpenApiParameter(
            "interval",
            {"type": "string", "enum": list(parse_intervals(_INTERVALS)) or ["1m"]},
            OpenApiParameter.QUERY,
            required=True,
            description="One of REALTIME_BAR_INTERVALS, e.g. 1m.",
        ),
        schema.integer_query(
            "limit",
            1,
            BARS_LIMIT_MAX,
            f"Newest bars kept, default {BARS_LIMIT_DEFAULT}.",
        ),
        schema.integer_query(
            "start", 0, MS_MAX, "Only windows starting at or after (ms)."
        ),
        schema.integer_query("end", 0, MS_MAX, "Only windows starting before (ms)."),
    ],
    responses={
        200: BarsSerializer,
        400: schema.detail_400("Unknown interval '7x'"),
        404: schema.detail_response(
            404,
            "No bar yet, or bars are off on this server.",
            "No bars",
            "No bars for AAPL@1m",
        ),
        **schema.READ_ERRORS,
    },
    tags=schema.TAGS,
)


class BarsView(APIView):
    permission_classes = [CanReadRealtime]

    @bars_schema
    def get(self, request: Request, symbol: str) -> Response:
        symbol = parse_rest_symbol(symbol)
        params = request.query_params
        interval = params.get("interval", "")
        intervals = backends().bar_intervals
        if intervals and interval not in intervals:
            raise ParseError(f"Unknown interval {interval[:10]!r}")
        limit = _int_param(params.get("limit"), "limit", 1, BARS_LIMIT_MAX)
        start = _int_param(params.get("start"), "start", 0, MS_MAX) or 0
        end = _int_param(params.get("end"), "end", 0, MS_MAX)
        if not intervals:
            # Bars are off (the default): nothing exists to find, as for a
            # stream before its first bar.
            raise NotFound("Bars are off on this server (REALTIME_BAR_INTERVALS)")
        key = stream_key(symbol, interval)
        history = backends().bar_history
        try:
            page = history.read(key, None, history.size)
        except Exception as exc:  # Redis down in scaled mode
            logger.warning("event=bars_read_failed key=%s error=%r", key, exc)
            raise HistoryUnavailable() from exc
        if page is None:
            raise NotFound(f"No bars for {key}")
        by_start: dict[int, dict] = {}
        for _, text in page.updates:
            bar = orjson.loads(text)
            if bar["start"] >= start and (end is None or bar["start"] < end):
                by_start[bar["start"]] = bar  # a revision replaces its bar
        bars = [by_start[s] for s in sorted(by_start)][-(limit or BARS_LIMIT_DEFAULT) :]
        return Response(
            {
                "symbol": symbol,
                "interval": interval,
                "epoch": page.epoch,
                "last_seq": page.last_seq,
                "bars": bars,
            }
        )
