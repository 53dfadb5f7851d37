"""The REST API imports without a circle and without the WebSocket stack.

Each import check runs in a fresh interpreter: this test process has long since imported
everything, so only a new one shows what an import really pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.live import ROOT, clean_env

# The WebSocket side of the fan-out: routing, the consumer and what only it needs.
WEBSOCKET_STACK = (
    "realtime.fanout.routing",
    "realtime.fanout.consumers",
    "realtime.fanout.auth",
    "realtime.fanout.limits",
)


def loaded_after(*modules: str) -> dict[str, list[str]]:
    """Per module imported in order after ``django.setup()``: which ``realtime``
    modules were loaded once it was."""
    code = (
        "import importlib, json, sys, django\n"
        "django.setup()\n"
        "seen = {}\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "    seen[name] = sorted(m for m in sys.modules if m.startswith('realtime'))\n"
        "print(json.dumps(seen))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean_env(), "DJANGO_SETTINGS_MODULE": "fmpsite.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_views_import_alone_without_the_url_module():
    seen = loaded_after("realtime.api.views")
    assert "realtime.api.urls" not in seen["realtime.api.views"]


def test_the_root_view_lists_the_routes_urls_hands_it():
    """No import back: the root lists what it was built with, nothing else."""
    from django.urls import path
    from rest_framework.test import APIRequestFactory

    from realtime.api.views import HealthView, RealtimeRootView, listed_routes

    routes = listed_routes(
        [
            path("health", HealthView.as_view(), name="health"),
            path("things/<path:symbol>/<int:n>", HealthView.as_view(), name="thing"),
            path("unnamed", HealthView.as_view()),
        ]
    )
    assert routes == {"health": "health", "thing": "things/{symbol}/{n}"}
    view = RealtimeRootView.as_view(routes=routes)
    response = view(APIRequestFactory().get("/api/v2/realtime/"))
    assert response.data == {
        "health": "http://testserver/api/v2/realtime/health",
        "thing": "http://testserver/api/v2/realtime/things/{symbol}/{n}",
    }


def test_the_rest_api_does_not_import_the_websocket_stack():
    seen = loaded_after("realtime.api.views", "realtime.api.urls", "fmpsite.api_urls")
    for name, loaded in seen.items():
        assert not set(WEBSOCKET_STACK) & set(loaded), name
        assert "realtime.paths" in loaded, name
