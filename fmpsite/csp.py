"""Content-Security-Policy on every HTML page (Django 5.2 has none built in).

The product's pages load scripts and styles from this origin only: the
dashboard, the demo client, the admin, DRF's browsable API and Swagger UI (from
drf-spectacular-sidecar, with its init script as a file). So the policy allows
no inline script or style and no other origin; ``img-src data:`` is for
Swagger UI's inline SVG icons, ``connect-src ws: wss:`` for the price stream.
A page that sets its own policy keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "font-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    """Adds ``POLICY`` to every text/html response that has no policy of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html") and HEADER not in response:
            response[HEADER] = POLICY
        return response
