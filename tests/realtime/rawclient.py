"""A WebSocket client on a bare socket, for tests that read exact frame bytes
or must stop reading (shared by the direct-write, keepalive and hardening tests)."""

from __future__ import annotations

import base64
import os
import socket
import struct


class RawClient:
    """A WebSocket client on a bare socket: reads every frame's exact bytes."""

    def __init__(
        self, port: int, *, rcvbuf: int | None = None, extensions: str | None = None
    ) -> None:
        """``rcvbuf``: a small kernel receive buffer, for a client that stops
        reading and must look backed up to the server soon. ``extensions``: a
        Sec-WebSocket-Extensions offer (the answer is in ``head``)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/v2/realtime/ws/prices HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                + (f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else "")
                + "\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.head = head.decode("latin-1")

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
        if len(payload) < 126:
            header = bytes([0x81, 0x80 | len(payload)])
        else:
            header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()
