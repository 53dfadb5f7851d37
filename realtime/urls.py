"""REST endpoints under /api/v2/realtime/ (PROTOCOL.md)."""

from django.urls import path  # noqa: F401

app_name = "realtime"
urlpatterns: list = []
