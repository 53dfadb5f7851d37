from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v2/realtime/", include("realtime.api.urls")),
    path("", include("fmpsite.api_urls")),
    path("", include("dashboard.urls")),
]
