"""A scriptable fake FMP server on loopback, for cases the simulator does not play.

Each test gives it a ``script``: an async function called per connection with the
server connection and the ``FakeFmp`` (to record what happened). Real sockets, real
websockets, optional TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Script = Callable[[ServerConnection, "FakeFmp"], Awaitable[None]]

LOGIN_OK = orjson.dumps(
    {"event": "login", "status": 200, "message": "Authenticated"}
).decode()


async def read_json(ws: ServerConnection) -> Any:
    return orjson.loads(await ws.recv())


async def accept_login(ws: ServerConnection, fake: FakeFmp) -> dict[str, Any]:
    """Read the login frame and answer 200."""
    frame = await read_json(ws)
    fake.logins.append(frame)
    await ws.send(LOGIN_OK)
    return frame


class FakeFmp:
    def __init__(
        self,
        script: Script,
        *,
        ssl_context: ssl.SSLContext | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.logger = logger
        self.connections = 0
        self.open_connections = 0
        self.logins: list[Any] = []
        self.received: list[Any] = []
        self.close_codes: list[int | None] = []
        self.connected_at: list[float] = []
        self.server: Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> FakeFmp:
        options: dict[str, Any] = {"ping_interval": None, "compression": None}
        if self.logger is not None:
            options["logger"] = self.logger
        self.server = await serve(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context, **options
        )
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.open_connections += 1
        self.connected_at.append(asyncio.get_running_loop().time())
        try:
            with contextlib.suppress(ConnectionClosed):
                await self.script(ws, self)
                await ws.wait_closed()
        finally:
            self.open_connections -= 1
            self.close_codes.append(ws.close_code)

    async def keep_reading(self, ws: ServerConnection) -> None:
        """Record every frame until the client goes away."""
        async for raw in ws:
            self.received.append(orjson.loads(raw))
