"""ASGI app of the naive baseline; the feed starts with daphne's event loop."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.naive.consumers import PriceConsumer  # noqa: E402
from bench.naive.feed import run_feed  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [path("api/v2/realtime/ws/prices", PriceConsumer.as_asgi())]
        ),
    }
)

_feed_task = None


def _start_feed(loop) -> None:
    global _feed_task
    _feed_task = loop.create_task(run_feed())


# Daphne has no lifespan hook; like fmpsite/embedded.py, schedule the feed on the
# loop daphne created at import time and runs once it is listening.
_daphne = sys.modules.get("daphne.server")
if _daphne is not None:
    _daphne.twisted_loop.call_soon_threadsafe(_start_feed, _daphne.twisted_loop)
