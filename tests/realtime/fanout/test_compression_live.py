"""permessage-deflate under a real daphne (issue 26, compressed frames).

A client that offers the extension (the ``websockets`` library does by default,
so do browsers) gets compressed frames, and after inflation the same JSON, in
the same order, as a client that offers nothing; two such clients get the very
same compressed bytes for an update (it is compressed once, not per client).
A client without the extension, or a server with REALTIME_WS_COMPRESSION off,
sees plain frames as before.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate

from realtime.fanout import deflate
from tests.live import start_product
from tests.realtime.rawclient import RawClient
from tests.realtime.wsclient import open_client, subscribe

SYMBOLS = ["ZIPA", "ZIPB", "ZIPC"]
LIVE_UPDATES = 80  # per client, after both are subscribed
OFFER = "permessage-deflate; client_max_window_bits"


def start(migrated_sqlite: str, name: str, **env: str):
    return start_product(
        name,
        simulator={"rate": 200.0, "seed": 26, "heartbeat_interval": 1.0},
        simulator_rest=False,
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="deflate-key",
        **env,
    )


@pytest.fixture(scope="module")
def server(migrated_sqlite):
    with ExitStack() as stack:
        yield stack.enter_context(start(migrated_sqlite, "daphne-deflate"))


async def read_live(ws, count: int) -> list[tuple[str, int, str]]:
    """(symbol, seq, exact text) of the next ``count`` live updates, in order."""
    seen: list[tuple[str, int, str]] = []
    deadline = time.monotonic() + 60
    while len(seen) < count:
        left = max(deadline - time.monotonic(), 0.01)
        text = await asyncio.wait_for(ws.recv(), left)
        message = json.loads(text)
        if message["type"] == "price_update" and not message.get("snapshot"):
            seen.append((message["symbol"], message["seq"], text))
    return seen


def common_run(first: list, second: list) -> tuple[list, list]:
    """The updates both lists hold, in each list's order, checked to be one
    unbroken run in each (a client that missed one in between would show)."""
    both = set(first) & set(second)
    runs = []
    for received in (first, second):
        at = [i for i, item in enumerate(received) if item in both]
        assert at == list(range(at[0], at[0] + len(at))), "a gap inside the overlap"
        runs.append([received[i] for i in at])
    return runs[0], runs[1]


async def test_a_deflate_client_reads_the_json_a_plain_client_reads(server):
    compressed = await open_client(server.port)  # offers permessage-deflate
    plain = await open_client(server.port, compression=None)
    try:
        assert [type(e) for e in compressed.protocol.extensions] == [PerMessageDeflate]
        answer = compressed.response.headers["Sec-WebSocket-Extensions"]
        assert "permessage-deflate" in answer
        assert "server_no_context_takeover" in answer
        assert plain.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in plain.response.headers
        await subscribe(compressed, SYMBOLS)  # a compressed client message
        await subscribe(plain, SYMBOLS)
        got_compressed, got_plain = await asyncio.gather(
            read_live(compressed, LIVE_UPDATES), read_live(plain, LIVE_UPDATES)
        )
    finally:
        await compressed.close()
        await plain.close()
    in_compressed, in_plain = common_run(got_compressed, got_plain)
    assert len(in_compressed) >= LIVE_UPDATES // 2, (got_compressed, got_plain)
    # Same texts, byte for byte; each symbol's in the same order.
    for symbol in SYMBOLS:
        assert [i for i in in_compressed if i[0] == symbol] == [
            i for i in in_plain if i[0] == symbol
        ]
    # Across symbols too, once the subscribe holds (which release each symbol's
    # held updates when its snapshot is out) are over for both clients.
    tail = LIVE_UPDATES // 4
    assert in_compressed[-tail:] == in_plain[-tail:]
    assert len({symbol for symbol, _, _ in in_compressed[-tail:]}) > 1
    log = server.log()
    assert "deflate=True" in log and "deflate=False" in log


def raw_live_frames(client: RawClient, count: int) -> dict[tuple[str, int], bytes]:
    """The raw frames of the next ``count`` live updates, by (symbol, seq)."""
    frames: dict[tuple[str, int], bytes] = {}
    deadline = time.monotonic() + 60
    while len(frames) < count:
        assert time.monotonic() < deadline, "no live updates within 60 s"
        raw, payload = client.frame()
        if raw[0] == deflate.FIRST_BYTE_COMPRESSED:
            payload = deflate.inflate(payload)
        message = json.loads(payload)
        if message["type"] == "price_update" and not message.get("snapshot"):
            frames[message["symbol"], message["seq"]] = raw
    return frames


def test_every_deflate_client_gets_the_same_compressed_frame(server):
    clients = [RawClient(server.port, extensions=OFFER) for _ in range(2)]
    plain = RawClient(server.port)
    try:
        for client in clients:
            answer = client.head.lower()
            assert "sec-websocket-extensions: permessage-deflate" in answer
            assert "server_no_context_takeover" in answer
            assert "client_no_context_takeover" in answer
            assert "client_max_window_bits=9" in answer
        assert "sec-websocket-extensions" not in plain.head.lower()
        for client in [*clients, plain]:
            client.send_text(json.dumps({"action": "subscribe", "symbols": SYMBOLS}))
        first, second = (raw_live_frames(c, LIVE_UPDATES) for c in clients)
        unchanged = raw_live_frames(plain, LIVE_UPDATES)
    finally:
        for client in [*clients, plain]:
            client.close()
    shared = first.keys() & second.keys()
    assert len(shared) >= LIVE_UPDATES // 2
    for key in shared:
        assert first[key] == second[key], key  # compressed once, the same bytes
        assert first[key][0] == deflate.FIRST_BYTE_COMPRESSED  # RSV1 set
    assert all(raw[0] == deflate.FIRST_BYTE_PLAIN for raw in unchanged.values())
    for key in shared & unchanged.keys():
        assert deflate.inflate(payload_of(first[key])) == payload_of(unchanged[key])


def payload_of(raw: bytes) -> bytes:
    """A server frame's payload (no frame here is 64 KiB or more)."""
    return raw[4:] if raw[1] == 126 else raw[2:]


def test_with_compression_off_nothing_is_negotiated(migrated_sqlite):
    async def check(port: int) -> None:
        ws = await open_client(port)  # offers permessage-deflate
        try:
            assert ws.protocol.extensions == []
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await subscribe(ws, SYMBOLS)
            assert len(await read_live(ws, 5)) == 5
        finally:
            await ws.close()

    with start(
        migrated_sqlite, "daphne-no-deflate", REALTIME_WS_COMPRESSION="false"
    ) as live:
        asyncio.run(check(live.port))
        assert "deflate=False" in live.log()
