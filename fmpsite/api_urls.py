"""Site-level API routes: the API root, the OpenAPI schema and docs, Prometheus
metrics and the guide's ``/health``.

Included at the site root from fmpsite/urls.py (``path("", include(...))``). The
REST endpoints themselves are in realtime/api/urls.py under /api/v2/realtime/.
"""

from django.urls import path

from realtime.api.metrics_view import metrics_view
from realtime.api.views import ApiRootView, RootHealthView, SchemaView, SwaggerView

urlpatterns = [
    path("api/", ApiRootView.as_view(), name="api-root"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("metrics", metrics_view, name="metrics"),
    # The guide's troubleshooting section probes ``curl http://localhost:8000/health``.
    path("health", RootHealthView.as_view(), name="health"),
]
