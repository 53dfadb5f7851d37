"""Every reach-in into daphne, Twisted and autobahn, checked once and guarded.

ASGI gives an application no backpressure, no way to write a ready-made frame and
no hook for the server's start or shutdown. fmpsite needs all of them on the tick
path (docs/benchmarks.md), so this module, and only this one, uses names that are
private to the server stack (Twisted and autobahn are pinned in requirements.txt
for that reason):

- daphne: the ASGI ``send`` it hands an application is
  ``partial(Server.handle_reply, protocol)``; the protocol's ``last_ping`` and
  ``server.ping_interval`` drive its keepalive pings; ``daphne.server.twisted_loop``
  is the event loop it runs.
- Twisted: a TCP transport's unsent bytes are ``dataBuffer`` past ``offset`` plus
  ``_tempDataBuffer`` (``_tempDataLen`` bytes); ``socket`` is the real socket.
- autobahn: ``WebSocketProtocol.STATE_OPEN``, ``sendClose``,
  ``closeHandshakeTimeout``, ``onMessage`` (called as ``self.onMessage``),
  ``failByDrop`` and the ``wasMax*PayloadSizeExceeded`` flags of a message over
  the size limit; for permessage-deflate (``accept_deflate``) the protocol's
  ``perMessageCompressionAccept`` hook and the ``_perMessageCompress`` it creates.
- daphne's ``Server.application_checker`` and ``timeout_checker``, replaced by
  the same work in slices (``slice_server_walks``); Twisted's
  ``HTTPChannel.requests``, emptied once daphne upgraded the connection.

``probe()`` checks every one of them, once: the class-level names at first use,
the per-connection attributes on the first daphne connection. If any is missing
it logs ONE warning naming them and every connection takes the plain ASGI path
(``protocol_for`` returns None): no direct writes, no send-buffer bound, no
spread pings, but correct. Nothing here probes per tick.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

logger = logging.getLogger(__name__)

try:  # the constant itself, not a copy: a renumbering would show in the probe
    from autobahn.websocket.protocol import WebSocketProtocol as _AutobahnProtocol

    STATE_OPEN: int | None = _AutobahnProtocol.STATE_OPEN
except (ImportError, AttributeError):  # pragma: no cover - another server stack
    _AutobahnProtocol = None
    STATE_OPEN = None

# Class-level names, checked at first use: (owner's import path, attribute).
_CLASS_NAMES: tuple[tuple[str, str], ...] = (
    ("daphne.server:Server", "handle_reply"),
    ("daphne.server:Server", "kill_all_applications"),
    ("daphne.ws_protocol:WebSocketProtocol", "check_timeouts"),
    ("autobahn.websocket.protocol:WebSocketProtocol", "STATE_OPEN"),
    ("autobahn.websocket.protocol:WebSocketProtocol", "sendClose"),
    ("autobahn.websocket.protocol:WebSocketProtocol", "sendCloseFrame"),
    ("autobahn.websocket.protocol:WebSocketProtocol", "_max_message_size_exceeded"),
    ("twisted.internet.abstract:FileDescriptor", "dataBuffer"),
    ("twisted.internet.abstract:FileDescriptor", "offset"),
    ("twisted.internet.abstract:FileDescriptor", "SEND_LIMIT"),
    ("twisted.internet.abstract:FileDescriptor", "loseWriteConnection"),
    ("autobahn.twisted.websocket:WebSocketAdapterProtocol", "_closeConnection"),
)
# Per-connection names, checked on the first daphne connection.
_PROTOCOL_NAMES = (
    "state",
    "last_ping",
    "server",
    "transport",
    "closeHandshakeTimeout",
    "onMessage",
    "failByDrop",
    "wasMaxMessagePayloadSizeExceeded",
    "wasMaxFramePayloadSizeExceeded",
    "maxMessagePayloadSize",
)
_TRANSPORT_NAMES = (
    "dataBuffer",
    "offset",
    "_tempDataBuffer",
    "_tempDataLen",
    "socket",
    "disconnecting",
    "disconnected",
)


class _Probe:
    """What is missing from the installed server stack (None: not checked yet)."""

    class_missing: list[str] | None = None
    instance_missing: list[str] | None = None
    warned = False


_probe = _Probe()


def _resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    module = __import__(module_name, fromlist=["_"])
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def check_classes(names: tuple[tuple[str, str], ...] = _CLASS_NAMES) -> list[str]:
    """The class-level names of ``names`` that the installed packages lack."""
    missing = []
    for owner, attribute in names:
        try:
            if not hasattr(_resolve(owner), attribute):
                missing.append(f"{owner}.{attribute}")
        except (ImportError, AttributeError):
            missing.append(f"{owner}.{attribute}")
    if STATE_OPEN is None:
        missing.append("autobahn STATE_OPEN")
    return missing


def missing_names(names: tuple[tuple[str, str], ...]) -> list[str]:
    """``check_classes(names)`` without autobahn's STATE_OPEN, for the checks of
    a feature that does not use it (the probe of the fast path reports it)."""
    return [m for m in check_classes(names) if m != "autobahn STATE_OPEN"]


def check_protocol(protocol: Any) -> list[str]:
    """The per-connection names a daphne WebSocket protocol lacks."""
    missing = [f"protocol.{n}" for n in _PROTOCOL_NAMES if not hasattr(protocol, n)]
    transport = getattr(protocol, "transport", None)
    missing += [f"transport.{n}" for n in _TRANSPORT_NAMES if not hasattr(transport, n)]
    server = getattr(protocol, "server", None)
    if not hasattr(server, "ping_interval"):
        missing.append("protocol.server.ping_interval")
    return missing


def _warn_once(missing: list[str]) -> None:
    if missing and not _probe.warned:
        _probe.warned = True
        logger.warning(
            "event=server_internals_missing missing=%s fallback=asgi "
            "hint='direct writes, the send-buffer bound and spread pings are off; "
            "pin the Twisted/autobahn/daphne versions of requirements.txt'",
            ",".join(missing),
        )


def reset_probe() -> None:
    """Forget the probe's result (tests that simulate a missing internal)."""
    _probe.class_missing = _probe.instance_missing = None
    _probe.warned = False


def usable() -> bool:
    """Whether the class-level internals exist (checked once)."""
    if _probe.class_missing is None:
        _probe.class_missing = check_classes()
        _warn_once(_probe.class_missing)
    return not _probe.class_missing


def _daphne_protocol(send: Callable[..., Any]) -> Any | None:
    # daphne: partial(Server.handle_reply, protocol). Anything else (the test
    # communicator, another ASGI server) is simply not daphne.
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return None
    func = getattr(send.func, "__func__", None)
    if getattr(func, "__qualname__", "") != "Server.handle_reply":
        return None
    return send.args[0]


def _under_daphne() -> bool:
    loop = server_loop()
    if loop is None:
        return False
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def protocol_for(send: Callable[..., Any]) -> Any | None:
    """The daphne WebSocket protocol behind an ASGI ``send``, if it may be used.

    None under any other server, and under daphne when the probe found a missing
    internal: the caller then keeps to the plain ASGI path.
    """
    protocol = _daphne_protocol(send)
    if protocol is None:
        if _under_daphne() and not _probe.warned:
            # daphne runs this loop but its ``send`` is no longer the partial
            # we know: say so once instead of switching off silently.
            _probe.instance_missing = ["daphne send=partial(Server.handle_reply)"]
            _warn_once(_probe.instance_missing)
        return None
    if not usable():
        return None
    if _probe.instance_missing is None:
        _probe.instance_missing = check_protocol(protocol)
        _warn_once(_probe.instance_missing)
    return None if _probe.instance_missing else protocol


# --- backpressure ---------------------------------------------------------------------
def buffered_bytes(transport: Any) -> int:
    """Bytes written by the server but not yet accepted by the kernel.

    Twisted keeps bytes it already sent at the head of ``dataBuffer`` until the
    next refill; ``offset`` says how many.
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


# --- direct frame writes --------------------------------------------------------------
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
    """Whether frames may bypass ASGI for this (probed) daphne protocol.

    Only where it is byte-identical to autobahn's own framing: a plain TCP
    transport (a TLS transport has no ``socket.send`` of the clear text) and no
    extension negotiated other than fmpsite's own permessage-deflate (decided
    before the handshake completes, so ``Outbox.accepted`` checks again after it).
    """
    transport = protocol.transport
    return hasattr(transport, "socket") and not foreign_extension_in_use(protocol)


def write_frames(protocol: Any, data: bytes) -> bool:
    """Write ``data`` (whole frames) to the client; False if the socket is closing.

    One ``send()`` to the kernel; any unsent rest goes to Twisted, and when Twisted
    already holds bytes everything goes behind them, so frames autobahn writes
    (pings, close) keep their order.
    """
    if protocol.state != STATE_OPEN:
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


# --- permessage-deflate (RFC 7692) ---------------------------------------------------
# autobahn implements the extension but daphne enables none: its factory's
# ``perMessageCompressionAccept`` declines every offer. autobahn copies that hook
# from the factory to each protocol unless the protocol has its own, and calls it
# (``self.perMessageCompressionAccept``) when the application accepts, so a
# connection's own hook, set before ``accept()``, decides for that connection alone.
_DEFLATE_CLASS_NAMES: tuple[tuple[str, str], ...] = (
    ("autobahn.websocket.compress:PerMessageDeflateOffer", "parse"),
    (
        "autobahn.websocket.compress:PerMessageDeflateOfferAccept",
        "get_extension_string",
    ),
    ("autobahn.websocket.compress:PerMessageDeflate", "create_from_offer_accept"),
    ("autobahn.websocket.protocol:WebSocketServerProtocol", "succeedHandshake"),
)
# The window the client's own messages are inflated with, when the client lets the
# server choose (``client_max_window_bits``): client messages are a few hundred
# bytes, and the inflater kept per connection then holds 512 bytes, not 32 KiB.
CLIENT_WINDOW_BITS = 9


class _Deflate:
    """Whether this process may negotiate permessage-deflate (None: not checked)."""

    missing: list[str] | None = None
    accept_class: Any = None


_deflate = _Deflate()


def _deflate_accept_class() -> Any | None:
    """autobahn's accept, naming server_no_context_takeover even when unasked.

    RFC 7692 section 7.1.1.1 lets a server declare it unasked; autobahn's accept
    writes it only when the client asked, and a client that knows it may drop its
    inflate window between messages.
    """
    if _deflate.missing is None:
        _deflate.missing = check_classes(_DEFLATE_CLASS_NAMES)
        if STATE_OPEN is None:
            _deflate.missing = [m for m in _deflate.missing if "STATE_OPEN" not in m]
        if _deflate.missing:
            logger.warning(
                "event=ws_compression_unavailable missing=%s fallback=plain "
                "hint='clients get uncompressed frames; pin the autobahn version "
                "of requirements.txt'",
                ",".join(_deflate.missing),
            )
            return None
        from autobahn.websocket.compress import PerMessageDeflateOfferAccept

        class Accept(PerMessageDeflateOfferAccept):
            def get_extension_string(self) -> str:
                text = super().get_extension_string()
                if "server_no_context_takeover" not in text:
                    text += "; server_no_context_takeover"
                return text

        _deflate.accept_class = Accept
    return None if _deflate.missing else _deflate.accept_class


def accept_deflate_offer(offers: list[Any]) -> Any | None:
    """The accept of the first permessage-deflate offer fmpsite can serve, or None.

    No server context takeover, so every client's compressed frame of an update
    is the same bytes (realtime/fanout/deflate.py); client context takeover off
    and a small client window when the client allows them. An offer that limits
    the server's window below the shared compressor's is declined: that client
    gets plain frames.
    """
    from realtime.fanout.deflate import WINDOW_BITS

    accept_class = _deflate_accept_class()
    if accept_class is None:
        return None
    for offer in offers:
        if getattr(offer, "EXTENSION_NAME", None) != "permessage-deflate":
            continue
        if offer.request_max_window_bits not in (0, WINDOW_BITS):
            continue
        return accept_class(
            offer,
            request_no_context_takeover=bool(offer.accept_no_context_takeover),
            request_max_window_bits=(
                CLIENT_WINDOW_BITS if offer.accept_max_window_bits else 0
            ),
            no_context_takeover=True,
        )
    return None


def accept_deflate(protocol: Any) -> bool:
    """Let this connection negotiate permessage-deflate (call before ``accept()``).

    False, and the connection negotiates nothing (plain frames), when autobahn
    lacks a name used here.
    """
    if _deflate_accept_class() is None or not hasattr(
        protocol, "perMessageCompressionAccept"
    ):
        return False
    protocol.perMessageCompressionAccept = accept_deflate_offer
    return True


def deflate_in_use(protocol: Any) -> bool:
    """Whether the completed handshake negotiated fmpsite's permessage-deflate:
    deflate, no server context takeover, the shared compressor's window."""
    from realtime.fanout.deflate import WINDOW_BITS

    pmce = getattr(protocol, "_perMessageCompress", None)
    return (
        getattr(pmce, "EXTENSION_NAME", None) == "permessage-deflate"
        and getattr(pmce, "server_no_context_takeover", False) is True
        and getattr(pmce, "server_max_window_bits", None) == WINDOW_BITS
    )


def foreign_extension_in_use(protocol: Any) -> bool:
    """An extension is in use that fmpsite's frames do not implement."""
    in_use = getattr(protocol, "websocket_extensions_in_use", None)
    return bool(in_use) and not deflate_in_use(protocol)


def reset_deflate_probe() -> None:
    """Forget whether permessage-deflate is available (tests)."""
    _deflate.missing = None
    _deflate.accept_class = None


# --- closing a stalled reader ---------------------------------------------------------
# 0xC1: a compressed text frame (RSV1, realtime/fanout/deflate.py).
_FRAME_FIRST_BYTES = frozenset({0x81, 0x82, 0x88, 0x89, 0x8A, 0xC1})


def _frames_end_exactly(buffer: bytes | memoryview, start: int) -> bool:
    """Whether ``buffer[start:]`` is a run of whole unmasked server frames."""
    end = len(buffer)
    position = start
    while position < end:
        if buffer[position] not in _FRAME_FIRST_BYTES or position + 2 > end:
            return False
        length = buffer[position + 1]
        if length & 0x80:
            return False  # server frames are never masked
        header = 2
        if length == 126:
            if position + 4 > end:
                return False
            length = int.from_bytes(buffer[position + 2 : position + 4], "big")
            header = 4
        elif length == 127:
            if position + 10 > end:
                return False
            length = int.from_bytes(buffer[position + 2 : position + 10], "big")
            header = 10
        position += header + length
    return position == end


def first_whole_frame(held: bytes, search: int = 70_000) -> int | None:
    """Where the first whole frame starts in ``held`` (bytes Twisted still holds).

    Every write to the transport ends on a frame boundary, so ``held`` ends on one;
    its head may be the rest of a frame the kernel took in part. The first offset
    from which the bytes parse as whole frames to the very end is that boundary.
    None if there is none within ``search`` bytes (nothing is then dropped).
    """
    view = memoryview(held)
    for start in range(min(len(held), search) + 1):
        if start == len(held) or (
            held[start] in _FRAME_FIRST_BYTES and _frames_end_exactly(view, start)
        ):
            return start
    return None


def drop_unsent_frames(protocol: Any) -> int:
    """Drop the whole frames Twisted holds for a client; keep a partly sent one.

    Called before closing a stalled reader, so the close frame follows at most
    the rest of one frame instead of hundreds of KB the client never read.
    Returns the bytes dropped (0 if the boundary could not be found).
    """
    transport = protocol.transport
    held = bytes(transport.dataBuffer[transport.offset :]) + b"".join(
        transport._tempDataBuffer
    )
    keep = first_whole_frame(held)
    if keep is None:
        return 0
    transport.dataBuffer = held[:keep]
    transport.offset = 0
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return len(held) - keep


def make_room_for_close(protocol: Any) -> None:
    """Let the kernel take what Twisted still holds, the close frame behind it.

    A stalled reader's kernel send buffer is full, so the close frame would sit
    in Twisted's buffer, and die with the process's side of the connection.
    Raising ``SO_SNDBUF`` by what Twisted holds (the kernel doubles the value
    and caps it at ``net.core.wmem_max``) moves it into the kernel, which keeps
    delivering after the server has let go. Best effort: an error is ignored.
    """
    transport = protocol.transport
    sock = getattr(transport, "socket", None)
    held = buffered_bytes(transport)
    if sock is None or not held:
        return
    try:
        current = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, current + held + 4096)
    except OSError:
        pass


def _discard_input(sock: socket.socket) -> None:
    """Read and drop what the client sent, so that close() sends a FIN.

    Linux answers a close() with unread input by a reset, and a reset makes the
    kernel throw away the unsent bytes: the close frame among them.
    """
    try:
        while sock.recv(65536, socket.MSG_DONTWAIT):
            pass
    except OSError:
        pass


def _end_linger(transport: Any) -> None:
    if transport.disconnected:
        return
    _discard_input(transport.socket)
    transport.loseConnection()


def linger_close(protocol: Any, linger: float) -> None:
    """Close a server-decided connection without a reset (autobahn aborts).

    Twisted flushes its buffer, then shuts the sending side (a FIN behind the
    close frame); the connection keeps reading, and dropping, whatever the
    client sends for ``linger`` s, then closes with the input drained. A close
    frame still queued in the kernel then reaches a client that reads late; an
    abort would have discarded it.
    """
    if getattr(protocol, "_fmpsite_lingering", False):
        return
    protocol._fmpsite_lingering = True
    transport = protocol.transport
    if not hasattr(transport, "socket"):
        transport.loseConnection()
        return
    from twisted.internet import reactor

    protocol.dataReceived = _drop_bytes  # the client's close frame included
    transport.loseWriteConnection()
    reactor.callLater(linger, _end_linger, transport)


def _drop_bytes(data: bytes) -> None:
    return None


def prepare_close(
    protocol: Any,
    grace: float,
    on_dropped_input: Callable[[], None],
    *,
    drop_unsent: bool = False,
) -> int:
    """Make a close the server decided on (4008, 4009) reach the client.

    After the decision the connection only waits for the client to read the
    close frame: every later client message is dropped where daphne would queue
    it for the application (``on_dropped_input`` counts it; the socket is still
    read, so the client's own close frame is seen and the kernel never answers a
    full receive buffer with a reset), and the client gets ``grace`` seconds,
    instead of autobahn's 1 s close-handshake timeout, to send its own close
    frame. With ``drop_unsent`` (a stalled reader) the whole frames Twisted
    still holds are dropped first, and the send buffer grows to take the rest
    with the close frame (``make_room_for_close``). Whether the client answered
    or the grace ran out, the connection ends with ``linger_close`` (a FIN after
    the close frame, input drained), never autobahn's abort. Returns the bytes
    dropped.
    """
    dropped = drop_unsent_frames(protocol) if drop_unsent else 0
    make_room_for_close(protocol)

    def on_message(payload: bytes, is_binary: bool) -> None:
        on_dropped_input()

    def close_connection(abort: bool = False) -> None:
        linger_close(protocol, grace)

    # Instance attributes shadow daphne's onMessage (autobahn calls
    # self.onMessage) and autobahn's _closeConnection (its dropConnection calls
    # self._closeConnection(abort=True) on a timeout and on the client's reply);
    # onClose still tells the application the socket is gone.
    protocol.onMessage = on_message
    protocol._closeConnection = close_connection
    protocol.closeHandshakeTimeout = grace
    return dropped


def close_going_away(protocol: Any) -> None:
    """Send close code 1001 ("going away": the server shuts down).

    Through ASGI an application may only send 1000 or 3000-4999 (autobahn's
    ``sendClose`` refuses the rest), yet 1001 is the code RFC 6455 gives a
    server that goes down, and what clients' reconnect logic looks for.
    """
    protocol.sendCloseFrame(code=1001, reasonUtf8=b"server shutting down")


# --- oversized client messages --------------------------------------------------------
def close_cleanly_on_protocol_errors(protocol: Any) -> None:
    """Answer a protocol violation (e.g. a message over daphne's 1 MiB limit) with
    a close frame (1009 "message too big" for the size) instead of a bare TCP drop.
    """
    protocol.failByDrop = False


def oversized_message(protocol: Any) -> int | None:
    """The size of the client message that broke the size limit, if one did."""
    if protocol.wasMaxMessagePayloadSizeExceeded or (
        protocol.wasMaxFramePayloadSizeExceeded
    ):
        # Set when a message begins; only for the log line.
        return int(getattr(protocol, "message_data_total_length", 0))
    return None


def oversized_was_compressed(protocol: Any) -> bool:
    """Whether that message came deflated (permessage-deflate): its size is then
    the bytes on the wire; autobahn stopped inflating it at the limit."""
    return bool(getattr(protocol, "_isMessageCompressed", False))


def message_size_limit(protocol: Any) -> int:
    """The largest client message daphne accepts on this connection (bytes)."""
    return int(protocol.maxMessagePayloadSize)


# --- keepalive ------------------------------------------------------------------------
def spread_keepalive(protocol: Any, jitter: Callable[[], float]) -> bool:
    """Move daphne's ``last_ping`` forward by ``jitter() * ping_interval``.

    Daphne pings a client ``ping_interval`` s after its last message, so clients
    that connect or send together are pinged together (docs/benchmarks.md,
    "Keepalive pings"); a random share of the interval spreads them. Forward, not
    back: no ping goes out sooner than daphne's own, so its ping timeout never
    drops a silent client sooner either. False (and nothing changed) when the
    values are not what daphne keeps there.
    """
    last_ping = getattr(protocol, "last_ping", None)
    interval = getattr(getattr(protocol, "server", None), "ping_interval", None)
    if not isinstance(last_ping, float) or not isinstance(interval, int | float):
        return False
    if interval <= 0:
        return False
    protocol.last_ping = last_ping + jitter() * interval
    return True


# --- the server's loop and shutdown ---------------------------------------------------
def server_loop() -> asyncio.AbstractEventLoop | None:
    """daphne's event loop, when this process is a daphne server (else None).

    Daphne implements no ASGI lifespan, but creates its loop at import time and
    runs it once listening: work scheduled on it starts with the server.
    """
    daphne_server = sys.modules.get("daphne.server")
    loop = getattr(daphne_server, "twisted_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


def on_server_shutdown(cleanup: Callable[[], Awaitable[None]], bound: float) -> bool:
    """Run ``cleanup`` on daphne's loop when the server shuts down (SIGTERM/SIGINT).

    Twisted fires "before shutdown" triggers, waiting for the Deferreds they
    return, before it disconnects every socket; daphne's own trigger (which
    cancels every application) is added later, when the server runs, so this one
    starts first. The Deferred completes when ``cleanup`` has finished or after
    ``bound`` seconds, whichever comes first. False when not under daphne.
    """
    if server_loop() is None:
        return False
    try:
        from twisted.internet import defer, reactor
    except ImportError:  # pragma: no cover
        return False

    def trigger() -> Any:
        async def bounded() -> None:
            started = time.monotonic()
            try:
                async with asyncio.timeout(bound):
                    await cleanup()
            except TimeoutError:
                logger.warning("event=shutdown_cleanup_timeout seconds=%.1f", bound)
            except Exception as exc:
                logger.error("event=shutdown_cleanup_failed error=%r", exc)
            else:
                logger.info(
                    "event=shutdown_cleanup_done seconds=%.2f",
                    time.monotonic() - started,
                )

        return defer.Deferred.fromFuture(asyncio.ensure_future(bounded()))

    reactor.addSystemEventTrigger("before", "shutdown", trigger)
    return True


# --- HTTP request bounds of a bare daphne ---------------------------------------------
# daphne has no limit on a request body (Twisted spools it to a file, then daphne
# queues all of it for the application at once: a 200 MiB POST cost 218 MiB of
# RSS) and no deadline for a request's headers (Twisted's idle timeout restarts
# with every byte: a slowloris keeps a socket forever). Both are bounded where
# Twisted parses the request, per connection, by wrapping the channel that
# daphne's HTTPFactory builds:
# - ``HTTPChannel._maybeChooseTransferDecoder(header, data)`` sees Content-Length
#   and Transfer-Encoding before any body byte; ``_ChunkedTransferDecoder`` hands
#   each decoded chunk to its ``dataCallback``;
# - ``allHeadersReceived`` ends a request's headers, ``allContentReceived`` its
#   body (daphne upgrades a WebSocket in there), ``requestDone`` a request,
#   ``connectionLost`` the connection.
_HTTP_CLASS_NAMES: tuple[tuple[str, str], ...] = (
    ("daphne.http_protocol:HTTPFactory", "buildProtocol"),
    ("twisted.web.http:HTTPChannel", "_maybeChooseTransferDecoder"),
    ("twisted.web.http:HTTPChannel", "allHeadersReceived"),
    ("twisted.web.http:HTTPChannel", "allContentReceived"),
    ("twisted.web.http:HTTPChannel", "requestDone"),
    ("twisted.web.http:HTTPChannel", "connectionLost"),
    ("twisted.web.http:_ChunkedTransferDecoder", "dataReceived"),
    ("daphne.ws_protocol:WebSocketProtocol", "onConnect"),
)
_http_bounds: dict[str, float] = {}

_TOO_LARGE = (
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
)


# How long a refused client may go on sending (its bytes read and discarded) so
# that it reads the answer instead of a reset (a lingering close, as Apache's).
LINGER_SECONDS = 5.0


def _respond_and_close(channel: Any, template: bytes, text: str) -> None:
    """Answer (JSON, like the API's errors) and close without buffering more.

    The answer is written and the write side shut (FIN after it); what the
    client still sends is read and thrown away for ``LINGER_SECONDS`` at most,
    so a client that sends its whole body before reading (urllib, requests)
    gets the status, not a reset; then the connection is closed.
    """
    from twisted.internet import reactor

    body = orjson.dumps({"detail": text}) + b"\n"
    transport = channel.transport
    if transport is None or getattr(transport, "disconnecting", False):
        return
    # Discard, never parse or buffer: later reads (dataReceived) and the rest of
    # the read being parsed now (LineReceiver goes on with rawDataReceived once
    # in raw mode; in line mode a body would be "a line too long": a close).
    channel.dataReceived = lambda data: None
    channel.rawDataReceived = lambda data: None
    channel.lineLengthExceeded = lambda line: None
    if hasattr(channel, "setRawMode"):
        channel.setRawMode()
    transport.write(template % (len(body), body))
    try:
        transport.loseWriteConnection()
    except (AttributeError, NotImplementedError):  # pragma: no cover
        transport.loseConnection()
        return
    reactor.callLater(LINGER_SECONDS, transport.loseConnection)


# The names _bound_channel sets on a channel (instance attributes over methods).
_BOUND_NAMES = (
    "_maybeChooseTransferDecoder",
    "allHeadersReceived",
    "allContentReceived",
    "requestDone",
    "connectionLost",
)


def _upgraded_to_websocket(channel: Any) -> bool:
    """Whether daphne handed this channel's connection to a WebSocket protocol."""
    from daphne.ws_protocol import WebSocketProtocol

    transport = channel.transport
    # TLS wraps: the upgrade swaps the wrapper's wrappedProtocol instead.
    protocol = getattr(transport, "wrappedProtocol", None) or getattr(
        transport, "protocol", None
    )
    return isinstance(protocol, WebSocketProtocol)


def _forget_upgraded(channel: Any) -> None:
    """Let an upgraded connection's HTTP channel keep nothing it no longer needs.

    The channel outlives the upgrade (the transport keeps it as its producer, for
    flow control) but never parses another byte: its upgrade request (headers,
    body buffer) and the bounds installed here are dead weight, ~5 KB of every
    WebSocket connection's memory (docs/benchmarks.md, "connection ladder").
    """
    for name in _BOUND_NAMES:
        channel.__dict__.pop(name, None)
    requests = getattr(channel, "requests", None)
    if isinstance(requests, list):
        requests.clear()


def _bound_channel(channel: Any, max_body: int, header_timeout: float) -> None:
    """Install the body limit and the header deadline on one HTTPChannel."""
    from twisted.internet import reactor

    from realtime import metrics

    state: dict[str, Any] = {"timer": None, "refused": False}

    def refuse_body(size: str) -> None:
        if state["refused"]:
            return
        state["refused"] = True
        metrics.HTTP_REFUSED.labels("body_too_large").inc()
        logger.debug("event=http_body_too_large size=%s limit=%d", size, max_body)
        _respond_and_close(
            channel,
            _TOO_LARGE,
            f"Request body too large: the server's limit is {max_body} bytes "
            "(REALTIME_HTTP_MAX_BODY_BYTES)",
        )

    def cancel() -> None:
        timer, state["timer"] = state["timer"], None
        if timer is not None and timer.active():
            timer.cancel()

    def expire() -> None:
        state["timer"] = None
        if getattr(channel, "_handlingRequest", False):
            return
        metrics.HTTP_REFUSED.labels("header_timeout").inc()
        logger.debug("event=http_header_timeout seconds=%.1f", header_timeout)
        _respond_and_close(
            channel,
            _TIMED_OUT,
            f"Request headers not complete within {header_timeout:g} s",
        )

    def arm() -> None:
        cancel()
        if header_timeout > 0:
            state["timer"] = reactor.callLater(header_timeout, expire)

    choose = channel._maybeChooseTransferDecoder
    all_headers = channel.allHeadersReceived
    all_content = channel.allContentReceived
    request_done = channel.requestDone
    connection_lost = channel.connectionLost

    def choose_transfer_decoder(header: bytes, data: bytes) -> bool:
        if header == b"Content-Length" and data.isdigit() and int(data) > max_body:
            refuse_body(data.decode("ascii"))
            channel.length = None
            return False
        if not choose(header, data):
            return False
        decoder = channel._transferDecoder
        callback = getattr(decoder, "dataCallback", None)
        if header == b"Transfer-Encoding" and callable(callback):
            received = [0]

            def counted(chunk: bytes) -> None:
                received[0] += len(chunk)
                if received[0] > max_body:
                    refuse_body(f"chunked>{max_body}")
                elif not state["refused"]:
                    callback(chunk)

            decoder.dataCallback = counted
        return True

    def all_headers_received() -> None:
        cancel()
        if not state["refused"]:
            all_headers()

    def all_content_received() -> None:
        all_content()  # daphne's upgrade to a WebSocket happens in here
        if _upgraded_to_websocket(channel):
            _forget_upgraded(channel)

    def request_done_and_rearm(request: Any) -> None:
        request_done(request)
        handling = getattr(channel, "_handlingRequest", False)
        if channel.transport is not None and not handling:
            arm()  # the next request of a kept-alive connection

    def connection_lost_and_cancel(reason: Any) -> None:
        cancel()
        connection_lost(reason)

    # Instance attributes shadow the methods: Twisted calls them as self.<name>.
    channel._maybeChooseTransferDecoder = choose_transfer_decoder
    channel.allHeadersReceived = all_headers_received
    channel.allContentReceived = all_content_received
    channel.requestDone = request_done_and_rearm
    channel.connectionLost = connection_lost_and_cancel
    arm()


def bound_http_requests(max_body: int, header_timeout: float) -> bool:
    """Bound every HTTP request this daphne process parses (call once, at start).

    Bodies over ``max_body`` bytes, announced by Content-Length or grown past it
    in chunks, are answered 413 and the connection closed before the body is
    buffered; a request whose headers are not complete ``header_timeout`` s after
    the connection opened (or after its previous request) is answered 408 and
    closed. False, with one warning, when daphne or Twisted lack a name used
    here: the process then runs with daphne's own behaviour (no bounds; put a
    proxy in front, docs/deploying.md).
    """
    if _http_bounds:
        _http_bounds.update(max_body=max_body, header_timeout=header_timeout)
        return True
    missing = missing_names(_HTTP_CLASS_NAMES)
    if missing:
        logger.warning(
            "event=http_bounds_unavailable missing=%s hint='request bodies and "
            "header times are unbounded; put nginx in front (docs/deploying.md)'",
            ",".join(missing),
        )
        return False
    from daphne.http_protocol import HTTPFactory

    _http_bounds.update(max_body=max_body, header_timeout=header_timeout)
    build = HTTPFactory.buildProtocol

    @functools.wraps(build)
    def build_bounded(factory: Any, addr: Any) -> Any:
        protocol = build(factory, addr)
        # Twisted's factory builds a _GenericHTTPChannelProtocol around the
        # HTTPChannel (for HTTP/2 negotiation); HTTP/1.1 is its _channel.
        channel = getattr(protocol, "_channel", protocol)
        try:
            _bound_channel(
                channel,
                int(_http_bounds["max_body"]),
                float(_http_bounds["header_timeout"]),
            )
        except Exception as exc:  # never refuse a connection over a bound
            logger.warning("event=http_bounds_failed error=%r", exc)
        return protocol

    HTTPFactory.buildProtocol = build_bounded
    logger.info(
        "event=http_bounds max_body_bytes=%d header_timeout=%.1f",
        max_body,
        header_timeout,
    )
    return True


# --- daphne's periodic walks over every connection ------------------------------------
# daphne's Server walks all of its connections on the reactor thread, in one go:
# ``application_checker`` every second (reaps finished applications, cancels the
# ones that outlive ``application_close_timeout`` after a disconnect) and
# ``timeout_checker`` every 2 s (each protocol's ``check_timeouts``: its
# keepalive ping when due, the WebSocket timeouts). At 10,000 connections each
# walk took 10-50 ms, and every tick waiting behind it was late by as much
# (docs/benchmarks.md, "connection ladder"). The same work in slices, with the
# same period per connection, keeps each turn of the loop short.
_WALK_CLASS_NAMES: tuple[tuple[str, str], ...] = (
    ("daphne.server:Server", "application_checker"),
    ("daphne.server:Server", "timeout_checker"),
    ("daphne.server:Server", "stop"),
    ("daphne.ws_protocol:WebSocketProtocol", "check_timeouts"),
    ("daphne.ws_protocol:WebSocketProtocol", "handle_exception"),
    ("daphne.http_protocol:WebRequest", "check_timeouts"),
)
_WALK_SERVER_NAMES = ("connections", "application_close_timeout")


class _SlicedWalk:
    """One of daphne's walks, a slice of the connections every ``period / slices``.

    Each round works through the connections open when it began, in ``slices``
    calls; a connection that opens during a round is first visited in the next
    one, so it waits at most two periods instead of one. A visit that raises is
    logged and the walk goes on: daphne's own walk would have stopped for good.
    """

    def __init__(
        self,
        server: Any,
        name: str,
        period: float,
        slices: int,
        visit: Callable[[Any, Any, dict[str, Any]], None],
    ) -> None:
        self.server = server
        self.name = name
        self.interval = period / slices
        self.slices = slices
        self.visit = visit
        self.round: list[Any] = []
        self.position = 0
        self.per_call = 1

    def run(self) -> None:
        from twisted.internet import reactor

        try:
            self.step()
        finally:
            reactor.callLater(self.interval, self.run)

    def step(self) -> None:
        connections = self.server.connections
        if self.position >= len(self.round):
            self.round = list(connections)
            self.position = 0
            self.per_call = max(1, -(-len(self.round) // self.slices))
        end = self.position + self.per_call
        batch = self.round[self.position : end]
        self.position = end
        for protocol in batch:
            details = connections.get(protocol)
            if details is None:
                continue  # gone since the round began
            try:
                self.visit(self.server, protocol, details)
            except Exception as exc:
                logger.error(
                    "event=daphne_walk_failed walk=%s error=%r", self.name, exc
                )


def _check_timeouts(server: Any, protocol: Any, details: dict[str, Any]) -> None:
    protocol.check_timeouts()


def _reap_application(server: Any, protocol: Any, details: dict[str, Any]) -> None:
    """daphne's ``application_checker`` for one connection (daphne 4.x)."""
    disconnected = details.get("disconnected", None)
    instance = details.get("application_instance", None)
    if (
        disconnected
        and instance
        and not instance.done()
        and time.time() - disconnected > server.application_close_timeout
    ):
        logger.warning(
            "event=application_kill protocol=%r hint='application took too long "
            "to shut down'",
            protocol,
        )
        instance.cancel()
    if instance and instance.done():
        try:
            exception = instance.exception()
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            pass
        else:
            if exception:
                if isinstance(exception, KeyboardInterrupt):
                    server.stop()  # how daphne's tests ask the server to exit
                else:
                    logger.error(
                        "event=application_exception error=%r",
                        exception,
                        exc_info=exception,
                    )
                    if not disconnected:
                        protocol.handle_exception(exception)
        details.pop("application_instance", None)
        instance = None
    if not instance and disconnected:
        server.connections.pop(protocol, None)


def slice_server_walks(slices: int) -> bool:
    """Make daphne's per-connection walks run in ``slices`` parts (call once, at
    start, before the server runs; ``slices`` 1: daphne's own walks).

    False, with one warning, when daphne lacks a name used here (its own walks
    then stay). A server instance without the expected attributes gets daphne's
    own walks too, checked on its first call.
    """
    if slices <= 1:
        return False
    missing = missing_names(_WALK_CLASS_NAMES)
    if missing:
        logger.warning(
            "event=daphne_walks_unsliced missing=%s hint='daphne walks every "
            "connection at once; pin the daphne version of requirements.txt'",
            ",".join(missing),
        )
        return False
    from daphne.server import Server

    original = {
        "application_checker": Server.application_checker,
        "timeout_checker": Server.timeout_checker,
    }
    if getattr(original["application_checker"], "_fmpsite_sliced", False):
        return True  # installed already (a second import of the ASGI module)

    def install(name: str, period: float, visit: Any) -> Callable[[Any], None]:
        def start(server: Any) -> None:
            # daphne's run() calls each checker once; it then reschedules itself.
            missing = [n for n in _WALK_SERVER_NAMES if not hasattr(server, n)]
            if missing or not isinstance(server.connections, dict):
                logger.warning(
                    "event=daphne_walks_unsliced missing=server.%s walk=%s",
                    ",server.".join(missing) or "connections(dict)",
                    name,
                )
                original[name](server)
                return
            _SlicedWalk(server, name, period, slices, visit).run()

        start._fmpsite_sliced = True  # type: ignore[attr-defined]
        return start

    Server.application_checker = install(  # type: ignore[method-assign]
        "application_checker", 1.0, _reap_application
    )
    Server.timeout_checker = install(  # type: ignore[method-assign]
        "timeout_checker", 2.0, _check_timeouts
    )
    logger.info("event=daphne_walks_sliced slices=%d", slices)
    return True
