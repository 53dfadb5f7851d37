"""Site-level API routes: the OpenAPI schema and docs, and Prometheus metrics.

Included at the site root from fmpsite/urls.py (``path("", include(...))``). The
REST endpoints themselves are in realtime/api/urls.py under /api/v2/realtime/.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from realtime.api.metrics_view import metrics_view
from realtime.api.views import RootHealthView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
    path("metrics", metrics_view, name="metrics"),
    # The guide's troubleshooting section probes ``curl http://localhost:8000/health``.
    path("health", RootHealthView.as_view(), name="health"),
]
