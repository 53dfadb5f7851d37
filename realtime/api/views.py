"""REST endpoints under /api/v2/realtime/ (docs/protocol.md, "REST").

Thin views in the HackSoft sense: parse and validate the request, call one
selector or service, shape the documented response. Health and freshness rules
are in realtime/api/selectors.py, the OpenAPI description in
realtime/api/schema.py, and store failures become a JSON 503 in one place
(realtime/api/exceptions.py). JSON is the default answer; a browser asking for
text/html gets DRF's browsable page of the same data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import ClassVar

from django.urls import URLPattern, reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime import services
from realtime.api import schema, selectors
from realtime.api.permissions import CanReadRealtime, IsStaffUser
from realtime.api.renderers import BrowsableAPIRenderer
from realtime.api.serializers import (
    parse_cache_limit,
    parse_rest_symbol,
    parse_symbols_body,
)
from realtime.paths import PRICES_PATH

# --- API roots ----------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def listed_routes(patterns: Iterable[URLPattern]) -> dict[str, str]:
    """Name -> route of each named pattern, a parameter shown as ``{name}``: what
    realtime/api/urls.py hands the root view (as DRF's router hands its
    ``APIRootView`` the routes it registered)."""
    return {
        pattern.name: _CONVERTER.sub(r"{\1}", str(pattern.pattern))
        for pattern in patterns
        if pattern.name is not None
    }


@extend_schema(exclude=True)
class RealtimeRootView(APIView):
    """The realtime endpoints under /api/v2/realtime/, each with its URL.

    realtime/api/urls.py builds it with ``routes=listed_routes(...)`` of its own
    patterns, so a route added there is listed here too.
    """

    permission_classes = [AllowAny]
    routes: ClassVar[dict[str, str]] = {}

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri(reverse("realtime:root"))
        return Response({name: base + route for name, route in self.routes.items()})


@extend_schema(exclude=True)
class ApiRootView(APIView):
    """``/api/``: where everything of the API is, for people and crawlers."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        scheme = "wss" if request.is_secure() else "ws"
        return Response(
            {
                "realtime": request.build_absolute_uri(reverse("realtime:root")),
                "websocket": f"{scheme}://{request.get_host()}/{PRICES_PATH}",
                "schema": request.build_absolute_uri(reverse("schema")),
                "docs": request.build_absolute_uri(reverse("swagger-ui")),
                "health": request.build_absolute_uri(reverse("health")),
                "metrics": request.build_absolute_uri(reverse("metrics")),
            }
        )


# --- Health and status --------------------------------------------------------------


class HealthView(APIView):
    """Liveness of the feed and of this process's fan-out, for people and load
    balancers.

    Open to anyone, whatever ``REALTIME_ALLOW_ANONYMOUS`` says: load balancers probe
    it without credentials (docs/operations.md), and it is exempt from the HTTPS
    redirect for the same reason.
    """

    authentication_classes: ClassVar[list] = []
    permission_classes = [AllowAny]

    @schema.health_schema
    def get(self, request: Request) -> Response:
        health = selectors.feed_health()
        return Response(health.body, status=health.status_code)


@extend_schema_view(get=extend_schema(exclude=True))
class RootHealthView(HealthView):
    """``/health`` at the site root, probed by the guide's troubleshooting section;
    the same view, documented once under /api/v2/realtime/health."""


class StatusView(APIView):
    permission_classes = [CanReadRealtime]

    @schema.status_schema
    def get(self, request: Request) -> Response:
        return Response(selectors.feed_status())


# --- Pinned subscriptions -----------------------------------------------------------


class SymbolsChangeView(APIView):
    """Pin or unpin server-side subscriptions: one implementation, two verbs."""

    permission_classes = [IsStaffUser]
    change: ClassVar[Callable[..., list[str]]]
    message: ClassVar[str]

    def post(self, request: Request) -> Response:
        symbols = parse_symbols_body(request.data)
        changed = type(self).change(symbols=symbols, user=request.user)
        return Response(
            {
                "status": "success",
                "message": self.message.format(count=len(symbols)),
                "symbols": symbols,
                "subscribed_total": services.subscribed_total(),
                "changed": changed,
            }
        )


@extend_schema_view(post=schema.subscribe_schema)
class SubscribeView(SymbolsChangeView):
    change = staticmethod(services.pins_add)
    message = "Subscribed to {count} symbols"


@extend_schema_view(post=schema.unsubscribe_schema)
class UnsubscribeView(SymbolsChangeView):
    change = staticmethod(services.pins_remove)
    message = "Unsubscribed from {count} symbols"


# --- Latest-price cache -------------------------------------------------------------


class CacheListView(APIView):
    permission_classes = [CanReadRealtime]

    @schema.cache_list_schema
    def get(self, request: Request) -> Response:
        limit = parse_cache_limit(request.query_params.get("limit"))
        return Response(selectors.cache_page(limit))


class CacheSymbolView(APIView):
    permission_classes = [CanReadRealtime]

    @schema.cache_symbol_schema
    def get(self, request: Request, symbol: str) -> Response:
        symbol = parse_rest_symbol(symbol)
        entry = selectors.cache_entry(symbol)
        if entry is None:
            raise NotFound(f"No cached data for {symbol}")
        return Response(entry)


# --- Schema and docs ----------------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: the OpenAPI document (YAML for curl and tools, JSON with
    ``?format=json`` or by Accept), and a readable page for a browser, which asks
    for text/html and would otherwise download a ``.yaml`` file."""

    renderer_classes = [*SpectacularAPIView.renderer_classes, BrowsableAPIRenderer]


class SwaggerView(SpectacularSwaggerSplitView):
    """``/api/docs/``: Swagger UI from drf-spectacular-sidecar (served by the
    product, so it works offline) with its init script as a separate file and no
    inline style, so the page runs under the Content-Security-Policy."""

    template_name = "api/swagger_ui.html"
