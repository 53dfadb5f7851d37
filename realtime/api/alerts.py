"""``/api/v2/realtime/alerts``: price alerts of the calling user, and their events.

Thin views (HackSoft): the serializers check types and bounds exactly as the
OpenAPI schema states them, the rules (symbol, limit, webhook target) are
realtime/alerts/services.py's, and their exceptions become a 400 (or a 409 for
the active limit) naming the bad value. For this site's users only (session or
DRF token, or a connection token for reads): an alert belongs to an account.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.alerts import selectors, services
from realtime.alerts.models import AlertEvent, Condition, Frequency, PriceAlert
from realtime.api.fields import (
    JsonBooleanField,
    NumberField,
    TextField,
    TextRegexField,
)
from realtime.api.schema import (
    TAGS,
    UNAUTHENTICATED,
    detail_response,
    integer_query,
)
from realtime.api.serializers import REST_SYMBOL_MAX_LENGTH, REST_SYMBOL_PATTERN

EVENTS_LIMIT_DEFAULT = 100
EVENTS_LIMIT_MAX = 1000
VALUE_BOUND = 1e9
# The port part spells 0..65535 (a 5-digit port past it was a schema-valid
# request answered 400, schemathesis ST202).
_PORT = (
    r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
)
WEBHOOK_URL_PATTERN = rf"^https?://[A-Za-z0-9.-]{{1,253}}(:{_PORT})?(/[!-~]*)?$"


class IsSiteUser(BasePermission):
    """A user of this site (alerts are rows owned by an account)."""

    message = "Alerts belong to an account of this site; log in or use its token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user is not None
            and user.is_authenticated
            and isinstance(user, get_user_model())
        )


class AlertSerializer(serializers.ModelSerializer):
    threshold = serializers.FloatField()
    hysteresis = serializers.FloatField()
    # Empty when the alert has no webhook (so not a ``uri``-formatted string).
    webhook_url = serializers.CharField(
        help_text="The webhook's URL, or an empty string when there is none."
    )

    class Meta:
        model = PriceAlert
        # What a client may set (services.EDITABLE), and what the server keeps.
        fields = ["id", *services.EDITABLE, "created_at", "updated_at"]
        read_only_fields = fields


class AlertWriteSerializer(serializers.Serializer):
    """What POST takes (PATCH: the same fields, each optional)."""

    symbol = TextRegexField(REST_SYMBOL_PATTERN, max_length=REST_SYMBOL_MAX_LENGTH)
    condition = serializers.ChoiceField(choices=Condition.choices)
    threshold = NumberField(min_value=-VALUE_BOUND, max_value=VALUE_BOUND)
    frequency = serializers.ChoiceField(choices=Frequency.choices, required=False)
    hysteresis = NumberField(min_value=0, max_value=VALUE_BOUND, required=False)
    active = JsonBooleanField(required=False)
    note = TextField(max_length=200, allow_blank=True, required=False)
    webhook_url = TextRegexField(
        WEBHOOK_URL_PATTERN,
        max_length=500,
        allow_blank=True,
        required=False,
        help_text="POSTed a signed JSON body when the alert fires (http/https; "
        "loopback and private addresses are refused unless the server allows them).",
    )


class AlertPatchSerializer(AlertWriteSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class AlertListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    alerts = AlertSerializer(many=True)


class AlertEventSerializer(serializers.ModelSerializer):
    threshold = serializers.FloatField()
    price = serializers.FloatField()
    value = serializers.FloatField(allow_null=True)

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "alert",
            "symbol",
            "condition",
            "threshold",
            "price",
            "value",
            "tick_ts",
            "seq",
            "epoch",
            "fired_at",
            "idempotency_key",
            "webhook_state",
            "webhook_attempts",
            "webhook_last_error",
            "webhook_delivered_at",
        ]
        read_only_fields = fields


class AlertEventListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    events = AlertEventSerializer(many=True)


def _parsed(serializer: serializers.Serializer) -> dict[str, Any]:
    """Validated data, or a 400 whose ``detail`` names the first bad field."""
    if not serializer.is_valid():
        errors = serializer.errors
        if isinstance(errors, dict) and errors:
            name, messages = next(iter(errors.items()))
            message = messages[0] if isinstance(messages, list) else messages
            raise ParseError(f"{name}: {message}")
        raise ParseError("Expected a JSON object")
    return dict(serializer.validated_data)


def _call(fn: Any, **kwargs: Any) -> PriceAlert:
    try:
        return fn(**kwargs)
    except services.AlertInvalid as exc:
        raise ParseError(f"{exc.field}: {exc}") from exc


LIMIT_REACHED = detail_response(
    409,
    "The account already has its maximum of active alerts.",
    "Limit",
    "An account may have at most 200 active alerts; pause or delete one",
)
NOT_FOUND = detail_response(404, "No such alert of yours.", "Missing", "No alert 7")
FORBIDDEN = detail_response(
    403,
    "Authenticated, but not as an account of this site.",
    "External token",
    IsSiteUser.message,
)
ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN}
BAD = detail_response(
    400,
    "Bad request; `detail` names the bad value. A `webhook_url` whose host is "
    "`localhost` or a literal loopback, private, link-local or other non-public "
    "address is refused here unless the server sets "
    "REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE (a name resolving to one is refused "
    "at delivery).",
    "Bad request",
    "webhook_url: webhook_url targets a non-public address: 10.0.0.5 "
    "(REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE allows it)",
)


class LimitReached(ParseError):
    status_code = http.HTTP_409_CONFLICT


class AlertListView(APIView):
    permission_classes = [IsSiteUser]

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_list",
        summary="Your price alerts",
        responses={200: AlertListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        alerts = selectors.alert_list(owner=request.user)
        return Response(
            {"count": len(alerts), "alerts": AlertSerializer(alerts, many=True).data}
        )

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_create",
        summary="Create a price alert",
        request=AlertWriteSerializer,
        responses={201: AlertSerializer, 400: BAD, 409: LIMIT_REACHED, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        values = _parsed(AlertWriteSerializer(data=request.data))
        try:
            alert = _call(services.alert_create, owner=request.user, **values)
        except services.AlertLimitReached as exc:
            raise LimitReached(str(exc)) from exc
        return Response(AlertSerializer(alert).data, status=http.HTTP_201_CREATED)


class AlertDetailView(APIView):
    permission_classes = [IsSiteUser]

    def _alert(self, request: Request, pk: int) -> PriceAlert:
        alert = selectors.alert_get(owner=request.user, pk=pk)
        if alert is None:
            raise NotFound(f"No alert {pk}")
        return alert

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_retrieve",
        summary="One of your price alerts",
        responses={200: AlertSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(AlertSerializer(self._alert(request, pk)).data)

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_partial_update",
        summary="Change a price alert (pause: active=false)",
        request=AlertPatchSerializer,
        responses={
            200: AlertSerializer,
            400: BAD,
            404: NOT_FOUND,
            409: LIMIT_REACHED,
            **ERRORS,
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        alert = self._alert(request, pk)
        values = _parsed(AlertPatchSerializer(data=request.data))
        try:
            alert = _call(services.alert_update, alert=alert, **values)
        except services.AlertLimitReached as exc:
            raise LimitReached(str(exc)) from exc
        return Response(AlertSerializer(alert).data)

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_destroy",
        summary="Delete a price alert (and its events)",
        responses={204: None, 404: NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.alert_delete(alert=self._alert(request, pk))
        return Response(status=http.HTTP_204_NO_CONTENT)


class AlertEventListView(APIView):
    permission_classes = [IsSiteUser]

    @extend_schema(
        tags=TAGS,
        operation_id="realtime_alerts_events",
        summary="Events your alerts fired, newest first",
        parameters=[
            integer_query(
                "limit",
                1,
                EVENTS_LIMIT_MAX,
                "Most events returned.",
                EVENTS_LIMIT_DEFAULT,
            ),
            integer_query("alert", 1, 2**53, "Only this alert's events."),
        ],
        responses={200: AlertEventListSerializer, 400: BAD, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), "limit", EVENTS_LIMIT_MAX)
        alert_id = _int(request.query_params.get("alert"), "alert", 2**53)
        events = selectors.alert_event_list(owner=request.user, alert_id=alert_id)
        page = list(events[: limit or EVENTS_LIMIT_DEFAULT])
        return Response(
            {"count": len(page), "events": AlertEventSerializer(page, many=True).data}
        )


def _int(raw: str | None, name: str, high: int) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ParseError(f"Invalid {name} {raw[:30]!r}: expected an integer")
    value = int(text)
    if not 1 <= value <= high:
        raise ParseError(f"Invalid {name} {value}: expected 1 to {high}")
    return value
