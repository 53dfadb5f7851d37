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
from realtime.fanout.outbox import Outbox


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


# --- permessage-deflate ---------------------------------------------------------------
@pytest.fixture
def _fresh_deflate_probe():
    daphne_io.reset_deflate_probe()
    yield
    daphne_io.reset_deflate_probe()


def deflate_offer(params: str = "client_max_window_bits"):
    """A client's permessage-deflate offer as autobahn parses it."""
    from autobahn.websocket.compress import PerMessageDeflateOffer

    parsed: dict[str, list] = {}
    for part in filter(None, (p.strip() for p in params.split(";"))):
        name, _, value = part.partition("=")
        parsed.setdefault(name, []).append(value or True)
    return PerMessageDeflateOffer.parse(parsed)


def negotiate(protocol, offer) -> None:
    """What autobahn's handshake does with the connection's accept hook."""
    from autobahn.websocket.compress import PerMessageDeflate

    accept = protocol.perMessageCompressionAccept([offer])
    protocol.websocket_extensions_in_use = []
    if accept is not None:
        protocol._perMessageCompress = PerMessageDeflate.create_from_offer_accept(
            True, accept
        )
        protocol.websocket_extensions_in_use.append(protocol._perMessageCompress)


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_a_deflate_offer_is_accepted_without_server_context_takeover(daphne_protocol):
    assert daphne_io.accept_deflate(daphne_protocol)
    accept = daphne_io.accept_deflate_offer([deflate_offer()])
    assert accept.get_extension_string() == (
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=9; "
        "server_no_context_takeover"
    )
    negotiate(daphne_protocol, deflate_offer())
    assert daphne_io.deflate_in_use(daphne_protocol)
    assert not daphne_io.foreign_extension_in_use(daphne_protocol)
    assert daphne_io.supports_direct_write(daphne_protocol)


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_an_offer_limiting_the_server_window_is_declined(daphne_protocol):
    daphne_io.accept_deflate(daphne_protocol)
    offer = deflate_offer("server_max_window_bits=10")
    fallback = deflate_offer()  # a client may offer several, best first
    assert daphne_io.accept_deflate_offer([offer, fallback]).offer is fallback
    assert daphne_io.accept_deflate_offer([deflate_offer("server_max_window_bits=15")])
    assert daphne_io.accept_deflate_offer([offer]) is None
    negotiate(daphne_protocol, offer)
    assert not daphne_io.deflate_in_use(daphne_protocol)


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_missing_deflate_internals_mean_plain_frames_with_one_warning(
    daphne_protocol, caplog, monkeypatch
):
    from autobahn.websocket.compress import PerMessageDeflateOfferAccept

    # As if autobahn renamed a name the negotiation relies on.
    monkeypatch.delattr(PerMessageDeflateOfferAccept, "get_extension_string")
    with caplog.at_level(logging.WARNING, logger="realtime.fanout.daphne_io"):
        assert not daphne_io.accept_deflate(daphne_protocol)
        assert daphne_io.accept_deflate_offer([deflate_offer()]) is None
    warnings = [r for r in caplog.records if "ws_compression_unavailable" in r.message]
    assert len(warnings) == 1 and "fallback=plain" in warnings[0].message
    negotiate(daphne_protocol, deflate_offer())  # daphne's own hook: declines
    assert daphne_protocol.websocket_extensions_in_use == []
    outbox = Outbox(None, "ws-t", protocol=daphne_protocol, direct=True)
    outbox.accepted()
    assert outbox.direct and outbox.deflate is None
    assert outbox.encode("x" * 300)[0] == 0x81  # a plain frame


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_a_deflate_connection_gets_compressed_frames_from_its_outbox(daphne_protocol):
    outbox = Outbox(
        None, "ws-t", protocol=daphne_protocol, direct=True, compression=True
    )
    negotiate(daphne_protocol, deflate_offer())
    outbox.accepted()
    assert outbox.deflate is not None
    frame = outbox.encode('{"type":"price_update"' + ',"k":1' * 100 + "}")
    assert frame[0] == 0xC1  # FIN, RSV1, text
    assert outbox.encode('{"type":"pong"}')[0] == 0x81  # under the minimum size
    # A stalled reader's unsent compressed frames are whole frames too.
    held = frame + daphne_io.text_frame("p" * 200) + frame
    assert daphne_io.first_whole_frame(held[7:]) == len(frame) - 7


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_an_extension_other_than_ours_takes_the_asgi_path(daphne_protocol):
    outbox = Outbox(None, "ws-t", protocol=daphne_protocol, direct=True)
    daphne_protocol.websocket_extensions_in_use = [object()]  # e.g. bzip2
    outbox.accepted()
    assert not outbox.direct


@pytest.mark.usefixtures("_fresh_deflate_probe")
def test_no_deflate_is_offered_where_frames_go_through_asgi(daphne_protocol):
    # With direct writes off, autobahn would compress per connection (and keep a
    # compressor each): the connection negotiates no extension instead.
    Outbox(None, "ws-t", protocol=daphne_protocol, direct=False, compression=True)
    negotiate(daphne_protocol, deflate_offer())
    assert daphne_protocol.websocket_extensions_in_use == []


def test_an_upgraded_channel_is_recognised_by_its_transports_protocol(daphne_protocol):
    channel = SimpleNamespace(transport=daphne_protocol.transport)
    daphne_protocol.transport.protocol = daphne_protocol  # daphne's upgrade
    assert daphne_io._upgraded_to_websocket(channel)
    daphne_protocol.transport.protocol = object()  # still plain HTTP
    assert not daphne_io._upgraded_to_websocket(channel)
    tls = SimpleNamespace(wrappedProtocol=daphne_protocol)
    assert daphne_io._upgraded_to_websocket(SimpleNamespace(transport=tls))


def test_an_upgraded_channel_lets_go_of_its_request_and_its_bounds(daphne_protocol):
    from twisted.web.http import HTTPChannel

    channel = HTTPChannel()
    channel.requests = [object()]  # the upgrade request, headers and body
    channel.transport = SimpleNamespace(protocol=channel)

    def daphne_upgrades() -> None:
        # Twisted calls daphne's request processing from allContentReceived,
        # where daphne hands the transport to a WebSocket protocol.
        channel.transport.protocol = daphne_protocol

    channel.allContentReceived = daphne_upgrades
    daphne_io._bound_channel(channel, max_body=1024, header_timeout=0)
    assert "allHeadersReceived" in vars(channel)
    channel.allContentReceived()
    assert channel.requests == []
    assert not set(daphne_io._BOUND_NAMES) & set(vars(channel))
    assert channel.allHeadersReceived.__func__ is HTTPChannel.allHeadersReceived


def test_a_plain_http_request_keeps_its_channel_as_it_was():
    from twisted.web.http import HTTPChannel

    channel = HTTPChannel()
    request = object()
    channel.requests = [request]
    channel.transport = SimpleNamespace(protocol=channel)
    channel.allContentReceived = lambda: None
    daphne_io._bound_channel(channel, max_body=1024, header_timeout=0)
    channel.allContentReceived()
    assert channel.requests == [request]
    assert "requestDone" in vars(channel)  # the bounds stay for keep-alive
