"""Frames written straight to the socket are byte-identical to daphne's own.

Price updates take the direct path (realtime/fanout/daphne_io.py) under daphne; the
``connected`` greeting, acks and snapshots go through ASGI and autobahn. A raw TCP
client reads both off the wire, so any difference in framing or payload shows.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct

import orjson
import pytest
from websockets.frames import Frame, Opcode

from realtime.fanout.daphne_io import text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_matches_websockets_serialiser(length):
    text = ("é" * length)[: max(0, length // 2)] + "x" * (length - length // 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


class RawClient:
    """A WebSocket client on a bare socket: reads every frame's exact bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/v2/realtime/ws/prices HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "server closed the connection"
        return chunk

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def frame(self) -> tuple[bytes, bytes]:
        """(the frame's raw bytes, its payload)."""
        head = self._take(2)
        length = head[1] & 0x7F
        extended = b""
        if length == 126:
            extended = self._take(2)
            length = struct.unpack("!H", extended)[0]
        elif length == 127:
            extended = self._take(8)
            length = struct.unpack("!Q", extended)[0]
        payload = self._take(length)
        return head + extended + payload, payload

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.sock.close()


def test_direct_frames_equal_asgi_frames_on_the_wire(product_server):
    client = RawClient(product_server["port"])
    try:
        raw, payload = client.frame()
        assert json.loads(payload)["type"] == "connected"
        assert raw == text_frame(payload.decode())  # autobahn frames like we do
        client.send_text('{"action":"subscribe","symbols":["RAWA"]}')
        by_path: dict[str, list[tuple[bytes, bytes]]] = {"asgi": [], "direct": []}
        while len(by_path["direct"]) < 3:
            raw, payload = client.frame()
            message = json.loads(payload)
            if message["type"] == "price_update":
                path = "asgi" if message.get("snapshot") else "direct"
                by_path[path].append((raw, payload))
        for raw, payload in by_path["asgi"] + by_path["direct"]:
            assert raw[0] == 0x81, "one final text frame, no fragmentation"
            assert raw == text_frame(payload.decode())
            # The feed's one encoding: orjson, PROTOCOL.md's key order, compact.
            assert orjson.dumps(orjson.loads(payload)) == payload
            keys = list(json.loads(payload))
            assert keys[:4] == ["type", "symbol", "timestamp", "data_type"]
    finally:
        client.close()
    assert "direct_write=True" in product_server["process"].log()
