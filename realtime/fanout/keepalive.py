"""Spread daphne's keepalive pings over its ping interval.

Daphne pings a WebSocket once the client has sent nothing for ``ping_interval``
seconds (20 by default), counting from the connection's open or the client's last
message, and checks every connection every 2 s. Clients that connect or send
together (every client of a restarted web process reconnecting and
resubscribing, or a benchmark) are therefore pinged together and answer
together: 1,000 pings and 1,000 pongs through autobahn and Twisted in one loop
turn, which held every price update back by 120-180 ms every 20 s on the 2-core
benchmark machine (docs/benchmarks.md, "Keepalive pings"). Moving the
connection's ping clock forward by a random share of the interval, after the open
and after each client message, spreads the pings over the next interval instead.

Forward, not back: a ping never goes out sooner than daphne would send it, so
its ping timeout never drops a silent client sooner either. (Backdating did: a
stalled reader that cannot answer pings was dropped by daphne's ping timeout,
1006, before the hub's stall deadline could close it with 4009.)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


def spread_keepalive(
    protocol: Any, jitter: Callable[[], float] = random.random
) -> bool:
    """Move daphne's ``last_ping`` forward by ``jitter() * ping_interval``.

    A ping then goes out between ``ping_interval`` and twice that after the
    client's last message, not exactly ``ping_interval`` after it. False (and
    nothing changed) when ``protocol`` is not a daphne WebSocket protocol, e.g.
    under the test communicator or another ASGI server.
    """
    last_ping = getattr(protocol, "last_ping", None)
    interval = getattr(getattr(protocol, "server", None), "ping_interval", None)
    if not isinstance(last_ping, float) or not isinstance(interval, int | float):
        return False
    if interval <= 0:
        return False
    protocol.last_ping = last_ping + jitter() * interval
    return True
