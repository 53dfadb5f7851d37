from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.dashboard.browser import PASSWORD


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


# --- browser tests (Debian's chromium through Playwright) --------------------------

# The machine is shared and slow: wait for what the page should show for up to
# 60 s (Playwright's default is 5 s); a check that fails still fails, later.
expect.set_options(timeout=60_000)


# ``browser`` (headless chromium, module scope) is tests/conftest.py's.


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def django_server(transactional_db: None, monkeypatch) -> Iterator[str]:
    """Django's threaded test server on this process's test database (the name
    ``product_server`` belongs to the whole-product fixture of tests/conftest.py)."""
    # Playwright's sync API keeps an event loop on this thread, which Django's
    # async-safety check mistakes for async code; the ORM here is plain sync use.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The page's reference data comes from the browser's requests, which each test
    # answers itself (serve_references); the server-side hook stays out of the way.
    monkeypatch.setattr("dashboard.selectors._reference_source", lambda: None)
    monkeypatch.setattr("dashboard.selectors._directory_source", lambda: None)
    server = LiveServer("localhost")
    with server._live_server_modified_settings:
        yield server.url
    server.stop()


@pytest.fixture
def browser_user(django_server: str, django_user_model: Any) -> str:
    django_user_model.objects.create_user(username="viewer", password=PASSWORD)
    return "viewer"
