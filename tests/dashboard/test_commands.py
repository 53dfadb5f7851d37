from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("ensure_demo_user", stdout=out)
    return out.getvalue()


def test_creates_regular_demo_user_under_debug_embedded(settings) -> None:
    settings.DEBUG = True
    settings.REALTIME_MODE = "embedded"
    output = run()
    user = User.objects.get(username="demo")
    assert user.check_password("demo-password-123")
    assert not user.is_staff and not user.is_superuser
    assert "demo-password-123" in output


def test_is_idempotent_and_restores_the_documented_password(settings) -> None:
    settings.DEBUG = True
    settings.REALTIME_MODE = "embedded"
    run()
    user = User.objects.get(username="demo")
    user.set_password("changed-by-someone")
    user.save()
    output = run()
    assert User.objects.filter(username="demo").count() == 1
    assert User.objects.get(username="demo").check_password("demo-password-123")
    assert "already exists" in output


@pytest.mark.parametrize(
    ("debug", "mode"), [(False, "embedded"), (True, "scaled"), (False, "scaled")]
)
def test_refuses_outside_debug_embedded(settings, debug: bool, mode: str) -> None:
    settings.DEBUG = debug
    settings.REDIS_URL = "redis://127.0.0.1:6379/0" if mode == "scaled" else ""
    settings.REALTIME_MODE = mode
    output = run()
    assert "refusing" in output
    assert "demo-password-123" not in output
    assert not User.objects.filter(username="demo").exists()


def test_rerun_keeps_the_password_hash_so_sessions_survive(settings, client) -> None:
    """`make run` runs the command on every start; a new salt would change the
    session auth hash and log every open dashboard out."""
    settings.DEBUG = True
    settings.REALTIME_MODE = "embedded"
    settings.SECURE_SSL_REDIRECT = False
    run()
    assert client.login(username="demo", password="demo-password-123")
    before = User.objects.get(username="demo").password
    run()
    assert User.objects.get(username="demo").password == before
    response = client.get("/session/")
    assert response.status_code == 200
    assert response.json()["authenticated"] is True
