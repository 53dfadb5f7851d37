"""Who may call the REST API (docs/protocol.md, "Who may connect").

Reads follow the WebSocket rule: anyone when ``REALTIME_ALLOW_ANONYMOUS`` is on,
otherwise a logged-in session or a token. Writes (pins) are for staff only:
missing credentials are a 401 (with the ``Token`` challenge), a user who is not
staff a 403. The setting is read per request so a test or a deployment toggle
takes effect at once.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class CanReadRealtime(BasePermission):
    """Anyone while ``REALTIME_ALLOW_ANONYMOUS`` is on, else an authenticated user.

    Refused anonymous callers get DRF's 401 with ``WWW-Authenticate: Token`` (token
    authentication is the first class in REST_FRAMEWORK), not a bare 403.
    """

    @staticmethod
    def anonymous_allowed() -> bool:
        """Read by the schema too (realtime/api/schema.py), to declare ``{}``."""
        return bool(settings.REALTIME_ALLOW_ANONYMOUS)

    def has_permission(self, request: Request, view: APIView) -> bool:
        if self.anonymous_allowed():
            return True
        return bool(request.user and request.user.is_authenticated)


class IsStaffUser(BasePermission):
    """A staff user, by session (with CSRF) or by ``Authorization: Token <key>``."""

    message = "Only staff users may change server-side subscriptions."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)
