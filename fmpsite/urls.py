from django.contrib import admin
from django.urls import include, path, re_path

from realtime.api import exceptions

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v2/realtime/", include("realtime.api.urls")),
    path("", include("fmpsite.api_urls")),
    path("", include("dashboard.urls")),
    # Last: any other path under /api/ is a JSON 404, with DEBUG on too.
    re_path(r"^api/", exceptions.api_not_found, name="api-not-found"),
]

# Errors raised outside DRF's views (an oversized body, a 500): JSON under /api/,
# Django's pages elsewhere.
handler400 = exceptions.json_bad_request
handler403 = exceptions.json_permission_denied
handler404 = exceptions.json_not_found
handler500 = exceptions.json_server_error
