"""One hub per event loop: where the consumers and the embedded wiring find it.

A server process runs one loop, so in practice one hub a process; tests that run
several loops get one each. Under daphne the hub closes its clients with 1001
when the server stops (``daphne_io.on_server_shutdown``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref

from channels.layers import get_channel_layer
from django.conf import settings

from realtime.fanout import daphne_io
from realtime.fanout.hub import FanoutHub

__all__ = ["close_hub", "current_hub", "get_hub"]

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FanoutHub] = (
    weakref.WeakKeyDictionary()
)


def current_hub() -> FanoutHub | None:
    """The hub of the running event loop, if one was started."""
    try:
        return _hubs.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def get_hub() -> FanoutHub:
    """The hub of the running loop (one per server process), started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        owner = f"{socket.gethostname()}:{os.getpid()}:{id(loop):x}"
        hub = FanoutHub(
            get_channel_layer(), owner=owner, lease_ttl=settings.REALTIME_LEASE_TTL
        )
        _hubs[loop] = hub
        hub.start()
        if loop is daphne_io.server_loop():
            daphne_io.on_server_shutdown(_shutdown_hub, bound=5.0)
    return hub


async def _shutdown_hub() -> None:
    loop = asyncio.get_running_loop()
    hub = _hubs.pop(loop, None)
    if hub is not None:
        await hub.shutdown()


async def close_hub() -> None:
    """Close the running loop's hub (tests, and a loop that ends)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.pop(loop, None)
    if hub is not None:
        await hub.aclose()
