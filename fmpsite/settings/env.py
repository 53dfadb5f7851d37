"""Reading the environment: the ``.env`` file and typed values.

The settings modules read ``os.environ`` only through these helpers, so one rule
holds for every variable: an empty value (``DATABASE_URL=`` as ``.env.example``
ships it) means "unset" and gives the default, instead of reaching a parser as
``""``.

Importing this module reads the ``.env`` file once, before any settings module
looks at a variable (``development.py`` needs ``DJANGO_DEBUG`` from it).
``DJANGO_ENV_FILE`` names another file; the real environment always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# development.py sets this to True before importing base.py: management commands
# run in development unless DJANGO_DEBUG says otherwise (cookiecutter-django's
# convention); everything else (daphne via fmpsite.asgi, production.py) is off.
DEFAULT_DEBUG = False

ENV_FILE = Path(os.environ.get("DJANGO_ENV_FILE", "").strip() or BASE_DIR / ".env")
load_dotenv(ENV_FILE, override=False)


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or ``default`` when it is missing or blank."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- The secret key -----------------------------------------------------------------

# Values that were published somewhere (this repository's .env.example, Django's and
# common tutorials' placeholders): a key anyone can read signs nothing.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "secret-key",
        "your-secret-key",
        "replace-me",
        "test-server-secret",
        "insecure-development-key-only-used-with-DJANGO_DEBUG",
    }
)
# Django's own deploy check (security.W009) asks for this much.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG"  # noqa: S105
GENERATE_HINT = (
    "generate one with: .venv/bin/python -c "
    '"import secrets; print(secrets.token_urlsafe(50))"'
)


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` must not sign production sessions, or None when it is fine."""
    if not key:
        return "it is not set"
    if key.strip().lower() in PLACEHOLDER_SECRET_KEYS or "change-me" in key.lower():
        return "it is a published placeholder"
    if key.startswith("django-insecure"):
        return "it is marked django-insecure"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters (at least {SECRET_KEY_MIN_LENGTH})"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE:
        return f"it has fewer than {SECRET_KEY_MIN_UNIQUE} distinct characters"
    return None


def secret_key(debug: bool) -> str:
    """``DJANGO_SECRET_KEY``, checked: with DEBUG off a weak key stops the process.

    With DEBUG on a missing key gets a fixed development key, so every management
    command works on a fresh clone.
    """
    key = env_str("DJANGO_SECRET_KEY")
    if debug:
        return key or DEVELOPMENT_SECRET_KEY
    problem = secret_key_problem(key)
    if problem == "it is not set":
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            f"(manage.py and `make run` default to development); {GENERATE_HINT}"
        )
    if problem:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is refused with DJANGO_DEBUG off: {problem}; "
            f"{GENERATE_HINT}"
        )
    return key
