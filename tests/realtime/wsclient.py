"""A price-stream client for tests against real servers (``websockets`` over loopback).

Shared by the end-to-end, scaled and reliability tests so each speaks PROTOCOL.md the
same way and waits with the same deadlines.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets

WS_PATH = "/api/v2/realtime/ws/prices"


async def open_client(port: int, **connect_kwargs: Any):
    """Connect and consume the ``connected`` greeting."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}{WS_PATH}", **connect_kwargs)
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert greeting["type"] == "connected", greeting
    return ws


async def request(ws, message: dict[str, Any], reply_type: str, within: float = 10):
    """Send ``message`` and return the first reply of ``reply_type`` (ticks skipped)."""
    await ws.send(json.dumps(message))
    deadline = time.monotonic() + within
    while True:
        left = max(deadline - time.monotonic(), 0.01)
        reply = json.loads(await asyncio.wait_for(ws.recv(), left))
        if reply["type"] == reply_type:
            return reply


async def next_message(
    ws, message_type: str, within: float = 10, **fields: Any
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


async def next_update(ws, symbol: str, within: float = 10) -> dict[str, Any]:
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
