"""A connection token's lifetime on an open connection (docs/protocol.md, "Token
lifetime").

A connection opened with a connection token (JWT) lasts until the token's
``exp``: the client is told ``token_expiring`` ahead of it (30 s before, or at
half-life for a token shorter than a minute), may send ``refresh`` with a newer
token of the same ``sub``, and is closed with 4001 at ``exp`` when it did not.
Two ``call_later`` handles per token connection, re-armed on refresh and
cancelled on disconnect: nothing on the per-tick path. DRF-token and session
connections never get one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from realtime.fanout.closecodes import CLOSE_TOKEN_EXPIRED
from realtime.tokens import ConnectionClaims, ConnectionTokenError, verify_refresh

logger = logging.getLogger(__name__)

WARN_BEFORE = 30.0  # seconds before exp that token_expiring is sent


def warn_delay(seconds_left: float) -> float:
    """When to warn, from now: WARN_BEFORE ahead of exp, or at half-life when the
    token is too short for that to leave the client any time to react."""
    if seconds_left >= 2 * WARN_BEFORE:
        return seconds_left - WARN_BEFORE
    return max(seconds_left / 2, 0.0)


class TokenDeadline:
    """The warning and the close of one token connection."""

    def __init__(
        self,
        claims: ConnectionClaims,
        *,
        conn_id: str,
        reply: Callable[[dict[str, Any]], None],
        close: Callable[[int], Awaitable[None]],
        site_user_active: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.claims = claims
        self.conn_id = conn_id
        self._reply = reply
        self._close = close
        self._site_user_active = site_user_active
        self._handles: list[asyncio.TimerHandle] = []

    def arm(self) -> None:
        self.cancel()
        loop = asyncio.get_running_loop()
        left = self.claims.exp - time.time()
        self._handles = [
            loop.call_later(warn_delay(left), self._warn),
            loop.call_later(max(left, 0.0), self._expire),
        ]

    def cancel(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles = []

    def expires_in(self) -> int:
        return max(0, round(self.claims.exp - time.time()))

    def _warn(self) -> None:
        self._reply({"type": "token_expiring", "expires_in": self.expires_in()})

    def _expire(self) -> None:
        logger.info(
            "event=ws_token_expired conn=%s code=%d", self.conn_id, CLOSE_TOKEN_EXPIRED
        )
        self._handles = []
        asyncio.ensure_future(self._close(CLOSE_TOKEN_EXPIRED))

    async def refresh(self, token: object) -> str | None:
        """Take ``token`` as the connection's new deadline; the error message
        if it is refused (the old deadline then stands)."""
        if not isinstance(token, str) or not token:
            return "Missing 'token' field"
        try:
            claims = verify_refresh(self.claims, token)
        except ConnectionTokenError as exc:
            detail = f" ({exc.detail})" if exc.detail else ""
            return f"Token refused: {exc.reason}{detail}"
        if claims.issued_by_site and not await self._site_user_active(claims.sub):
            return "Token refused: token_user_inactive"
        self.claims = claims
        self.arm()
        logger.info("event=ws_token_refreshed conn=%s exp=%d", self.conn_id, claims.exp)
        self._reply({"type": "token_refreshed", "expires_in": self.expires_in()})
        return None
