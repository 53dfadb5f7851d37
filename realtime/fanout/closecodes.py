"""WebSocket close codes the gateway sends (docs/protocol.md, "Close codes").

One module, so the consumer, the hub and the tests name each code the same way.
"""

from __future__ import annotations

# RFC 6455, section 7.4.1.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server shuts down (SIGTERM/SIGINT): reconnect
CLOSE_MESSAGE_TOO_BIG = 1009  # a client message over daphne's 1 MiB limit
# Private use (4000-4999).
CLOSE_TOKEN_EXPIRED = 4001  # the connection token's exp passed without a refresh
CLOSE_FLOODING = 4008  # the client kept sending past the rate limit
CLOSE_STALLED = 4009  # the client did not read: updates, then replies, backed up
