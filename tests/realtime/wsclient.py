"""A price-stream client for tests against real servers (``websockets`` over loopback).

Shared by the end-to-end, scaled and reliability tests so each speaks PROTOCOL.md the
same way and waits with the same deadlines.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConcurrencyError, ConnectionClosed

WS_PATH = "/api/v2/realtime/ws/prices"


class DrainingClientConnection(ClientConnection):
    """A client connection whose ``close()`` reads (and drops) what the server
    still sends until its close frame arrives.

    A test client that stopped reading a ticking symbol has a full receive queue,
    so websockets stops reading the socket and the server's close frame waits
    behind the backlog: a plain ``close()`` then sits out ``close_timeout``
    (10 s) and drops the TCP connection. Draining completes the closing handshake
    as soon as the backlog is read, as a browser tab that is closed would.
    """

    async def close(self, code: int = 1000, reason: str = "") -> None:
        drain = asyncio.create_task(self._drop_incoming())
        try:
            await super().close(code, reason)
        finally:
            drain.cancel()
            with suppress(asyncio.CancelledError):
                await drain

    async def _drop_incoming(self) -> None:
        # ConcurrencyError: the test itself is reading; that read drains.
        with suppress(ConnectionClosed, ConcurrencyError):
            while True:
                await self.recv()


def connect(url: str, **connect_kwargs: Any):
    """``websockets.connect`` with :class:`DrainingClientConnection`."""
    connect_kwargs.setdefault("create_connection", DrainingClientConnection)
    return websockets.connect(url, **connect_kwargs)


async def open_client(port: int, **connect_kwargs: Any):
    """Connect and consume the ``connected`` greeting."""
    ws = await connect(f"ws://127.0.0.1:{port}{WS_PATH}", **connect_kwargs)
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert greeting["type"] == "connected", greeting
    return ws


async def request(ws, message: dict[str, Any], reply_type: str, within: float = 60):
    """Send ``message`` and return the first reply of ``reply_type`` (ticks skipped)."""
    await ws.send(json.dumps(message))
    deadline = time.monotonic() + within
    while True:
        left = max(deadline - time.monotonic(), 0.01)
        reply = json.loads(await asyncio.wait_for(ws.recv(), left))
        if reply["type"] == reply_type:
            return reply


async def next_message(
    ws, message_type: str, within: float = 60, **fields: Any
) -> dict[str, Any]:
    """The next message of ``message_type`` whose fields match ``fields``."""
    deadline = time.monotonic() + within
    while True:
        left = max(deadline - time.monotonic(), 0.01)
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message["type"] == message_type and all(
            message.get(k) == v for k, v in fields.items()
        ):
            return message


async def subscribe(ws, symbols: list[str]) -> dict[str, Any]:
    return await request(
        ws, {"action": "subscribe", "symbols": symbols}, "subscription"
    )


async def subscriptions(ws) -> list[str]:
    reply = await request(ws, {"action": "get_subscriptions"}, "subscriptions")
    return reply["symbols"]


async def next_update(ws, symbol: str, within: float = 60) -> dict[str, Any]:
    """The next live (not snapshot) ``price_update`` of ``symbol``."""
    deadline = time.monotonic() + within
    while True:
        left = max(deadline - time.monotonic(), 0.01)
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if (
            message["type"] == "price_update"
            and message["symbol"] == symbol
            and not message.get("snapshot")
        ):
            return message


async def collect_updates(ws, seconds: float) -> list[dict[str, Any]]:
    """Every ``price_update`` received within ``seconds``, snapshots included."""
    updates = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if message["type"] == "price_update":
            updates.append(message)
    return updates
