"""A JSON WebSocket consumer base for consumers that never touch the ORM.

Channels 4.3 hops to a worker thread before every handler (``dispatch``) and on
disconnect (``websocket_disconnect``) to close stale database connections
(``aclose_old_connections``). A consumer that authenticates in its middleware and
never queries the database afterwards gains nothing from the hop and pays for
it: latency on every client message, and every message serialised behind the
thread pool. These two methods are channels' own, minus the hop.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class NoDatabaseJsonWebsocketConsumer(AsyncJsonWebsocketConsumer):
    """``AsyncJsonWebsocketConsumer`` without the per-message database hop.

    Subclasses must not use the ORM from their handlers (do it in middleware, or
    wrap it in ``database_sync_to_async`` and close connections yourself), and
    join no groups of their own (``websocket_disconnect`` leaves none).
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer()
