from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """A factory for regular users (password "pw-12345-secret")."""
    counter = iter(range(1, 10_000))

    def make(username: str | None = None) -> User:
        name = username or f"user{next(counter)}"
        return User.objects.create_user(username=name, password="pw-12345-secret")

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user("alice")


@pytest.fixture
def user_client(client, user: User):  # noqa: ANN001 - pytest-django's Client
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def plain_http(settings) -> None:
    """Test settings run with DEBUG off, which turns on SECURE_SSL_REDIRECT; these
    tests speak plain HTTP to the test client (the redirect is not what they test)."""
    settings.SECURE_SSL_REDIRECT = False
