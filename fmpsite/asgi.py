"""ASGI entry point: HTTP through Django, WebSockets through Channels.

The server processes' entry point defaults to the production settings (DEBUG off,
a real secret key required, collected static files); tests and `make run` name
their settings module. Static files are served by nginx in front, or by WhiteNoise
in the middleware chain (fmpsite/staticfiles.py), in DEBUG too.

In embedded mode the feed starts with the server process (fmpsite/embedded.py), not
on the first client, so prices are flowing before anyone connects.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.production")
django_asgi_app = get_asgi_application()

# Imported after Django is set up (channels' documented order).
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from fmpsite.embedded import start_with_server  # noqa: E402
from fmpsite.gctune import tune_gc  # noqa: E402
from realtime.backends import backends  # noqa: E402
from realtime.fanout import daphne_io  # noqa: E402
from realtime.fanout.auth import (  # noqa: E402
    BrowserOriginValidatorStack,
    RealtimeAuthMiddlewareStack,
)
from realtime.fanout.routing import websocket_urlpatterns  # noqa: E402


def check_static_manifest() -> None:
    """Refuse to start on hashed static storage when collectstatic never ran.

    Every page names its CSS and JS by hashed name from the manifest; without it
    the site would serve pages with no styles or scripts, quietly.
    """
    from django.contrib.staticfiles.storage import (
        ManifestFilesMixin,
        staticfiles_storage,
    )
    from django.core.exceptions import ImproperlyConfigured

    if isinstance(staticfiles_storage, ManifestFilesMixin) and not (
        staticfiles_storage.exists(staticfiles_storage.manifest_name)
    ):
        raise ImproperlyConfigured(
            f"no static files manifest in STATIC_ROOT={settings.STATIC_ROOT}: "
            "run `manage.py collectstatic --noinput` with the same settings first"
        )


check_static_manifest()
# A bare daphne (no nginx in front) bounds request bodies and header time itself.
daphne_io.bound_http_requests(
    settings.REALTIME_HTTP_MAX_BODY_BYTES, settings.REALTIME_HTTP_HEADER_TIMEOUT
)
# ... and walks its connections in slices, not all at once per period.
daphne_io.slice_server_walks(settings.REALTIME_DAPHNE_WALK_SLICES)
# The mode is decided once, at start: a bad REALTIME_MODE or a scaled mode
# without REDIS_URL stops the server here, not at its first client.
backends()

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
