"""REST endpoints under /api/v2/realtime/ (docs/protocol.md, "REST").

Paths have no trailing slash, exactly as the guide's curl commands call them, so
those commands get JSON and never a redirect. The API root (``""``) lists every
route of ``endpoints``, parameters as ``{name}``: this module hands it the list,
so realtime/api/views.py never imports this module back. (The WebSocket route
lives in realtime/fanout/routing.py.)
"""

from django.urls import path

from realtime.api import views
from realtime.api.alerts import AlertDetailView, AlertEventListView, AlertListView
from realtime.api.bars import BarsView
from realtime.api.connection_token import ConnectionTokenView
from realtime.api.history import HistoryView
from realtime.api.reference import ReferenceView

app_name = "realtime"
endpoints = [
    path("health", views.HealthView.as_view(), name="health"),
    path("status", views.StatusView.as_view(), name="status"),
    path("subscribe", views.SubscribeView.as_view(), name="subscribe"),
    path("unsubscribe", views.UnsubscribeView.as_view(), name="unsubscribe"),
    path("cache", views.CacheListView.as_view(), name="cache"),
    # path: symbols may contain "/" (forex such as EUR/USD is a valid symbol).
    path("cache/<path:symbol>", views.CacheSymbolView.as_view(), name="cache-symbol"),
    path("connection-token", ConnectionTokenView.as_view(), name="connection-token"),
    path("reference/<path:symbol>", ReferenceView.as_view(), name="reference"),
    path("history/<path:symbol>", HistoryView.as_view(), name="history"),
    path("bars/<path:symbol>", BarsView.as_view(), name="bars"),
    path("alerts", AlertListView.as_view(), name="alerts"),
    path("alerts/events", AlertEventListView.as_view(), name="alert-events"),
    path("alerts/<int:pk>", AlertDetailView.as_view(), name="alert"),
]
urlpatterns = [
    path(
        "",
        views.RealtimeRootView.as_view(routes=views.listed_routes(endpoints)),
        name="root",
    ),
    *endpoints,
]
