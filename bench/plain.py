"""Baseline ``plain``: a minimal broadcast server on the ``websockets`` library.

No framework: one asyncio process holds one upstream connection to the simulator
(logs in with any key, subscribes upstream to whatever its clients ask for),
merges each tick into the symbol's latest state, encodes the client
``price_update`` once and ``broadcast``s it to that symbol's subscribers. It speaks
the client protocol of docs/protocol.md as far as the benchmark needs (``connected``,
``subscribe`` with its acknowledgement, ``price_update``).

This is the ceiling a hand-written server reaches on this machine; it has none of
the product's limits, auth, conflation or multi-process story.

Run as ``python -m bench.plain --port P --upstream ws://...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve

FIELDS = {
    "lp": "last_price",
    "ls": "last_size",
    "ap": "ask_price",
    "as": "ask_size",
    "bp": "bid_price",
    "bs": "bid_size",
}
EMPTY = dict.fromkeys(FIELDS.values())


def to_ms(t: int) -> int:
    """FMP timestamps come in ns, us or ms (FMP_UPSTREAM.md): normalise to ms."""
    while t > 10**14:
        t //= 1000
    return t


class PlainServer:
    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self.subscribers: dict[str, set] = {}
        self.state: dict[str, dict] = {}
        self.upstream = None
        self.upstream_ready = asyncio.Event()

    async def run_upstream(self) -> None:
        async with connect(self.upstream_url, max_size=None) as ws:
            await ws.send(json.dumps({"event": "login", "data": {"apiKey": "bench"}}))
            self.upstream = ws
            self.upstream_ready.set()
            async for raw in ws:
                msg = json.loads(raw)
                for tick in msg if isinstance(msg, list) else (msg,):
                    if "s" in tick:
                        self.on_tick(tick)

    def on_tick(self, tick: dict) -> None:
        symbol = tick["s"].upper()
        members = self.subscribers.get(symbol)
        state = self.state.setdefault(symbol, dict(EMPTY))
        for key, name in FIELDS.items():
            value = tick.get(key)
            if value is not None:
                state[name] = value
        if not members:
            return
        text = json.dumps(
            {
                "type": "price_update",
                "symbol": symbol,
                "timestamp": to_ms(int(tick["t"])),
                "data_type": tick.get("type", "T"),
                **state,
                "cached_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        broadcast(members, text)

    async def handle(self, ws) -> None:
        mine: set[str] = set()
        await ws.send(
            json.dumps(
                {"type": "connected", "message": "Connected to real-time price stream"}
            )
        )
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("action") != "subscribe":
                    continue
                symbols = msg.get("symbols", [])
                if isinstance(symbols, str):
                    symbols = [symbols]
                added = []
                for s in (s.strip().upper() for s in symbols):
                    if s in mine:
                        continue
                    mine.add(s)
                    added.append(s)
                    if s not in self.subscribers:
                        self.subscribers[s] = set()
                        await self.upstream_ready.wait()
                        await self.upstream.send(
                            json.dumps(
                                {"event": "subscribe", "data": {"ticker": [s.lower()]}}
                            )
                        )
                    self.subscribers[s].add(ws)
                await ws.send(
                    json.dumps(
                        {
                            "type": "subscription",
                            "action": "subscribed",
                            "symbols": added,
                            "subscribed_total": len(mine),
                        }
                    )
                )
        except websockets.ConnectionClosed:
            pass
        finally:
            for s in mine:
                self.subscribers.get(s, set()).discard(ws)


async def main(port: int, upstream_url: str) -> None:
    server = PlainServer(upstream_url)
    upstream = asyncio.create_task(server.run_upstream())
    async with serve(server.handle, "127.0.0.1", port, max_size=4096):
        await upstream


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.upstream))
