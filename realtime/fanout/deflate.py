"""permessage-deflate frames (RFC 7692), compressed once and shared by every client.

A compressed message is normally compressed per connection, because each
connection's deflate stream may refer back to what that connection received
before ("context takeover"). fmpsite negotiates *no* server context takeover
(realtime/fanout/daphne_io.py), so a message never refers to an earlier one, and
the compressed frame of an update is the same bytes for every client that
negotiated the extension: the hub compresses each update once per tick and
writes that one frame to all of them, as it writes one plain frame to the rest.

One zlib compressor serves the whole process: ``Z_FULL_FLUSH`` after each message
resets its dictionary, so the output equals a fresh compressor's (the tests check
it) at a quarter of the cost of creating one per message. The sync-flush tail
``00 00 ff ff`` is removed as RFC 7692 section 7.2.1 requires, and RSV1 marks the
frame compressed. Messages under ``min_size`` bytes go out as plain frames, which
a permessage-deflate connection accepts too (RSV1 clear: not compressed).

Pure bytes in, bytes out: no sockets and no server internals here.
"""

from __future__ import annotations

import functools
import struct
import zlib

# Window of the shared compressor. An offer that limits the server's window below
# it is declined (daphne_io.accept_deflate_offer): the shared frames would not fit.
WINDOW_BITS = 15
# Level 6 (zlib's default) costs about what level 1 does on messages this small
# (~4 us for a 260-byte price_update) and is a few bytes smaller (bench/compression.py).
LEVEL = 6
_TAIL = b"\x00\x00\xff\xff"
# FIN + RSV1 + text opcode: one final, compressed text frame.
FIRST_BYTE_COMPRESSED = 0xC1
FIRST_BYTE_PLAIN = 0x81


def _frame(first: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


class DeflateFrames:
    """Builds the server-to-client text frame of a message for deflate clients."""

    __slots__ = ("min_size", "_compressor")

    def __init__(self, min_size: int = 0) -> None:
        self.min_size = min_size
        self._compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -WINDOW_BITS)

    def compress(self, payload: bytes) -> bytes:
        """``payload`` deflated on its own, without the sync-flush tail."""
        compressor = self._compressor
        data = compressor.compress(payload) + compressor.flush(zlib.Z_FULL_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data

    def frame(self, text: str) -> bytes:
        """One final unmasked text frame of ``text``: compressed (RSV1 set), or
        plain when ``text`` is under ``min_size`` bytes."""
        payload = text.encode()
        if len(payload) < self.min_size:
            return _frame(FIRST_BYTE_PLAIN, payload)
        return _frame(FIRST_BYTE_COMPRESSED, self.compress(payload))


def inflate(payload: bytes) -> bytes:
    """A compressed message's payload decompressed (what a client does; tests)."""
    return zlib.decompressobj(-WINDOW_BITS).decompress(payload + _TAIL)


@functools.cache
def shared(min_size: int) -> DeflateFrames:
    """The process's one encoder for ``min_size`` (the hub and the outboxes')."""
    return DeflateFrames(min_size)
