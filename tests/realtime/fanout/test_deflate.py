"""permessage-deflate frames: compressed once, valid alone, equal to a fresh
compressor's output (realtime/fanout/deflate.py).

A client inflates each message with a window that starts empty when the server
has no context takeover, so every frame must decode on its own, whatever came
before it on the shared compressor; websockets' own frame parser reads them.
"""

from __future__ import annotations

import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.fanout import deflate

UPDATE = (
    '{"type":"price_update","symbol":"AAPL","timestamp":1699564800000,'
    '"data_type":"T","last_price":189.45,"last_size":1000,"ask_price":189.46,'
    '"ask_size":5000,"bid_price":189.44,"bid_size":3000,'
    '"cached_at":"2024-11-10T12:00:00.000+00:00","seq":17,"epoch":"e1"}'
)


def parse(data: bytes, extensions: list) -> Frame:
    """One server frame read the way the websockets client reads it."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False, extensions=extensions)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


def client_extension(*, keeps_window: bool = False) -> PerMessageDeflate:
    # The client's side of what accept_deflate_offer negotiates.
    return PerMessageDeflate(
        remote_no_context_takeover=not keeps_window,
        local_no_context_takeover=True,
        remote_max_window_bits=15,
        local_max_window_bits=9,
    )


def test_each_frame_inflates_on_its_own_after_any_earlier_message():
    encoder = deflate.DeflateFrames()
    texts = [UPDATE.replace("17", str(n)) + "x" * n for n in range(0, 2000, 97)]
    frames = [encoder.frame(t) for t in texts]
    for text, frame in reversed(list(zip(texts, frames, strict=True))):
        assert frame[0] == deflate.FIRST_BYTE_COMPRESSED
        parsed = parse(frame, [client_extension()])  # a fresh client each time
        assert parsed.opcode is Opcode.TEXT and parsed.fin
        assert parsed.data == text.encode()


def test_a_client_keeping_its_window_reads_the_frames_too():
    # A client may keep its inflate window (it did not ask for server no context
    # takeover): frames that never refer back decode either way.
    encoder = deflate.DeflateFrames()
    extension = client_extension(keeps_window=True)
    for n in range(20):
        text = UPDATE.replace("17", str(n))
        assert parse(encoder.frame(text), [extension]).data == text.encode()


def test_the_shared_compressor_equals_a_fresh_one_per_message():
    encoder = deflate.DeflateFrames()
    for n in range(10):
        payload = (UPDATE + "y" * n * 50).encode()
        fresh = zlib.compressobj(deflate.LEVEL, zlib.DEFLATED, -deflate.WINDOW_BITS)
        expected = (fresh.compress(payload) + fresh.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert encoder.compress(payload) == expected


@pytest.mark.parametrize("length", [0, 1, 127, 128, 300, 70_000])
def test_messages_under_the_minimum_size_stay_plain(length):
    encoder = deflate.DeflateFrames(min_size=128)
    text = ("é" * length)[: length // 2] + "a" * (length - length // 2)
    frame = encoder.frame(text)
    expected_plain = len(text.encode()) < 128
    assert (frame[0] == deflate.FIRST_BYTE_PLAIN) is expected_plain
    assert parse(frame, [client_extension()]).data == text.encode()


def test_a_price_update_gets_smaller():
    frame = deflate.DeflateFrames(min_size=128).frame(UPDATE)
    assert len(frame) < len(UPDATE.encode())
    assert frame[:2] == bytes([deflate.FIRST_BYTE_COMPRESSED, 126])  # 16-bit length
    assert deflate.inflate(frame[4:]) == UPDATE.encode()


def test_the_shared_encoder_is_one_per_minimum_size():
    assert deflate.shared(128) is deflate.shared(128)
    assert deflate.shared(128) is not deflate.shared(0)
