"""A minimal stand-in for ``realtime.fmp.simulator.FmpSimulator``.

Used by ``bench.simproc`` only when the product's simulator cannot be imported.
Speaks the legacy FMP protocol (FMP_UPSTREAM.md): login, subscribe/unsubscribe,
and random-walk ``T``/``Q`` ticks whose ``t`` is the current time in nanoseconds,
``rate`` ticks/s in total over each connection's subscribed symbols.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

import websockets
from websockets.asyncio.server import serve

TICK_INTERVAL = 0.005


class MiniSimulator:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, rate: float = 10.0, seed=None
    ) -> None:
        self.host = host
        self.port = port
        self.rate = rate
        self.random = random.Random(seed)
        self.ticks_sent = 0
        self._server = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws) -> None:
        symbols: dict[str, float] = {}
        pump = asyncio.create_task(self._pump(ws, symbols))
        try:
            async for raw in ws:
                msg = json.loads(raw)
                event = msg.get("event")
                data = msg.get("data") or {}
                if event == "login":
                    await ws.send(
                        json.dumps(
                            {
                                "event": "login",
                                "status": 200,
                                "message": "Authenticated",
                            }
                        )
                    )
                elif event in ("subscribe", "unsubscribe"):
                    tickers = data.get("ticker", [])
                    if isinstance(tickers, str):
                        tickers = [tickers]
                    for t in tickers:
                        if event == "subscribe":
                            symbols.setdefault(
                                t.lower(), 100 + self.random.random() * 50
                            )
                        else:
                            symbols.pop(t.lower(), None)
                    await ws.send(
                        json.dumps({"event": event, "status": 200, "message": "ok"})
                    )
        except websockets.ConnectionClosed:
            pass
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _pump(self, ws, symbols: dict[str, float]) -> None:
        owed = 0.0
        last = time.monotonic()
        rnd = self.random
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            now = time.monotonic()
            owed += (now - last) * self.rate
            last = now
            if not symbols:
                owed = 0.0
                continue
            names = list(symbols)
            while owed >= 1.0:
                owed -= 1.0
                s = rnd.choice(names)
                price = symbols[s] = max(1.0, symbols[s] * (1 + rnd.gauss(0, 1e-4)))
                t = time.time_ns()
                if rnd.random() < 0.5:
                    frame = {
                        "s": s,
                        "t": t,
                        "type": "T",
                        "lp": round(price, 2),
                        "ls": 100,
                    }
                else:
                    frame = {
                        "s": s,
                        "t": t,
                        "type": "Q",
                        "ap": round(price + 0.01, 2),
                        "as": 200,
                        "bp": round(price - 0.01, 2),
                        "bs": 300,
                    }
                await ws.send(json.dumps(frame))
                self.ticks_sent += 1
