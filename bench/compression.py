"""Compressed frames: bytes on the wire and server CPU per message (issue 26).

``python -m bench.compression [--clients 200] [--rate 400] [--secs 20]`` starts
the FMP simulator and one embedded fmpsite daphne (permessage-deflate on, its
default), then runs the same load twice: every client offering
``permessage-deflate`` (as browsers do), then no client offering it. Each client
holds 5 of 50 symbols. Clients are bare sockets that count the bytes they
receive and the frames in them (no inflating, no JSON: client cost stays out of
the server's numbers). Per run it prints, for the measurement window after a
warm-up: price_update messages delivered, WebSocket bytes per message (frame
headers included, TCP/IP not), server CPU (utime + stime of the daphne process)
per delivered message, and the ratios. It also times the shared compressor
alone (``DeflateFrames.frame``) on a real price_update text.

Both runs hit one server, so the only difference is what the clients offered.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import Proc, base_env, cpu_seconds, python
from bench.targets import WS_PATH, Fmpsite

OFFER = "permessage-deflate; client_max_window_bits"
SYMBOLS = [f"S{i:03d}" for i in range(50)]
PER_CLIENT = 5


class Counter(asyncio.Protocol):
    """One client connection: handshake, subscribe, then count frames and bytes."""

    def __init__(self, offer: bool, symbols: list[str], port: int) -> None:
        self.offer = offer
        self.symbols = symbols
        self.port = port
        self.buffer = b""
        self.handshaken = asyncio.get_running_loop().create_future()
        self.negotiated = False
        self.counting = False
        self.bytes = 0
        self.frames = 0
        self.compressed = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if self.offer else ""
        self.transport.write(
            (
                f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                f"{extensions}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if not self.handshaken.done():
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.negotiated = b"permessage-deflate" in head.lower()
            self.handshaken.set_result(head.startswith(b"HTTP/1.1 101"))
            self.send_text(json.dumps({"action": "subscribe", "symbols": self.symbols}))
            data, self.buffer = self.buffer, b""
        if self.counting:
            self.bytes += len(data)
        buffer = self.buffer + data
        position, end = 0, len(buffer)
        while end - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if end - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if end - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if end - position < header + length:
                break
            if self.counting and buffer[position] & 0x0F == 1:
                self.frames += 1
                self.compressed += buffer[position] & 0x40 != 0
            position += header + length
        self.buffer = buffer[position:]

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header = bytes([0x81, 0x80 | len(payload)])  # a subscribe is < 126 bytes
        assert self.transport is not None
        self.transport.write(header + mask + masked)


async def run_load(
    port: int, pid: int, clients: int, offer: bool, warmup: float, secs: float
) -> dict:
    loop = asyncio.get_running_loop()
    rng = random.Random(26)
    conns: list[Counter] = []
    for _ in range(clients):
        symbols = rng.sample(SYMBOLS, PER_CLIENT)
        _, proto = await loop.create_connection(
            lambda s=symbols: Counter(offer, s, port), "127.0.0.1", port
        )
        conns.append(proto)
    accepted = await asyncio.gather(*(c.handshaken for c in conns))
    assert all(accepted), "a handshake was refused"
    await asyncio.sleep(warmup)  # subscriptions, snapshots, upstream subscribe
    for conn in conns:
        conn.counting = True
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(secs)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    for conn in conns:
        conn.counting = False
    frames = sum(c.frames for c in conns)
    wire = sum(c.bytes for c in conns)
    result = {
        "offered_deflate": offer,
        "negotiated": sum(c.negotiated for c in conns),
        "clients": clients,
        "seconds": round(t1 - t0, 2),
        "messages": frames,
        "messages_per_s": round(frames / (t1 - t0)),
        "compressed_share": round(sum(c.compressed for c in conns) / max(frames, 1), 3),
        "bytes_per_message": round(wire / max(frames, 1), 1),
        "server_cpu_us_per_message": round((cpu1 - cpu0) / max(frames, 1) * 1e6, 2),
        "server_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 3),
    }
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    await asyncio.sleep(1.0)
    return result


def time_compressor(repeat: int = 50_000) -> dict:
    """µs per ``DeflateFrames.frame`` and per plain ``text_frame`` (one core)."""
    from realtime.fanout.daphne_io import text_frame
    from realtime.fanout.deflate import DeflateFrames

    text = (
        '{"type":"price_update","symbol":"S017","timestamp":1796644386543,'
        '"data_type":"Q","last_price":494.31,"last_size":700,"ask_price":493.99,'
        '"ask_size":200,"bid_price":493.98,"bid_size":100,'
        '"cached_at":"2026-12-07T11:53:06.543+00:00","mid_price":493.985,"seq":3}'
    )
    encoder = DeflateFrames(128)
    out = {"text_bytes": len(text), "deflated_frame_bytes": len(encoder.frame(text))}
    for name, build in (("deflate", encoder.frame), ("plain", text_frame)):
        start = time.process_time()
        for _ in range(repeat):
            build(text)
        out[f"{name}_frame_us"] = round((time.process_time() - start) / repeat * 1e6, 2)
    out["plain_frame_bytes"] = len(text_frame(text))
    return out


async def main(args: argparse.Namespace) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="fmpsite-bench-compression-"))
    sim = await Proc(
        "simulator",
        [python(), "-m", "bench.simproc", "--rate", str(args.rate), "--seed", "26"],
        base_env(),
        log_dir,
    ).astart()
    assert sim.aproc is not None and sim.aproc.stdout is not None
    sim_url = json.loads(await sim.aproc.stdout.readline())["url"]
    target = Fmpsite(log_dir, scaled=False)
    try:
        target.start(sim_url, SYMBOLS)
        port, pid = target.ports[0], target.web_pids()[0]
        runs = []
        for offer in (True, False):
            runs.append(
                await run_load(port, pid, args.clients, offer, args.warmup, args.secs)
            )
            print(json.dumps(runs[-1]), flush=True)
        deflated, plain = runs
        summary = {
            "bytes_ratio_plain_over_deflate": round(
                plain["bytes_per_message"] / deflated["bytes_per_message"], 2
            ),
            "cpu_ratio_deflate_over_plain": round(
                deflated["server_cpu_us_per_message"]
                / plain["server_cpu_us_per_message"],
                2,
            ),
            "compressor": time_compressor(),
            "load": os.getloadavg(),
        }
        print(json.dumps(summary), flush=True)
    finally:
        target.stop()
        sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.compression")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=400.0, help="ticks/s upstream")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--secs", type=float, default=20.0)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fmpsite.settings.test")
    import django

    django.setup()
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
