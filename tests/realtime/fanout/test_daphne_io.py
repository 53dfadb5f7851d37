"""Canary for the server internals realtime/fanout/daphne_io.py relies on.

Twisted, autobahn and daphne are pinned in requirements.txt because daphne_io
reads private names of theirs. These tests fail first when an upgrade renames
one, and show that a missing one turns the fast path off (one warning, the plain
ASGI path) instead of stopping delivery.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from types import SimpleNamespace

import pytest

from realtime.fanout import daphne_io


@pytest.fixture(autouse=True)
def _fresh_probe():
    daphne_io.reset_probe()
    yield
    daphne_io.reset_probe()


def test_every_class_level_internal_exists_on_the_installed_versions():
    assert daphne_io.check_classes() == []
    from autobahn.websocket.protocol import WebSocketProtocol

    assert daphne_io.STATE_OPEN == WebSocketProtocol.STATE_OPEN


@pytest.fixture
def daphne_protocol():
    """A real daphne WebSocket protocol on a real Twisted TCP transport."""
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketFactory
    from twisted.internet import reactor, tcp

    server = Server(application=None, endpoints=["tcp:port=0"], ping_interval=20)
    factory = WebSocketFactory(server, server="test")
    protocol = factory.buildProtocol(("127.0.0.1", 0))
    left, right = socket.socketpair()
    transport = tcp.Server(left, protocol, ("127.0.0.1", 1), None, 1, reactor)
    protocol.makeConnection(transport)
    protocol.last_ping = 1000.0  # set by daphne's onConnect during the handshake
    protocol.server = server
    yield protocol
    left.close()
    right.close()


def test_every_per_connection_internal_exists_on_a_real_protocol(daphne_protocol):
    assert daphne_io.check_protocol(daphne_protocol) == []
    send = functools.partial(daphne_protocol.server.handle_reply, daphne_protocol)
    assert daphne_io.protocol_for(send) is daphne_protocol


def test_a_missing_internal_falls_back_to_asgi_with_one_warning(
    daphne_protocol, caplog, monkeypatch
):
    # As if Twisted renamed its private counter.
    monkeypatch.delattr(type(daphne_protocol.transport), "_tempDataLen", raising=False)
    monkeypatch.delattr(daphne_protocol.transport, "_tempDataLen")
    send = functools.partial(daphne_protocol.server.handle_reply, daphne_protocol)
    with caplog.at_level(logging.WARNING, logger="realtime.fanout.daphne_io"):
        assert daphne_io.protocol_for(send) is None
        assert daphne_io.protocol_for(send) is None  # probed once, warned once
    warnings = [r for r in caplog.records if "server_internals_missing" in r.message]
    assert len(warnings) == 1
    assert "transport._tempDataLen" in warnings[0].message
    assert "fallback=asgi" in warnings[0].message


def test_a_missing_class_internal_falls_back_too(daphne_protocol, monkeypatch):
    from autobahn.websocket.protocol import WebSocketProtocol

    monkeypatch.delattr(WebSocketProtocol, "_max_message_size_exceeded")
    send = functools.partial(daphne_protocol.server.handle_reply, daphne_protocol)
    assert daphne_io.protocol_for(send) is None
    assert any("_max_message_size_exceeded" in m for m in daphne_io.check_classes())


def test_anything_but_daphnes_send_is_not_probed(caplog):
    async def send(message):
        return None

    with caplog.at_level(logging.WARNING):
        assert daphne_io.protocol_for(send) is None
        assert daphne_io.protocol_for(functools.partial(send)) is None
    assert not caplog.records


def test_buffered_bytes_counts_what_twisted_holds(daphne_protocol):
    transport = daphne_protocol.transport
    assert daphne_io.buffered_bytes(transport) == 0
    # Twisted's own layout: sent bytes stay at the head of dataBuffer until the
    # next refill (offset counts them); later writes wait in _tempDataBuffer.
    transport.dataBuffer, transport.offset = b"x" * 1000, 200
    transport._tempDataBuffer, transport._tempDataLen = [b"y" * 50], 50
    assert daphne_io.buffered_bytes(transport) == 850


def frames(*texts: str) -> bytes:
    return b"".join(daphne_io.text_frame(t) for t in texts)


@pytest.mark.parametrize("cut", [0, 1, 2, 50, 129])
def test_first_whole_frame_finds_the_boundary_after_a_partly_sent_frame(cut):
    whole = frames("a" * 130, '{"type":"x"}', "b" * 70_000, "c")
    first_len = len(daphne_io.text_frame("a" * 130))
    held = whole[cut:]
    assert daphne_io.first_whole_frame(held) == (first_len - cut if cut else 0)


def test_bytes_that_are_not_whole_frames_are_all_kept():
    # Read as the rest of one partly sent frame: nothing is dropped.
    assert daphne_io.first_whole_frame(b"\x81\x05abc") == 5
    assert daphne_io.first_whole_frame(b"\x01" * 100, search=10) is None


def test_drop_unsent_frames_keeps_the_tail_of_a_partly_sent_frame(daphne_protocol):
    transport = daphne_protocol.transport
    first = daphne_io.text_frame("p" * 40)
    transport.dataBuffer = first + frames("q" * 300)
    transport.offset = 10  # the kernel took 10 bytes of the first frame
    transport._tempDataBuffer = [frames("r" * 20, "s")]
    transport._tempDataLen = len(transport._tempDataBuffer[0])
    dropped = daphne_io.drop_unsent_frames(daphne_protocol)
    assert transport.dataBuffer == first[10:]
    assert transport.offset == 0 and transport._tempDataLen == 0
    assert dropped == len(frames("q" * 300, "r" * 20, "s"))


def test_spread_keepalive_moves_daphnes_ping_clock_forward(daphne_protocol):
    assert daphne_io.spread_keepalive(daphne_protocol, lambda: 0.5)
    assert daphne_protocol.last_ping == 1010.0


def test_server_loop_is_none_outside_daphne(monkeypatch):
    monkeypatch.setitem(
        __import__("sys").modules, "daphne.server", SimpleNamespace(twisted_loop=None)
    )
    assert daphne_io.server_loop() is None
    assert not daphne_io.on_server_shutdown(lambda: None, bound=1)


async def test_an_unrecognised_send_under_daphne_is_warned_once(monkeypatch, caplog):
    # As if daphne changed the callable it hands applications as ``send``.
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(daphne_io, "server_loop", lambda: loop)

    async def send(message):
        return None

    with caplog.at_level(logging.WARNING, logger="realtime.fanout.daphne_io"):
        assert daphne_io.protocol_for(send) is None
        assert daphne_io.protocol_for(send) is None
    warnings = [r for r in caplog.records if "server_internals_missing" in r.message]
    assert len(warnings) == 1 and "Server.handle_reply" in warnings[0].message
