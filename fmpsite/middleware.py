"""Let probes and scrapers reach their paths by IP:port under strict ALLOWED_HOSTS.

A load balancer's health check, a Kubernetes probe or Prometheus connects to one
process by address (``Host: 10.0.0.12:8001``). With ``DJANGO_ALLOWED_HOSTS`` set
to the public name, Django would answer 400 and log an ERROR (DisallowedHost) for
every such request. This middleware, placed first, accepts any Host for exactly
``settings.PROBE_PATHS`` on GET and HEAD; every other path keeps Django's host
validation. The probe views build no absolute URL from the Host header, which is
what host validation protects. (The https redirect skips the same paths through
``SECURE_REDIRECT_EXEMPT``.)
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

PROBE_METHODS = frozenset({"GET", "HEAD"})


def _unvalidated_host(request: HttpRequest) -> Callable[[], str]:
    def get_host() -> str:
        host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        return host or "probe"

    return get_host


class ProbeHostMiddleware(MiddlewareMixin):
    """Skip host validation for the probe paths (and only those)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.paths = frozenset(
            "/" + path.strip("/") for path in getattr(settings, "PROBE_PATHS", ())
        )

    def process_request(self, request: HttpRequest) -> None:
        if request.method in PROBE_METHODS and request.path_info in self.paths:
            # An instance attribute shadows HttpRequest.get_host for this request.
            request.get_host = _unvalidated_host(request)  # type: ignore[method-assign]
