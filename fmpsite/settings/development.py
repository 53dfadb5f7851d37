"""Development settings: manage.py's default (cookiecutter-django's convention).

Every management command the README shows (migrate, createsuperuser,
drf_create_token, fmp_simulator, runserver via ``make run``) works on a fresh clone
with no environment: DEBUG is on unless ``DJANGO_DEBUG`` (environment or ``.env``)
turns it off, and then the production rules for the secret key apply. Production
processes set ``DJANGO_SETTINGS_MODULE=fmpsite.settings.production``.
"""

from fmpsite.settings import env as _env

_env.DEFAULT_DEBUG = True

from .base import *  # noqa: E402,F403
