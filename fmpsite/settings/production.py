"""Production settings: the default of fmpsite.asgi (daphne) and of `make scaled`.

Base settings with DEBUG off (refused if ``DJANGO_DEBUG`` turns it on), so a
missing or weak ``DJANGO_SECRET_KEY`` stops the process (fmpsite/settings/env.py),
and static files hashed and compressed by ``manage.py collectstatic``: nginx
serves them from ``STATIC_ROOT`` (deploy/nginx/), or WhiteNoise does when daphne
runs alone. fmpsite.asgi refuses to start when collectstatic has not run.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEBUG

if DEBUG:
    raise ImproperlyConfigured(
        "fmpsite.settings.production runs with DJANGO_DEBUG off: unset DJANGO_DEBUG, "
        "or use DJANGO_SETTINGS_MODULE=fmpsite.settings.development for development"
    )

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "fmpsite.staticfiles.ManifestStaticFilesStorage"},
}
# Only what collectstatic wrote, looked up once at start; hashed names are cached
# for a year by browsers (WhiteNoise and nginx alike).
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
# A template naming a file that is missing from the manifest gets its plain URL
# (a 404 for that one file) instead of a 500 for the whole page.
WHITENOISE_MANIFEST_STRICT = False
