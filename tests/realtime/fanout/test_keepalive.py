"""daphne's keepalive pings are spread over the ping interval, not sent in bursts.

Clients that connect and send together used to be pinged together: 1,000 pings
and pongs in one loop turn held every price update back by 120-180 ms every 20 s
in the benchmark (docs/benchmarks.md, "Keepalive pings").
"""

from __future__ import annotations

import select
import struct
import time
from types import SimpleNamespace

import pytest

from realtime.fanout.daphne_io import spread_keepalive
from tests.live import daphne, free_port, server_env
from tests.realtime.rawclient import RawClient

PING = 0x9


def test_moves_the_ping_clock_forward_by_a_share_of_the_interval():
    protocol = SimpleNamespace(
        last_ping=1000.0, server=SimpleNamespace(ping_interval=20)
    )
    assert spread_keepalive(protocol, jitter=lambda: 0.25)
    assert protocol.last_ping == 1005.0  # never a ping sooner than daphne's own


@pytest.mark.parametrize(
    "protocol",
    [
        None,
        SimpleNamespace(),
        SimpleNamespace(last_ping=1000.0),
        SimpleNamespace(last_ping=1000.0, server=SimpleNamespace(ping_interval=0)),
        SimpleNamespace(last_ping="x", server=SimpleNamespace(ping_interval=20)),
    ],
)
def test_leaves_anything_but_a_daphne_protocol_alone(protocol):
    before = getattr(protocol, "last_ping", None)
    assert not spread_keepalive(protocol, jitter=lambda: 0.5)
    assert getattr(protocol, "last_ping", None) == before


def frames(buffer: bytes) -> tuple[list[int], bytes]:
    """Opcodes of the complete frames at the head of ``buffer``, and the rest."""
    opcodes = []
    while len(buffer) >= 2:
        length, offset = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                break
            length, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < offset + length:
            break
        opcodes.append(buffer[0] & 0x0F)
        buffer = buffer[offset + length :]
    return opcodes, buffer


def test_clients_that_speak_together_are_pinged_at_different_times(
    live_simulator, migrated_sqlite
):
    # A 3 s interval; daphne checks every 2 s. Unspread, every client below gets
    # its first ping in the same check; spread, they fall into different checks.
    port = free_port()
    env = server_env(
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="keepalive-test-key",
        FMP_WS_URL=live_simulator.url,
    )
    server = daphne("daphne-keepalive", port, env, "--ping-interval", "3")
    clients: list[RawClient] = []
    try:
        server.wait_port(port)
        clients = [RawClient(port) for _ in range(40)]
        for client in clients:
            client.send_text('{"action": "get_subscriptions"}')
        first_ping: dict[int, float] = {}
        deadline = time.monotonic() + 60
        while len(first_ping) < len(clients) and time.monotonic() < deadline:
            readable, _, _ = select.select([c.sock for c in clients], [], [], 0.5)
            now = time.monotonic()
            for index, client in enumerate(clients):
                if client.sock not in readable:
                    continue
                client.buffer += client.sock.recv(65536)
                opcodes, client.buffer = frames(client.buffer)
                if PING in opcodes and index not in first_ping:
                    first_ping[index] = now
        assert len(first_ping) == len(clients), server.log()
        times = sorted(first_ping.values())
        # One check sends its pings within a few ms; two checks are 2 s apart.
        assert times[-1] - times[0] > 1.0, times
    finally:
        for client in clients:
            client.sock.close()
        server.stop()
