"""PriceStreamConsumer: the client protocol of PROTOCOL.md on one WebSocket.

The consumer holds only per-connection state: its symbols, its rate limiter and its
outbox. Price updates never pass through ``dispatch()``: the process's FanoutHub
writes them into the outbox (see realtime/fanout/hub.py), so the tick path has no
per-client JSON encoding and no thread hop.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import orjson
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from realtime.fanout.backpressure import find_protocol
from realtime.fanout.hub import FanoutHub, Outbox, get_hub
from realtime.fanout.keepalive import spread_keepalive
from realtime.fanout.limits import RateLimiter
from realtime.feed.cache import get_tick_cache
from realtime.feed.state import encode_price_update
from realtime.symbols import InvalidSymbol, parse_symbols

logger = logging.getLogger(__name__)

CLOSE_FLOODING = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
_conn_ids = itertools.count(1)


class PriceStreamConsumer(AsyncJsonWebsocketConsumer):
    hub: FanoutHub
    outbox: Outbox
    limiter: RateLimiter
    symbols: dict[str, None]  # insertion-ordered set

    # No channel-layer channel per connection: the process's FanoutHub is the
    # only group member and hands ticks to the consumer's Outbox. An alias that
    # names no layer makes Channels skip ``new_channel``/``receive`` for each
    # socket, which saves a Redis round trip and a pending receive per connection
    # and, above all, means a Redis outage cannot close every client with 1011.
    channel_layer_alias = "fmpsite.no-layer-per-consumer"

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its ``aclose_old_connections()`` hop.

        Channels 4.3 hops to a worker thread before every handler to close stale
        database connections. This consumer never touches the ORM (auth happens in
        the middleware, before it), so the hop would only add latency and serialise
        every client message behind the thread pool.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- connection ----------------------------------------------------------------
    async def connect(self) -> None:
        self.conn_id = f"ws-{next(_conn_ids)}"
        user = self.scope.get("user")
        authenticated = bool(user is not None and user.is_authenticated)
        if not authenticated and not settings.REALTIME_ALLOW_ANONYMOUS:
            logger.info("event=ws_refused conn=%s reason=anonymous", self.conn_id)
            await self.close()  # before accept: the handshake gets HTTP 403
            return
        user_key = f"user:{user.pk}" if authenticated else None
        self.hub = get_hub()
        if (
            user_key is not None
            and self.hub.connections_of(user_key)
            >= settings.REALTIME_MAX_CONNECTIONS_PER_USER
        ):
            logger.info("event=ws_refused conn=%s reason=connection_cap", self.conn_id)
            await self.close()
            return
        self.symbols = {}
        self.limiter = RateLimiter(
            rate=settings.REALTIME_RATE_LIMIT,
            burst=settings.REALTIME_RATE_BURST,
            flood_after=settings.REALTIME_FLOOD_CLOSE_AFTER,
        )
        self.outbox = Outbox(
            self._send_text,
            self.conn_id,
            user_key,
            close=self._close_with,
            protocol=find_protocol(self.base_send),
            direct=settings.REALTIME_DIRECT_WRITE,
        )
        spread_keepalive(self.outbox.protocol)
        await self.accept()
        await self.send_json(
            {"type": "connected", "message": "Connected to real-time price stream"}
        )
        # After the greeting: the hub may queue an upstream_status at once.
        self.hub.attach(self.outbox)
        logger.info(
            "event=ws_connected conn=%s user=%s direct_write=%s",
            self.conn_id,
            user_key,
            self.outbox.direct,
        )

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # As channels' own, minus the aclose_old_connections() hop (see dispatch);
        # this consumer joins no groups itself (the hub does).
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "outbox"):
            await self.hub.detach(self.outbox)
            logger.info(
                "event=ws_disconnected conn=%s code=%s symbols=%d",
                self.conn_id,
                code,
                len(self.symbols),
            )

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _close_with(self, code: int) -> None:
        await self.close(code=code)

    # --- input ---------------------------------------------------------------------
    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs
    ) -> None:
        # daphne just reset its keepalive clock for this client; keep pings spread.
        spread_keepalive(self.outbox.protocol)
        if not self.limiter.allow():
            if self.limiter.flooding:
                logger.warning("event=ws_flood_closed conn=%s", self.conn_id)
                await self.close(code=CLOSE_FLOODING)
                return
            await self.send_error(
                "rate_limited",
                f"Rate limit exceeded: at most {settings.REALTIME_RATE_LIMIT:g} "
                "messages per second",
            )
            return
        if text_data is None:
            await self.send_error(
                "binary_not_supported",
                "Binary frames are not supported; send JSON text",
            )
            return
        limit = settings.REALTIME_MAX_MESSAGE_BYTES
        size = (
            len(text_data) if len(text_data) * 4 <= limit else len(text_data.encode())
        )
        if size > limit:
            await self.send_error(
                "message_too_large",
                f"Message too large: {size} bytes (limit {limit} bytes)",
            )
            return
        try:
            content = orjson.loads(text_data)
        except orjson.JSONDecodeError as exc:
            await self.send_error("invalid_json", f"Invalid JSON: {exc}")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs) -> None:
        if not isinstance(content, dict):
            kind = {list: "array", str: "string"}.get(type(content), "scalar")
            await self.send_error(
                "bad_request", f"Message must be a JSON object, got {kind}"
            )
            return
        action = content.get("action")
        if action is None:
            await self.send_error("bad_request", "Missing 'action' field")
            return
        handler = self._actions.get(action) if isinstance(action, str) else None
        if handler is None:
            await self.send_error("unknown_action", f"Unknown action: {action!r}")
            return
        await handler(self, content)

    # --- actions -------------------------------------------------------------------
    async def _subscribe(self, content: dict[str, Any]) -> None:
        parsed = await self._parse_symbols(content)
        if parsed is None:
            return
        room = settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION - len(self.symbols)
        new = [s for s in parsed.valid if s not in self.symbols]
        added, refused = new[: max(room, 0)], new[max(room, 0) :]
        for symbol in added:
            self.symbols[symbol] = None
        joined = self.hub.add(self.outbox, added)
        snapshots = await get_tick_cache().aget_many(added) if added else {}
        await self.send_json(
            {
                "type": "subscription",
                "action": "subscribed",
                "symbols": added,
                "subscribed_total": len(self.symbols),
            }
        )
        for symbol in added:
            state = snapshots.get(symbol)
            # A live update already pending is at least as new as the snapshot.
            if state is not None and not self.outbox.has_pending(symbol):
                await self.send(text_data=encode_price_update(state, snapshot=True))
        if refused:
            await self.send_error(
                "symbol_limit",
                f"Symbol limit reached: at most "
                f"{settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION} symbols per "
                f"connection; not subscribed: {', '.join(refused)}",
            )
        await self.hub.join(joined)
        if added:
            logger.info(
                "event=ws_subscribed conn=%s symbols=%s total=%d",
                self.conn_id,
                ",".join(added),
                len(self.symbols),
            )

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        parsed = await self._parse_symbols(content)
        if parsed is None:
            return
        removed = [s for s in parsed.valid if s in self.symbols]
        for symbol in removed:
            del self.symbols[symbol]
        await self.hub.remove(self.outbox, removed)
        await self.send_json(
            {
                "type": "subscription",
                "action": "unsubscribed",
                "symbols": removed,
                "subscribed_total": len(self.symbols),
            }
        )

    async def _get_subscriptions(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "subscriptions", "symbols": list(self.symbols)})

    async def _ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong", "timestamp": int(time.time() * 1000)})

    _actions = {
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
        "get_subscriptions": _get_subscriptions,
        "ping": _ping,
    }

    async def _parse_symbols(self, content: dict[str, Any]):
        """Valid symbols of the request; an ``error`` names any invalid ones."""
        if "symbols" not in content:
            await self.send_error("bad_request", "Missing 'symbols' field")
            return None
        try:
            parsed = parse_symbols(content["symbols"])
        except InvalidSymbol as exc:
            await self.send_error("invalid_symbol", str(exc))
            return None
        if parsed.invalid:
            bad = ", ".join(repr(v)[:40] for v in parsed.invalid[:10])
            await self.send_error("invalid_symbol", f"Invalid symbols: {bad}")
        return parsed

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "message": message, "code": code})
