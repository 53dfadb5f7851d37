"""Request parsing and response shapes of the REST API (docs/protocol.md, "REST").

Views build their responses as plain dicts in the documented shapes; the
serializers below describe those shapes for the OpenAPI schema. Request bodies of
``subscribe``/``unsubscribe`` are parsed by ``parse_symbols_body``, which turns every
problem into a 400 whose ``detail`` names the bad value.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ParseError

from realtime.events import UPSTREAM_STATES
from realtime.symbols import InvalidSymbol, normalize_symbol, parse_symbols

MAX_SYMBOLS_PER_REQUEST = 100
CACHE_LIMIT_DEFAULT = 50
CACHE_LIMIT_MAX = 1000

_DIGITS = re.compile(r"[0-9]+")

# What the REST API takes as a symbol, before upper-casing: the shared rule
# (realtime/symbols.py) in either case, ASCII only and without the surrounding
# whitespace that rule would strip, so the OpenAPI pattern (realtime/api/schema.py)
# admits exactly what the API admits.
REST_SYMBOL_MAX_LENGTH = 20
REST_SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.=^/-]{0,19}$"
_REST_SYMBOL = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.=^/-]{0,19}")

FEED_STATES = list(UPSTREAM_STATES)


def _preview(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_rest_symbol(raw: object) -> str:
    """The canonical form of one REST symbol, or ParseError (400) naming it."""
    if not isinstance(raw, str) or not _REST_SYMBOL.fullmatch(raw):
        raise ParseError(f"Invalid symbol: {_preview(raw, 30)}")
    try:
        return normalize_symbol(raw)
    except InvalidSymbol as exc:
        raise ParseError(str(exc)) from exc


def parse_symbols_body(data: Any) -> list[str]:
    """The canonical symbols of a subscribe/unsubscribe body, or ParseError (400).

    Accepts the guide's bare JSON array ``["AAPL", "MSFT"]`` and the extension
    ``{"symbols": [...]}``. The whole request is refused when any symbol is bad, so
    a typo never half-applies a server-side change.
    """
    if isinstance(data, dict):
        if not data:  # DRF parses an empty body as {}
            raise ParseError(
                "Expected a JSON array of symbols or an object with a 'symbols' "
                "list; got an empty body"
            )
        if "symbols" not in data:
            raise ParseError(
                "Expected a JSON array of symbols or an object with a 'symbols' "
                f"list; got an object with keys {_preview(sorted(map(str, data)))}"
            )
        data = data["symbols"]
    if not isinstance(data, list):
        raise ParseError(
            'Expected a JSON array of symbols (or {"symbols": [...]}); '
            f"got {type(data).__name__} {_preview(data)}"
        )
    if not data:
        raise ParseError("No symbols given: send at least one symbol")
    if len(data) > MAX_SYMBOLS_PER_REQUEST:
        raise ParseError(
            f"Too many symbols: {len(data)} in one request "
            f"(at most {MAX_SYMBOLS_PER_REQUEST})"
        )
    not_strings = [item for item in data if not isinstance(item, str)]
    if not_strings:
        shown = ", ".join(_preview(v, 30) for v in not_strings[:5])
        raise ParseError(f"Symbols must be strings; got {shown}")
    try:
        parsed = parse_symbols(data)
    except InvalidSymbol as exc:  # parse_symbols refuses non-lists; checked above
        raise ParseError(str(exc)) from exc
    invalid = [v for v in data if not _REST_SYMBOL.fullmatch(v)] or list(parsed.invalid)
    if invalid:
        shown = ", ".join(_preview(v, 30) for v in invalid[:10])
        more = f" and {len(invalid) - 10} more" if len(invalid) > 10 else ""
        raise ParseError(f"Invalid symbols: {shown}{more}")
    return list(parsed.valid)


def parse_cache_limit(raw: str | None) -> int:
    """``?limit=`` of ``GET /cache``: an integer 1..1000, 50 when absent."""
    if raw is None:
        return CACHE_LIMIT_DEFAULT
    text = raw.strip()
    # ASCII digits only: int() would also take "1_000" and other scripts' digits.
    if (
        not _DIGITS.fullmatch(text)
        or len(text) > 7
        or not 1 <= int(text) <= CACHE_LIMIT_MAX
    ):
        raise ParseError(
            f"Invalid limit {_preview(raw)}: expected an integer from 1 to "
            f"{CACHE_LIMIT_MAX}"
        )
    return int(text)


# --- Shapes for the schema ----------------------------------------------------------


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, naming the bad value.")


class UpstreamDiagnosticsSerializer(serializers.Serializer):
    """Who leads the feed and what keeps FMP from serving: in /health and /status
    alike, so an operator reading either sees why prices stopped."""

    leader = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="The feed process that holds the FMP connection.",
    )
    last_failover = serializers.DictField(
        allow_null=True,
        required=False,
        help_text="The last change of leader: from, to, at (Unix time), gap_seconds.",
    )
    upstream_problem = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="What keeps the FMP connection from serving, in words.",
    )
    refused_symbols = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Symbols FMP refused, with FMP's message.",
    )
    refused_streams = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Streams FMP refused (standard socket), with FMP's message.",
    )
    unservable_symbols = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Symbols the configured legacy cluster cannot serve, with why.",
    )


class HealthSerializer(UpstreamDiagnosticsSerializer):
    status = serializers.ChoiceField(choices=FEED_STATES)
    is_running = serializers.BooleanField()
    api_configured = serializers.BooleanField(
        help_text="False when the feed runs on the built-in simulator without a key."
    )
    subscribed_symbols = serializers.ListField(child=serializers.CharField())
    cached_symbols = serializers.ListField(child=serializers.CharField())
    callbacks_registered = serializers.IntegerField()
    reconnect_attempts = serializers.IntegerField()
    # Extensions.
    source = serializers.ChoiceField(
        choices=["fmp", "simulator"], allow_null=True, required=False
    )
    last_error = serializers.CharField(allow_null=True, required=False)
    total_clients = serializers.IntegerField(required=False)
    last_tick_at = serializers.FloatField(
        allow_null=True, required=False, help_text="Unix time of the last tick."
    )
    heartbeat_at = serializers.FloatField(
        allow_null=True, required=False, help_text="Unix time of the last heartbeat."
    )
    stale = serializers.BooleanField(
        required=False,
        help_text="True when the feed's last report is older than "
        "REALTIME_STATUS_STALE_AFTER (or it never reported).",
    )
    updated_at = serializers.FloatField(
        allow_null=True, required=False, help_text="Unix time of the feed's report."
    )
    fanout_error = serializers.CharField(
        required=False,
        help_text="Present (and the status 503) when this process's fan-out to "
        "WebSocket clients has failed: why.",
    )


class ConnectionStatusSerializer(UpstreamDiagnosticsSerializer):
    is_connected = serializers.BooleanField()
    is_running = serializers.BooleanField()
    subscribed_symbols = serializers.ListField(child=serializers.CharField())
    total_clients = serializers.IntegerField(
        help_text="WebSocket clients across all server processes."
    )
    # Extension.
    status = serializers.ChoiceField(choices=FEED_STATES, required=False)


class CachedDataSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    symbols = serializers.ListField(child=serializers.CharField())


class StatusSerializer(serializers.Serializer):
    timestamp = serializers.CharField(help_text="Server time, ISO 8601 UTC.")
    connection_status = ConnectionStatusSerializer()
    cached_data = CachedDataSerializer()


class SymbolsChangeSerializer(serializers.Serializer):
    # A plain string: an enum here would collide with the feed-state "status" enum.
    status = serializers.CharField(help_text='Always "success".')
    message = serializers.CharField()
    symbols = serializers.ListField(
        child=serializers.CharField(), help_text="The request's symbols, normalised."
    )
    subscribed_total = serializers.IntegerField(
        help_text="Server-side subscriptions after the change: pinned symbols "
        "plus the symbols the feed is subscribed to upstream."
    )
    # Extension.
    changed = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Symbols actually pinned (or unpinned) by this request.",
    )


class TradeBreakSerializer(serializers.Serializer):
    price = serializers.FloatField(allow_null=True)
    size = serializers.FloatField(allow_null=True)


class CacheEntrySerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timestamp = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    type = serializers.ChoiceField(
        choices=["T", "Q", "B"], help_text="T trade, Q quote, B trade break."
    )
    last_price = serializers.FloatField(allow_null=True)
    last_size = serializers.FloatField(allow_null=True)
    ask_price = serializers.FloatField(allow_null=True)
    ask_size = serializers.FloatField(allow_null=True)
    bid_price = serializers.FloatField(allow_null=True)
    bid_size = serializers.FloatField(allow_null=True)
    cached_at = serializers.CharField(help_text="ISO 8601 UTC.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # ``break`` is a Python keyword, so it cannot be a class attribute.
        fields["break"] = TradeBreakSerializer(
            required=False, help_text="Extension: the trade a break cancelled."
        )
        return fields


class CacheListSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Symbols in the cache.")
    returned = serializers.IntegerField()
    limit = serializers.IntegerField()
    data = serializers.DictField(child=CacheEntrySerializer())


class CacheSymbolSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    data = CacheEntrySerializer()
