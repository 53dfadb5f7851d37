"""Write price updates to a client's socket as ready-made WebSocket frames.

The benchmark's profile (docs/benchmarks.md) put ~70 % of the server's CPU on the
way from ``consumer.send()`` to the kernel: channels' session wrapper, daphne and
autobahn framing the same bytes once per client, and Twisted, which never writes
at once but registers the socket for writability, writes on the next loop turn
and unregisters: one ``send()`` and two ``epoll_ctl()`` per message per client.

Server-to-client frames are unmasked, so a tick's frame is the same bytes for
every subscriber: the hub builds it once and this module writes a connection's
pending frames with one ``send()``, handing any unsent rest to Twisted so that
ordering with the consumer's own messages (acks, snapshots, pongs, pings, close)
is kept: when Twisted already holds bytes for the socket, everything goes behind
them through ``transport.write``.

Used only where it is byte-identical to the normal path: a plain TCP transport
(TLS terminates at the proxy; a TLS transport has no ``dataBuffer`` and is never
found), an open WebSocket, and no negotiated extension (daphne accepts none, but
a permessage-deflate connection would need compressed frames).
"""

from __future__ import annotations

import struct
from typing import Any

_OPEN = 3  # autobahn's WebSocketProtocol.STATE_OPEN


def text_frame(text: str) -> bytes:
    """One final, unmasked WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def supports_direct_write(protocol: Any) -> bool:
    """Whether frames may bypass ASGI for this daphne WebSocket protocol."""
    transport = getattr(protocol, "transport", None)
    return (
        transport is not None
        and hasattr(transport, "dataBuffer")
        and hasattr(transport, "socket")
        and not getattr(protocol, "websocket_extensions_in_use", None)
    )


def write_frames(protocol: Any, data: bytes) -> bool:
    """Write ``data`` (whole frames) to the client; False if the socket is closing."""
    if getattr(protocol, "state", None) != _OPEN:
        return False
    transport = protocol.transport
    if transport.disconnecting or transport.disconnected:
        return False
    if transport._tempDataLen or len(transport.dataBuffer) > transport.offset:
        transport.write(data)  # behind what Twisted already holds
        return True
    try:
        sent = transport.socket.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        # Let Twisted see the broken socket and close the connection its own way.
        sent = 0
    if sent < len(data):
        transport.write(data[sent:] if sent else data)
    return True
