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

from realtime.backends import EMBEDDED, backends

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - documented development login


class Command(BaseCommand):
    help = (
        "Create (idempotently) the regular user 'demo' with the documented "
        "development password; only when DEBUG is on and REALTIME_MODE is embedded."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        mode = backends().mode
        if not settings.DEBUG or mode != EMBEDDED:
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
        # Set the password only when it is not already the documented one:
        # set_password() salts anew, which changes the session auth hash and so
        # logged every open dashboard out on each `make run`. Restoring a changed
        # password still makes the documented login work.
        if created or not user.check_password(DEMO_PASSWORD):
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
