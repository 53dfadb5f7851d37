"""URL paths that more than one stage names, defined once.

The WebSocket route (realtime/fanout/routing.py) serves ``PRICES_PATH``, and the
REST API root (realtime/api/views.py) and the OpenAPI description announce it; a
plain constant here lets the API name the path without importing the WebSocket
stack that serves it.
"""

from __future__ import annotations

# The price stream's WebSocket path, without the leading slash (as Django routes
# are written); docs/protocol.md, "WebSocket".
PRICES_PATH = "api/v2/realtime/ws/prices"
