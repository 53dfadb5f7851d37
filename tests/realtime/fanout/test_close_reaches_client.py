"""Close codes reach the client (issue 28, defects 1-3), on both daphne paths.

A 4009 (stalled reader) and a 4008 (flooding) are promises of docs/protocol.md:
the client must find the close frame in the bytes it receives, even when it did
not read for seconds, kept sending after the server's decision, and has a 4 KiB
receive buffer. Raw sockets: a WebSocket library would hide which bytes came.
Each close is logged once per connection, and the input that follows it is
dropped and counted (``fmpsite_ws_messages_dropped_after_close_total``).
"""

from __future__ import annotations

import itertools
import json
import time
from contextlib import ExitStack

import pytest

from realtime.fanout.closecodes import CLOSE_FLOODING, CLOSE_STALLED
from tests.live import start_product, wait_until
from tests.realtime.fanout.test_server_hardening import StalledClient
from tests.realtime.httpprobe import metric

STALLED_CLIENTS = 10
SEND_RATE = 18  # messages/s per client, within the default 20/s: never a flood
KEEP_SENDING = 3.0  # seconds after the server's decision (autobahn waits 1 s)
DIRECT_WRITE = pytest.mark.parametrize("direct", ["true", "false"])


def client_frame(text: str) -> bytes:
    """A client text frame, minimally encoded, with an all-zero mask."""
    payload = text.encode()
    if len(payload) < 126:
        return bytes([0x81, 0x80 | len(payload)]) + bytes(4) + payload
    return bytes([0x81, 0xFE]) + len(payload).to_bytes(2, "big") + bytes(4) + payload


@pytest.fixture
def server(migrated_sqlite):
    count = itertools.count()
    with ExitStack() as started:

        def start(**env: str):
            live = started.enter_context(
                start_product(
                    f"daphne-close-{next(count)}",
                    simulator={"rate": 1000.0, "seed": 5, "heartbeat_interval": 1.0},
                    simulator_rest=False,
                    DATABASE_URL=migrated_sqlite,
                    FMP_API_KEY="close-key",
                    **env,
                )
            )
            return live

        yield start


def full_log(live) -> str:
    """The whole server log (``log()`` keeps only its tail)."""
    return live.proc.log_path.read_text(errors="replace")


def dropped_after_close(port: int) -> float:
    return metric(port, "fmpsite_ws_messages_dropped_after_close_total")


@DIRECT_WRITE
def test_stalled_readers_that_keep_sending_read_their_4009(server, direct):
    live = server(REALTIME_DIRECT_WRITE=direct, REALTIME_STALL_TIMEOUT="2")
    symbols = [f"CLS{chr(65 + i)}" for i in range(20)]
    ping = client_frame(json.dumps({"action": "ping", "pad": "p" * 200}))
    clients = [StalledClient(live.port) for _ in range(STALLED_CLIENTS)]
    for client in clients:
        client.sock.sendall(
            client_frame(json.dumps({"action": "subscribe", "symbols": symbols}))
        )

    def closed() -> int:
        return full_log(live).count("event=ws_stalled_closed")

    # Send at 18 msg/s without reading, until every client was closed 4009 and
    # KEEP_SENDING seconds after that (pacing sleeps, never synchronisation).
    started = time.monotonic()
    all_closed_at = None
    sent = 0
    while all_closed_at is None or time.monotonic() - all_closed_at < KEEP_SENDING:
        assert time.monotonic() - started < 60, full_log(live)
        for client in clients:
            try:
                client.sock.sendall(ping)
            except OSError:
                pass  # the server may shut its side; the client still reads
        sent += 1
        if all_closed_at is None and closed() >= STALLED_CLIENTS:
            all_closed_at = time.monotonic()
        time.sleep(max(0.0, sent / SEND_RATE - (time.monotonic() - started)))
    codes = [client.read_until_close(60) for client in clients]
    for client in clients:
        client.close()
    log = full_log(live)
    assert codes == [CLOSE_STALLED] * STALLED_CLIENTS, log
    # One line per connection, however much the client sent after the decision.
    assert closed() == STALLED_CLIENTS, log
    assert dropped_after_close(live.port) > 0


@DIRECT_WRITE
def test_a_flooding_client_reads_its_4008_and_is_logged_once(server, direct):
    live = server(REALTIME_DIRECT_WRITE=direct)
    client = StalledClient(live.port)
    ping = client_frame(json.dumps({"action": "ping"}))
    try:
        # ~1000 messages as fast as the socket takes them, without reading.
        for _ in range(10):
            client.sock.sendall(ping * 100)
        wait_until(
            lambda: "event=ws_flood_closed" in full_log(live), 60, "the flood close"
        )
        # Keep flooding past autobahn's 1 s close-handshake timeout, then read.
        until = time.monotonic() + KEEP_SENDING
        while time.monotonic() < until:
            try:
                client.sock.sendall(ping * 20)
            except OSError:
                break
            time.sleep(0.01)  # pacing, not synchronisation
        code = client.read_until_close(60)
    finally:
        client.close()
    log = full_log(live)
    assert code == CLOSE_FLOODING, log
    assert log.count("event=ws_flood_closed") == 1, log
    assert dropped_after_close(live.port) > 0


def disconnected(live) -> int:
    return full_log(live).count("event=ws_disconnected")


@DIRECT_WRITE
def test_a_stalled_reader_that_reads_after_the_grace_still_finds_its_4009(
    server, direct
):
    """The server gives up on the client (grace over, connection gone from its
    side) before the client reads at all: the close frame must still be in
    what the client reads, behind the updates the kernel already held. An
    abort (TCP reset) would discard the server's unsent bytes, close frame and
    all."""
    live = server(
        REALTIME_DIRECT_WRITE=direct,
        REALTIME_STALL_TIMEOUT="1",
        REALTIME_CLOSE_GRACE="1",
    )
    symbols = [f"CLG{chr(65 + i)}" for i in range(20)]
    client = StalledClient(live.port)
    try:
        client.sock.sendall(
            client_frame(json.dumps({"action": "subscribe", "symbols": symbols}))
        )
        wait_until(
            lambda: "event=ws_stalled_closed" in full_log(live), 60, "the 4009 decision"
        )
        # The client reads only once the server is done with the connection.
        wait_until(lambda: disconnected(live) >= 1, 60, "the server to let go")
        code = client.read_until_close(60)
    finally:
        client.close()
    assert code == CLOSE_STALLED, full_log(live)


@DIRECT_WRITE
def test_a_flooding_client_that_reads_after_the_grace_still_finds_its_4008(
    server, direct
):
    """A flooder that also never reads: its pongs fill its receive buffer, so
    the 4008 waits in the server's send queue; it must survive the server
    letting go of the connection."""
    live = server(REALTIME_DIRECT_WRITE=direct, REALTIME_CLOSE_GRACE="1")
    client = StalledClient(live.port)
    symbols = [f"CLF{chr(65 + i)}" for i in range(20)]
    ping = client_frame(json.dumps({"action": "ping"}))
    try:
        client.sock.sendall(
            client_frame(json.dumps({"action": "subscribe", "symbols": symbols}))
        )
        # Updates fill the client's receive buffer before the flood starts.
        wait_until(
            lambda: "event=ws_stalled conn" in full_log(live), 60, "a backed-up client"
        )
        for _ in range(10):
            client.sock.sendall(ping * 100)
        wait_until(
            lambda: "event=ws_flood_closed" in full_log(live), 60, "the flood close"
        )
        wait_until(lambda: disconnected(live) >= 1, 60, "the server to let go")
        code = client.read_until_close(60)
    finally:
        client.close()
    assert code == CLOSE_FLOODING, full_log(live)
