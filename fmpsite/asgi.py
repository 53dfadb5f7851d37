"""ASGI entry point: HTTP through Django, WebSockets through Channels.

In embedded mode the feed starts with the server process (realtime.feed.embedded), not
on the first client, so prices are flowing before anyone connects.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.base")
django_asgi_app = get_asgi_application()

# Imported after Django is set up (channels' documented order).
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from fmpsite.gctune import tune_gc  # noqa: E402
from realtime.fanout.auth import (  # noqa: E402
    BrowserOriginValidatorStack,
    RealtimeAuthMiddlewareStack,
)
from realtime.fanout.routing import websocket_urlpatterns  # noqa: E402
from realtime.feed.embedded import start_with_server  # noqa: E402

if settings.DEBUG:
    # daphne serves no static files; runserver wraps the app the same way.
    # Production: collectstatic and a proxy (or WhiteNoise) in front.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidatorStack(
            RealtimeAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

if settings.REALTIME_EMBEDDED_FEED:
    start_with_server()

# Last: everything loaded so far lives as long as the process (fmpsite/gctune.py).
tune_gc(settings.REALTIME_GC_THRESHOLDS)
