"""Production settings: no start without a secret; Django's deploy checks pass."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys

import pytest

from tests.live import ROOT, clean_env, wait_until

# Each test starts manage.py or fmpsite.asgi in a fresh process (1-8 s each).
pytestmark = pytest.mark.live


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean_env(), "DJANGO_SETTINGS_MODULE": "fmpsite.settings.base", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_debug_off():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="prices.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start():
    result = run_manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_defaults_are_secure_cookies_hsts_and_no_anonymous_streams():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, s.REALTIME_ALLOW_ANONYMOUS)",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
    )
    assert result.returncode == 0, result.stderr
    # The last line: Django 5.2's shell first reports its automatic imports.
    assert result.stdout.splitlines()[-1].split() == ["True", "True", "True", "False"]


# --- Every command works on a fresh clone; production refuses weak keys ----------


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a clean environment (no settings module named)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean_env(), "DJANGO_ENV_FILE": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def fresh_manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py as the README runs it: no DJANGO_SETTINGS_MODULE, no DEBUG set,
    reading a verbatim copy of .env.example as its .env; only the database is
    private (DATABASE_URL in the real environment wins over .env)."""
    env_file = tmp_path / ".env"
    if not env_file.exists():
        shutil.copy(ROOT / ".env.example", env_file)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **clean_env(),
            "DJANGO_ENV_FILE": str(env_file),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_management_commands_work_verbatim_on_a_fresh_clone(tmp_path):
    results = {}
    for args, env in (
        (("migrate", "--noinput"), {}),
        (
            (
                "createsuperuser",
                "--noinput",
                "--username",
                "admin",
                "--email",
                "a@x.io",
            ),
            {"DJANGO_SUPERUSER_PASSWORD": "a-long-admin-password-1"},
        ),
        (("drf_create_token", "admin"), {}),
        (("check",), {}),
    ):
        result = fresh_manage(tmp_path, *args, **env)
        assert result.returncode == 0, (args, result.stderr)
        results[args[0]] = result.stdout
    assert "Superuser created" in results["createsuperuser"]
    assert re.search(
        r"Generated token \w{40} for user admin", results["drf_create_token"]
    )


def test_fmp_simulator_command_starts_with_no_environment(tmp_path):
    env_file = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env_file)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "fmp_simulator", "--port", "0"],
        cwd=ROOT,
        env={**clean_env(), "DJANGO_ENV_FILE": str(env_file), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []

        def listening() -> bool:
            line = proc.stdout.readline()
            lines.append(line)
            if proc.poll() is not None and not line:
                raise AssertionError("fmp_simulator exited:\n" + "".join(lines))
            return "ws://127.0.0.1:" in line

        wait_until(listening, 60, "the simulator to listen")
    finally:
        proc.terminate()
        proc.wait(30)


def test_empty_values_in_env_file_mean_unset(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=\nREDIS_URL=\nDJANGO_ALLOWED_HOSTS=\nPORT=\n")
    result = run_python(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.REALTIME_MODE, s.ALLOWED_HOSTS)",
        DJANGO_SETTINGS_MODULE="fmpsite.settings.development",
        DJANGO_ENV_FILE=str(env_file),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["django.db.backends.sqlite3", "embedded"]
    assert "127.0.0.1" in result.stdout


def test_the_channel_layer_may_have_a_redis_of_its_own():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]['address'])"
    )
    shared = run_python(
        code,
        DJANGO_SETTINGS_MODULE="fmpsite.settings.development",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert shared.returncode == 0, shared.stderr
    assert shared.stdout.strip() == "redis://127.0.0.1:6379/0"
    own = run_python(
        code,
        DJANGO_SETTINGS_MODULE="fmpsite.settings.development",
        REDIS_URL="redis://127.0.0.1:6379/0",
        REALTIME_CHANNEL_REDIS_URL="redis://127.0.0.1:6380/1",
    )
    assert own.returncode == 0, own.stderr
    assert own.stdout.strip() == "redis://127.0.0.1:6380/1"


def test_manage_py_runs_in_development_unless_debug_is_turned_off():
    code = (
        "import os, sys; sys.argv = ['manage.py', 'shell', '-c', "
        "'from django.conf import settings; print(\"DEBUG\", settings.DEBUG)']; "
        "import manage; manage.main()"
    )
    on = run_python(code)
    assert on.returncode == 0, on.stderr
    assert "DEBUG True" in on.stdout
    off = run_python(code, DJANGO_DEBUG="false")
    assert off.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in off.stderr


WEAK_KEYS = {
    "change-me": "published placeholder",
    "x" * 10 + "change-me" + "y" * 40: "published placeholder",
    "django-insecure-" + "k3j4h5g6f7d8s9a0" * 3: "django-insecure",
    "a1b2c3d4e5f6g7h8i9j0": "20 characters",
    "ab" * 40: "distinct characters",
}


@pytest.mark.parametrize("key", list(WEAK_KEYS))
def test_the_asgi_entry_point_refuses_weak_secret_keys(key):
    # What daphne does first: import fmpsite.asgi with no settings module named.
    result = run_python("import fmpsite.asgi", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is refused" in result.stderr
    assert WEAK_KEYS[key] in result.stderr
    assert key not in result.stderr  # a key, even a weak one, is never echoed


def test_the_asgi_entry_point_refuses_a_missing_key_and_the_env_example_value():
    result = run_python("import fmpsite.asgi")
    assert "DJANGO_SECRET_KEY must be set" in result.stderr
    shipped = re.search(
        r"^DJANGO_SECRET_KEY=(.*)$", (ROOT / ".env.example").read_text(), re.M
    ).group(1)
    result = run_python("import fmpsite.asgi", DJANGO_SECRET_KEY=shipped)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_refuse_debug_and_need_collected_static_files(tmp_path):
    key = secrets.token_urlsafe(50)
    debug = run_python(
        "import fmpsite.asgi",
        DJANGO_SETTINGS_MODULE="fmpsite.settings.production",
        DJANGO_DEBUG="true",
        DJANGO_SECRET_KEY=key,
    )
    assert "runs with DJANGO_DEBUG off" in debug.stderr
    nostatic = run_python(
        "import fmpsite.asgi",
        DJANGO_SECRET_KEY=key,
        DJANGO_STATIC_ROOT=str(tmp_path / "empty"),
    )
    assert nostatic.returncode != 0
    assert "collectstatic" in nostatic.stderr


def test_check_deploy_is_clean_with_the_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="fmpsite.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="prices.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_sqlite_runs_in_wal_with_immediate_transactions_and_a_busy_timeout(tmp_path):
    result = run_python(
        "import django; django.setup(); from django.db import connection as c; "
        "c.ensure_connection(); cur = c.cursor(); "
        "print(cur.execute('PRAGMA journal_mode').fetchone()[0], "
        "c.settings_dict['OPTIONS']['transaction_mode'], "
        "c.settings_dict['OPTIONS']['timeout'] >= 5)",
        DJANGO_SETTINGS_MODULE="fmpsite.settings.development",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE", "True"]
