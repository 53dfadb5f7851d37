"""WebSocket routes: the price stream, and a clean refusal for any other path.

Without the catch-all, channels' URLRouter raises ValueError for an unknown path
(``/api/v2/realtime/ws/prices/`` with a trailing slash is one), which daphne turns
into an HTTP 500 and an ERROR traceback, unauthenticated, in production too. The
catch-all closes the handshake instead: daphne answers HTTP 403, and one INFO
line names the path.
"""

from __future__ import annotations

import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from realtime.fanout.consumers import PriceStreamConsumer
from realtime.paths import PRICES_PATH

logger = logging.getLogger(__name__)


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Refuses a handshake to a path no route serves (HTTP 403 from daphne)."""

    async def connect(self) -> None:
        client = self.scope.get("client") or ("-", "-")
        logger.info(
            "event=ws_unknown_path path=%r client=%s:%s expected=/%s",
            self.scope.get("path", "")[:200],
            client[0],
            client[1],
            PRICES_PATH,
        )
        await self.close()


websocket_urlpatterns = [
    path(PRICES_PATH, PriceStreamConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
