"""Frames written straight to the socket are byte-identical to daphne's own.

Price updates take the direct path (realtime/fanout/daphne_io.py) under daphne; the
``connected`` greeting, acks and snapshots go through ASGI and autobahn. A raw TCP
client reads both off the wire, so any difference in framing or payload shows.
"""

from __future__ import annotations

import json

import orjson
import pytest
from websockets.frames import Frame, Opcode

from realtime.fanout.daphne_io import text_frame
from tests.realtime.rawclient import RawClient


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_matches_websockets_serialiser(length):
    text = ("é" * length)[: max(0, length // 2)] + "x" * (length - length // 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


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
