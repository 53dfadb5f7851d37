"""Scaled mode's route for ``alert`` messages: to every hub through the layer.

An alert is rare next to ticks, so one ``hub.alert`` to the hubs' group is
cheaper than any per-user group bookkeeping: each hub hands it to the open
connections of that one user and ignores it otherwise (no per-tick work, no
work for other clients). Embedded mode uses this process's hub directly
(``CurrentHub`` in realtime/backends.py).
"""

from __future__ import annotations

from typing import Any

from realtime.events import HUBS_GROUP, AlertDeliveryEvent


class LayerAlertRoute:
    def __init__(self, channel_layer: Any) -> None:
        self.channel_layer = channel_layer

    async def deliver_alert(self, user: str, text: str) -> None:
        event: AlertDeliveryEvent = {"type": "hub.alert", "user": user, "text": text}
        await self.channel_layer.group_send(HUBS_GROUP, event)
