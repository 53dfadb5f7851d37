"""Load client process: many WebSocket connections on picows + uvloop.

The runner starts a few of these (``python -m bench.loadclient``) and drives them
with one JSON command per stdin line; each command gets one JSON reply line on
stdout:

- ``{"cmd": "connect", "conns": [{"url": ..., "symbols": [...], "local": ...}, ...],
  "concurrency": 16}``: open the connections (from source address ``local``, e.g.
  ``127.0.0.3``, when given: every loopback address has its own ephemeral ports)
  and wait for each one's ``connected`` message. Repeatable: connections add up.
- ``{"cmd": "subscribe", "within": 30, "in_flight": 0}``: send the subscribe of
  every connection not subscribed yet (at most ``in_flight`` unacknowledged at a
  time, 0 = all at once) and wait for the acks.
- ``{"cmd": "reset"}``: start a measurement window (zero the counters).
- ``{"cmd": "report"}``: counters of the window: ``price_update`` messages
  (snapshots excluded) and a 1 ms latency histogram of ``now - timestamp``.
- ``{"cmd": "close"}``: close every connection and exit.

The per-message work is kept to byte searches (no JSON parsing) so that a client
process can take well over 100k messages/s.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.procs import raise_nofile

# The server's default collector settings (fmpsite/gctune.py): a full collection
# over 500 connections' objects would otherwise stall a load client long enough
# to read as latency.
from fmpsite.gctune import DEFAULT_THRESHOLDS, tune_gc

HIST_MAX_MS = 60_000  # the last bucket holds everything slower
CONNECT_CONCURRENCY = 16
CONNECT_ATTEMPTS = 6


class Stats:
    __slots__ = ("count", "hist", "max_ms", "snapshots", "errors", "closed", "other")

    def __init__(self) -> None:
        self.hist = [0] * (HIST_MAX_MS + 1)
        self.reset()
        self.closed = 0

    def reset(self) -> None:
        self.count = 0
        for i, v in enumerate(self.hist):
            if v:
                self.hist[i] = 0
        self.max_ms = 0.0
        self.snapshots = 0
        self.errors: list[str] = []
        self.other = 0


class Conn(WSListener):
    def __init__(self, stats: Stats, symbols: list[str]) -> None:
        self.stats = stats
        self.symbols = symbols
        self.count = 0
        self.subscribe_sent = False
        self.transport: WSTransport | None = None
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        self.subscribed = loop.create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.stats.closed += 1
        for fut in (self.connected, self.subscribed):
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        p = frame.get_payload_as_bytes()
        if p.find(b"price_update", 0, 40) >= 0:
            st = self.stats
            if p.find(b'"snapshot"') >= 0:
                st.snapshots += 1
                return
            i = p.find(b'"timestamp":') + 12
            lat = time.time() * 1000.0 - int(p[i : p.find(b",", i)])
            st.count += 1
            self.count += 1
            if lat > st.max_ms:
                st.max_ms = lat
            b = int(lat) if lat > 0 else 0
            st.hist[b if b < HIST_MAX_MS else HIST_MAX_MS] += 1
            return
        head = p[:40]
        if b'"connected"' in head:
            if not self.connected.done():
                self.connected.set_result(None)
        elif b'"subscription"' in head:
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif b'"error"' in head:
            if len(self.stats.errors) < 20:
                self.stats.errors.append(p[:200].decode(errors="replace"))
        else:
            self.stats.other += 1


class Client:
    def __init__(self) -> None:
        self.stats = Stats()
        self.conns: list[Conn] = []

    async def connect(
        self, specs: list[dict], concurrency: int = CONNECT_CONCURRENCY
    ) -> dict:
        t0 = time.monotonic()
        before = len(self.conns)
        sem = asyncio.Semaphore(concurrency)
        failures: list[str] = []

        async def one(spec: dict) -> None:
            local = spec.get("local")
            extra = {"local_addr": (local, 0)} if local else {}
            async with sem:
                for attempt in range(CONNECT_ATTEMPTS):
                    try:
                        _, conn = await ws_connect(
                            lambda: Conn(self.stats, spec["symbols"]),
                            spec["url"],
                            websocket_handshake_timeout=20,
                            max_frame_size=1 << 20,
                            **extra,
                        )
                        await asyncio.wait_for(conn.connected, 20)
                        self.conns.append(conn)
                        return
                    except Exception as exc:
                        if attempt == CONNECT_ATTEMPTS - 1:
                            failures.append(repr(exc)[:200])
                        await asyncio.sleep(0.2 * (attempt + 1))

        await asyncio.gather(*(one(s) for s in specs))
        return {
            "connected": len(self.conns) - before,
            "total": len(self.conns),
            "failed": len(failures),
            "failures": failures[:5],
            "secs": round(time.monotonic() - t0, 3),
        }

    async def subscribe(self, within: float = 30.0, in_flight: int = 0) -> dict:
        """Subscribe the connections not subscribed yet: all at once, or with at
        most ``in_flight`` acks outstanding (a fleet of browsers does not
        subscribe all in the same instant)."""
        t0 = time.monotonic()
        fresh = [c for c in self.conns if not c.subscribe_sent]
        gate = asyncio.Semaphore(in_flight) if in_flight > 0 else None

        async def one(conn: Conn) -> None:
            msg = {"action": "subscribe", "symbols": conn.symbols}
            if gate is None:
                conn.transport.send(WSMsgType.TEXT, json.dumps(msg).encode())
                conn.subscribe_sent = True
                await asyncio.wait_for(conn.subscribed, within)
                return
            async with gate:
                conn.transport.send(WSMsgType.TEXT, json.dumps(msg).encode())
                conn.subscribe_sent = True
                await asyncio.wait_for(conn.subscribed, within)

        results = await asyncio.gather(*(one(c) for c in fresh), return_exceptions=True)
        ok = sum(1 for r in results if not isinstance(r, BaseException))
        return {"subscribed": ok, "secs": round(time.monotonic() - t0, 3)}

    def report(self) -> dict:
        st = self.stats
        return {
            "count": st.count,
            "hist": {i: v for i, v in enumerate(st.hist) if v},
            "max_ms": st.max_ms,
            "snapshots": st.snapshots,
            "errors": st.errors,
            "other": st.other,
            "closed": st.closed,
            "open": sum(1 for c in self.conns if not c.transport.is_disconnected),
            "starved": sum(1 for c in self.conns if c.count == 0),
        }

    def reset(self) -> dict:
        self.stats.reset()
        for conn in self.conns:
            conn.count = 0
        return {"ok": True}

    async def close(self) -> dict:
        for conn in self.conns:
            if not conn.transport.is_disconnected:
                conn.transport.send_close()
                conn.transport.disconnect()
        await asyncio.sleep(0.1)
        return {"ok": True}


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    client = Client()
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        kind = cmd["cmd"]
        if kind == "connect":
            reply = await client.connect(
                cmd["conns"], cmd.get("concurrency", CONNECT_CONCURRENCY)
            )
            # The connections live until the end: keep them out of every later
            # collection, so the client's own GC pauses never read as latency.
            gc.freeze()
        elif kind == "subscribe":
            reply = await client.subscribe(
                cmd.get("within", 30.0), cmd.get("in_flight", 0)
            )
        elif kind == "reset":
            reply = client.reset()
        elif kind == "report":
            reply = client.report()
        elif kind == "close":
            reply = await client.close()
        else:
            reply = {"error": f"unknown command {kind!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if kind == "close":
            break


if __name__ == "__main__":
    raise_nofile()  # thousands of sockets per process (the harness raised it too)
    tune_gc(DEFAULT_THRESHOLDS)
    uvloop.run(main())
