"""Server processes tune the garbage collector once the ASGI app is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fmpsite.gctune import parse_thresholds
from tests.live import ROOT, clean_env

PROBE = "import gc, fmpsite.asgi; print(*gc.get_threshold(), gc.get_freeze_count() > 0)"


def load_asgi(**env: str) -> subprocess.CompletedProcess[str]:
    """Import fmpsite.asgi the way daphne and runworker do, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **clean_env(),
            "DJANGO_SETTINGS_MODULE": "fmpsite.settings.base",
            "DJANGO_DEBUG": "true",
            "REALTIME_EMBEDDED_FEED": "false",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.live  # imports fmpsite.asgi in a fresh process
def test_asgi_app_applies_default_thresholds_and_freezes_startup_objects():
    result = load_asgi()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["50000", "20", "100", "True"]


@pytest.mark.live  # imports fmpsite.asgi in a fresh process
def test_asgi_app_applies_configured_thresholds():
    result = load_asgi(REALTIME_GC_THRESHOLDS="20000,15,50")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20000", "15", "50", "True"]


@pytest.mark.live  # imports fmpsite.asgi in a fresh process
def test_off_keeps_cpythons_collector_untouched():
    result = load_asgi(REALTIME_GC_THRESHOLDS="off")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["700", "10", "10", "False"]


@pytest.mark.live  # imports fmpsite.asgi in a fresh process
def test_bad_thresholds_refuse_to_start_with_the_setting_named():
    result = load_asgi(REALTIME_GC_THRESHOLDS="lots")
    assert result.returncode != 0
    assert "REALTIME_GC_THRESHOLDS" in result.stderr
    assert "three comma-separated integers" in result.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("50000,20,100", (50000, 20, 100)),
        (" 700, 10 ,10 ", (700, 10, 10)),
        ("off", None),
        ("", None),
        ("DEFAULT", None),
    ],
)
def test_parse_thresholds(raw, expected):
    assert parse_thresholds(raw) == expected


@pytest.mark.parametrize("raw", ["1,2", "1,2,3,4", "a,b,c", "-1,10,10", "0,10,10"])
def test_parse_thresholds_rejects(raw):
    with pytest.raises(ValueError):
        parse_thresholds(raw)
