"""Test settings: base settings with the embedded defaults forced.

Tests that need Redis, PostgreSQL or a running server start those themselves
(fixtures in tests/conftest.py); the in-process test settings never depend on the
shell's REDIS_URL or DATABASE_URL.
"""

import os

# Long and varied enough for the production rules (DEBUG is off under pytest).
os.environ["DJANGO_SECRET_KEY"] = (
    "tests-only-signing-key-0123456789-abcdefghijklmnopqrstuv"
)
os.environ.pop("DJANGO_DEBUG", None)
os.environ.pop("DJANGO_STATIC_ROOT", None)
os.environ["REDIS_URL"] = ""
os.environ.pop("DATABASE_URL", None)
os.environ.pop("FMP_API_KEY", None)

from .base import *  # noqa: E402,F403

REALTIME_MODE = "embedded"
REALTIME_EMBEDDED_FEED = False  # tests start the feed they need
# Tests invent symbols (AAA, SCLA ...): the built-in simulator prices any of them.
REALTIME_SIMULATOR_ANY_SYMBOL = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver", "[::1]"]
REALTIME_ALLOW_ANONYMOUS = True
# The pytest process keeps CPython's collector; servers the tests start are tuned.
REALTIME_GC_THRESHOLDS = None
# WhiteNoise looks files up per request instead of scanning every app's static
# files each time a test client builds its middleware chain (~30 ms each).
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Django's test runner turns DEBUG off, which would enable the HTTPS hardening.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
