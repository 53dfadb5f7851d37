"""REST endpoints under /api/v2/realtime/ (PROTOCOL.md, "REST").

Paths have no trailing slash, exactly as the guide's curl commands call them, so
those commands get JSON and never a redirect. Every named route here is listed by
the API root (``""``, realtime/api/views.py), parameters as ``{name}``. (The
WebSocket route lives in realtime/fanout/routing.py.)
"""

from django.urls import path

from realtime.api import views
from realtime.api.connection_token import ConnectionTokenView
from realtime.api.history import HistoryView
from realtime.api.reference import ReferenceView

app_name = "realtime"
urlpatterns = [
    path("", views.RealtimeRootView.as_view(), name="root"),
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
]
