"""Create the local demo login, only in the embedded development setup.

``make run`` calls this before starting the server so that a first-time user can
log in straight away. The password is a fixed, documented development value
(docs/dashboard.md), which is why the command refuses to do anything unless
``DEBUG`` is on and the product runs in embedded mode.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - documented development login


class Command(BaseCommand):
    help = (
        "Create (idempotently) the regular user 'demo' with the documented "
        "development password; only when DEBUG is on and REALTIME_MODE is embedded."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        mode = getattr(settings, "REALTIME_MODE", None)
        if not settings.DEBUG or mode != "embedded":
            self.stdout.write(
                "ensure_demo_user: refusing to create the demo user "
                f"(needs DEBUG=True and REALTIME_MODE='embedded'; "
                f"DEBUG={settings.DEBUG}, REALTIME_MODE={mode!r})."
            )
            return
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": False, "is_superuser": False}
        )
        # Reset the password every time so the documented login always works, even
        # after someone changed it in a previous session.
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        verb = "Created" if created else "Demo user already exists;"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} user {DEMO_USERNAME!r}. Log in with username "
                f"{DEMO_USERNAME!r} and password {DEMO_PASSWORD!r} "
                "(development only)."
            )
        )
