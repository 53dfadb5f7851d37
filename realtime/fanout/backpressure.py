"""How many bytes the server still holds for a client that is not reading.

ASGI gives an application no backpressure: under daphne, ``send`` returns at once
and Twisted buffers whatever the client does not read, without bound. To keep
memory bounded for a stalled reader, the hub asks the connection's transport how
much it is holding and stops writing to it past a limit (updates then conflate in
the connection's outbox, one per symbol).

Daphne hands each application ``partial(Server.handle_reply, protocol)`` as its
``send`` (channels' session wrapper keeps it as ``real_send``); the protocol's
``transport`` is a Twisted TCP transport whose ``dataBuffer`` (past ``offset``)
and ``_tempDataLen`` are the pending bytes. Under any other server (or the test
communicator) no transport is found and nothing is limited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_MAX_DEPTH = 8


def find_protocol(send: Callable[..., Any]) -> Any | None:
    """The daphne WebSocket protocol behind an ASGI ``send``, if there is one."""
    current: Any = send
    for _ in range(_MAX_DEPTH):
        if isinstance(current, functools.partial):
            for arg in current.args:
                transport = getattr(arg, "transport", None)
                if transport is not None and hasattr(transport, "dataBuffer"):
                    return arg
            current = current.func
            continue
        owner = getattr(current, "__self__", None)
        current = getattr(owner, "real_send", None) if owner is not None else None
        if current is None:
            return None
    return None


def buffered_bytes(transport: Any) -> int:
    """Bytes written by the server but not yet accepted by the kernel.

    Twisted keeps bytes it already sent at the head of ``dataBuffer`` until the
    next refill; ``offset`` says how many.
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
