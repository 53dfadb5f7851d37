"""Every error under /api/ answers JSON, with one handler per layer.

- ``api_exception_handler`` is DRF's EXCEPTION_HANDLER: DRF's own exceptions as
  usual, and a shared store (Redis in scaled mode) that fails becomes a 503 with a
  ``detail``, logged once, instead of a 500, and a body over
  DATA_UPLOAD_MAX_MEMORY_SIZE a JSON 413. Views and selectors let store errors
  rise; none of them catches them by hand.
- ``json_bad_request`` / ``json_permission_denied`` / ``json_not_found`` /
  ``json_server_error`` are Django's handler400/403/404/500 (fmpsite/urls.py):
  for paths under /api/ they answer JSON (a body over DATA_UPLOAD_MAX_MEMORY_SIZE
  is a 413), elsewhere they hand over to Django's HTML pages.
- ``json_csrf_failure`` is CSRF_FAILURE_VIEW, JSON under /api/ too.
- ``api_not_found`` is the catch-all route under /api/, so an unknown API path is
  a JSON 404 with DEBUG on too (Django's DEBUG 404 page is HTML and bypasses
  handler404).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status as http
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

from realtime.stores import STORE_ERRORS

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class StoreUnavailable(APIException):
    status_code = http.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The tick cache or feed status store is unavailable."
    default_code = "store_unavailable"


class BodyTooLarge(APIException):
    status_code = http.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


def _body_too_large(request: HttpRequest) -> str:
    """Log the refusal once and return the ``detail`` that names the limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    logger.info(
        "event=api_body_too_large path=%r content_length=%s limit=%s",
        request.path,
        request.META.get("CONTENT_LENGTH", "-"),
        limit,
    )
    return f"Request body too large: the limit is {limit} bytes"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus store failures as a JSON 503 (one log line each) and
    a body over DATA_UPLOAD_MAX_MEMORY_SIZE as a JSON 413 (Django would answer
    an HTML 400, with DEBUG on its technical page)."""
    if isinstance(exc, RequestDataTooBig):
        request = context["request"]
        exc = BodyTooLarge(_body_too_large(getattr(request, "_request", request)))
    elif isinstance(exc, STORE_ERRORS):
        view = context.get("view")
        logger.warning(
            "event=api_store_unavailable view=%s error=%r",
            type(view).__name__ if view is not None else "-",
            exc,
        )
        exc = StoreUnavailable()
    return exception_handler(exc, context)


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def json_bad_request(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    """handler400: JSON under /api/; an oversized body is a 413, not a 400."""
    if isinstance(exception, RequestDataTooBig):
        detail = _body_too_large(request)
        if is_api_path(request):
            return _error(http.HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail)
        return HttpResponse(detail, status=413, content_type="text/plain")
    if is_api_path(request):
        return _error(http.HTTP_400_BAD_REQUEST, "Bad request")
    return defaults.bad_request(request, exception)


def json_permission_denied(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    if is_api_path(request):
        return _error(http.HTTP_403_FORBIDDEN, str(exception or "") or "Forbidden")
    return defaults.permission_denied(request, exception)


def json_csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: under /api/ a JSON 403 saying why (a session cookie
    sent without its CSRF token), elsewhere Django's page."""
    if is_api_path(request):
        return _error(http.HTTP_403_FORBIDDEN, f"CSRF check failed: {reason}")
    return csrf.csrf_failure(request, reason)


def json_not_found(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    if is_api_path(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def json_server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request):
        return _error(http.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")
    return defaults.server_error(request)


@csrf_exempt  # nothing to protect: the answer is a 404 whatever the method
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that no route serves: a JSON 404 naming the path.
    CSRF-exempt (it changes nothing): otherwise a DELETE with a session cookie
    to an unknown path got the CSRF failure page, HTML, instead of this 404."""
    return _error(
        http.HTTP_404_NOT_FOUND,
        f"No API endpoint at {request.path}; the list is at /api/",
    )
