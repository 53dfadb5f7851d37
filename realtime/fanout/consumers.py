"""PriceStreamConsumer: the client protocol of docs/protocol.md on one WebSocket.

The consumer holds only per-connection state: its symbols, its rate limiter and its
outbox. Price updates never pass through ``dispatch()``: the process's FanoutHub
writes them into the outbox (see realtime/fanout/hub.py), so the tick path has no
per-client JSON encoding and no thread hop.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from typing import Any

import orjson
from django.conf import settings

from realtime import metrics
from realtime.backends import backends
from realtime.fanout import bars, daphne_io, subscribe_reads
from realtime.fanout.auth import log_refused, site_user_active
from realtime.fanout.catchup import stale_snapshot_pages
from realtime.fanout.closecodes import CLOSE_MESSAGE_TOO_BIG
from realtime.fanout.hub import FanoutHub, Outbox
from realtime.fanout.hubs import get_hub
from realtime.fanout.limits import RateLimiter, close_flooding
from realtime.fanout.nodb import NoDatabaseJsonWebsocketConsumer
from realtime.fanout.shaping import ShapingError, parse_shaping, shape_subscription
from realtime.fanout.tokenlife import TokenDeadline
from realtime.feed.state import (
    RECOVERED,
    add_fields,
    encode_upstream_refused,
    to_price_update,
)
from realtime.reference.selectors import (
    get_references,
    snapshot_fields,
    unknown_symbols,
)
from realtime.symbols import (
    InvalidSymbol,
    SymbolParse,
    normalize_symbol,
    parse_symbols,
)

logger = logging.getLogger(__name__)

_conn_ids = itertools.count(1)
# How long a subscribe waits for FMP's reference data before going on without it.
REFERENCE_WAIT = 2.0


def parse_recover(raw: object) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """``recover`` of a subscribe -> ({symbol: (epoch, seq)}, problems).

    Valid entries are kept even when others are bad, so one malformed position
    costs only that symbol its recovery (it gets a snapshot instead).
    """
    if not isinstance(raw, dict):
        kind = {list: "array", str: "string"}.get(type(raw), "scalar")
        return {}, [
            f"'recover' must be an object of symbol -> {{epoch, seq}}, got {kind}"
        ]
    wanted: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for key, position in list(raw.items())[:200]:
        if isinstance(key, str) and "@" in key:
            continue  # a bar stream's position (realtime/fanout/bars.py)
        try:
            symbol = normalize_symbol(key)
        except InvalidSymbol:
            problems.append(f"{str(key)[:40]!r}: invalid symbol")
            continue
        epoch = position.get("epoch") if isinstance(position, dict) else None
        seq = position.get("seq") if isinstance(position, dict) else None
        if (
            not isinstance(epoch, str)
            or not 0 < len(epoch) <= 64
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
        ):
            problems.append(
                f'{symbol}: expected {{"epoch": string, "seq": integer >= 0}}'
            )
            continue
        wanted[symbol] = (epoch, seq)
    return wanted, problems


class PriceStreamConsumer(NoDatabaseJsonWebsocketConsumer):
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

    # --- connection ----------------------------------------------------------------
    async def connect(self) -> None:
        self.conn_id = f"ws-{next(_conn_ids)}"
        user = self.scope.get("user")
        authenticated = bool(user is not None and user.is_authenticated)
        if not authenticated and not settings.REALTIME_ALLOW_ANONYMOUS:
            log_refused(self.scope, "anonymous", conn=self.conn_id)
            await self.close()  # before accept: the handshake gets HTTP 403
            return
        principal = self.scope.get("realtime_principal") or (
            f"user:{user.pk}" if authenticated else None
        )
        self.hub = get_hub()
        protocol = daphne_io.protocol_for(self.base_send)
        outbox = Outbox(
            self._send_text,
            self.conn_id,
            principal,
            close=self._close_with,
            protocol=protocol,
            direct=settings.REALTIME_DIRECT_WRITE,
            compression=settings.REALTIME_WS_COMPRESSION,
        )
        if not await self.hub.admit(outbox, principal):
            log_refused(
                self.scope,
                "connection_cap",
                conn=self.conn_id,
                principal=principal,
                cap=settings.REALTIME_MAX_CONNECTIONS_PER_USER,
            )
            await self.close()
            return
        self.outbox = outbox
        self.symbols = {}
        self.limiter = RateLimiter(
            rate=settings.REALTIME_RATE_LIMIT,
            burst=settings.REALTIME_RATE_BURST,
            flood_after=settings.REALTIME_FLOOD_CLOSE_AFTER,
        )
        if protocol is not None:
            daphne_io.close_cleanly_on_protocol_errors(protocol)
            daphne_io.spread_keepalive(protocol, random.random)
        await self.accept()
        self.outbox.accepted()  # the extensions the handshake negotiated
        # Everything after the handshake goes through the outbox, in order: the
        # greeting first, then (if the upstream is down) its status.
        self.reply(
            {"type": "connected", "message": "Connected to real-time price stream"}
        )
        self.hub.attach(self.outbox)
        self.token_deadline = self._token_deadline()
        logger.info(
            "event=ws_connected conn=%s user=%s direct_write=%s deflate=%s",
            self.conn_id,
            principal,
            self.outbox.direct,
            self.outbox.deflate is not None,
        )

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "outbox"):
            return
        protocol = self.outbox.protocol
        size = daphne_io.oversized_message(protocol) if protocol is not None else None
        if size is not None:
            logger.warning(
                "event=ws_message_too_big conn=%s code=%d size=%d limit=%d "
                "compressed=%s",
                self.conn_id,
                CLOSE_MESSAGE_TOO_BIG,
                size,
                daphne_io.message_size_limit(protocol),
                str(daphne_io.oversized_was_compressed(protocol)).lower(),
            )
        if self.token_deadline is not None:
            self.token_deadline.cancel()
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

    def reply(self, content: dict[str, Any]) -> None:
        """Queue a message for the client behind everything queued before it.

        Through the outbox, so every message counts against the connection's one
        send-buffer bound (realtime/fanout/hub.py, ``send_reply``).
        """
        self.hub.send_reply(self.outbox, orjson.dumps(content).decode())

    # --- input ---------------------------------------------------------------------
    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs
    ) -> None:
        if self.outbox.protocol is not None:
            # daphne just reset its keepalive clock for this client: keep pings spread.
            daphne_io.spread_keepalive(self.outbox.protocol, random.random)
        if self.outbox.closed:  # after a 4008/4009 decision: dropped, unlogged
            metrics.WS_DROPPED_AFTER_CLOSE.inc()
            return
        if not self.limiter.allow():
            if self.limiter.flooding:
                await close_flooding(self.outbox, self.limiter)
                return
            self.send_error(
                "rate_limited",
                f"Rate limit exceeded: at most {settings.REALTIME_RATE_LIMIT:g} "
                "messages per second",
            )
            return
        if text_data is None:
            self.send_error(
                "binary_not_supported",
                "Binary frames are not supported; send JSON text",
            )
            return
        limit = settings.REALTIME_MAX_MESSAGE_BYTES
        size = (
            len(text_data) if len(text_data) * 4 <= limit else len(text_data.encode())
        )
        if size > limit:
            self.send_error(
                "message_too_large",
                f"Message too large: {size} bytes (limit {limit} bytes)",
            )
            return
        try:
            content = orjson.loads(text_data)
        except orjson.JSONDecodeError as exc:
            self.send_error("invalid_json", f"Invalid JSON: {exc}")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs) -> None:
        if not isinstance(content, dict):
            kind = {list: "array", str: "string"}.get(type(content), "scalar")
            self.send_error("bad_request", f"Message must be a JSON object, got {kind}")
            return
        action = content.get("action")
        if action is None:
            self.send_error("bad_request", "Missing 'action' field")
            return
        handler = self._actions.get(action) if isinstance(action, str) else None
        if handler is None:
            self.send_error("unknown_action", f"Unknown action: {action!r}")
            return
        await handler(self, content)

    # --- actions -------------------------------------------------------------------
    async def _subscribe(self, content: dict[str, Any]) -> None:
        try:  # a bad cap or filter refuses the whole request (shaping.py)
            shaping = parse_shaping(content, ceiling=settings.REALTIME_MAX_RATE_CEILING)
        except ShapingError as exc:
            self.send_error(exc.code, str(exc))
            return
        parsed = self._parse_symbols(content)
        if parsed is None:
            return
        room = settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION - len(self.symbols)
        new = [s for s in parsed.valid if s not in self.symbols]
        if new:
            # Cached per trading day; fails open when FMP's REST API is unreachable.
            unknown = set(await unknown_symbols(new, wait=REFERENCE_WAIT))
            if unknown:
                self.send_error(
                    "unknown_symbol",
                    f"Unknown symbols: {', '.join(sorted(unknown))} (FMP does not "
                    "list them); not subscribed",
                )
                new = [s for s in new if s not in unknown]
        added, refused = new[: max(room, 0)], new[max(room, 0) :]
        if refused:
            self.send_error(
                "symbol_limit",
                f"Symbol limit reached: at most "
                f"{settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION} symbols per "
                f"connection; not subscribed: {', '.join(refused)}",
            )
        upstream_refused = self.hub.refusals_for(added)
        for message in sorted(set(upstream_refused.values())):
            names = sorted(s for s, m in upstream_refused.items() if m == message)
            self.hub.send_reply(self.outbox, encode_upstream_refused(names, message))
        recover: dict[str, tuple[str, int]] | None = None
        if "recover" in content:
            recover, problems = parse_recover(content["recover"])
            if problems:
                self.send_error(
                    "bad_request", "Invalid 'recover': " + "; ".join(problems[:10])
                )
        already = [s for s in parsed.valid if s in self.symbols]
        for symbol in added:
            self.symbols[symbol] = None
        shape_subscription(
            self.hub.shaper,
            self.outbox,
            shaping,
            added=added,
            already=already,
            default=settings.REALTIME_DEFAULT_MAX_RATE,
            ceiling=settings.REALTIME_MAX_RATE_CEILING,
        )
        # Live updates of the new symbols wait in the hub until each symbol's
        # replay or snapshot is queued (FanoutHub.hold): no gap, no duplicate.
        self.hub.hold(self.outbox, added)
        try:
            await self._send_initial(added, recover)
        except subscribe_reads.StoreUnavailable as exc:
            await self._unavailable(added, exc)
            return
        except BaseException:
            for symbol in added:  # never leave a symbol held
                self.hub.drop_hold(self.outbox, symbol)
            raise
        if "bars" in content:
            await self._subscribe_bars(parsed.valid, content)
        if added:
            logger.info(
                "event=ws_subscribed conn=%s symbols=%s total=%d recovered=%d",
                self.conn_id,
                ",".join(added),
                len(self.symbols),
                len(recover or {}),
            )

    async def _send_initial(
        self, added: list[str], recover: dict[str, tuple[str, int]] | None
    ) -> None:
        """Ack, list, then per symbol the replay (recovered) or the snapshot, then
        the held live updates after it."""
        await self.hub.subscribe(self.outbox, added)
        # Coalesced with the process's other subscribes (subscribe_reads.py).
        wanted = {s: recover[s][1] for s in added if recover and s in recover}
        pages = await subscribe_reads.pages(wanted) if wanted else {}
        recovered = [
            s
            for s, page in pages.items()
            if page is not None and page.recovers(*recover[s])  # type: ignore[index]
        ]
        rest = [s for s in added if s not in recovered]
        snapshots = await subscribe_reads.snapshots(rest) if rest else {}
        epoch = await subscribe_reads.epoch() if added else None
        # A cache hit after the unknown-symbol check: names, previous close, open.
        references = (
            await get_references(list(snapshots), wait=REFERENCE_WAIT)
            if snapshots
            else {}
        )
        # Updates this process is past already but the cache does not show yet;
        # the last await before the releases below (catchup.py says why).
        behind = await stale_snapshot_pages(
            history=backends().history,
            sequence=self.hub.sequence,
            snapshots=snapshots,
            epoch=epoch,
        )
        ack: dict[str, Any] = {
            "type": "subscription",
            "action": "subscribed",
            "symbols": added,
            "subscribed_total": len(self.symbols),
        }
        if epoch is not None:
            ack["epoch"] = epoch
        if recover is not None:
            ack["recovered"] = recovered
            ack["not_recovered"] = [s for s in pages if s not in recovered]
        self.reply(ack)
        self.reply(self._subscriptions())
        for symbol in recovered:
            page = pages[symbol]
            assert page is not None
            self.hub.send_updates(
                self.outbox,
                symbol,
                [add_fields(text, RECOVERED) for _, text in page.updates],
            )
            self.hub.release(self.outbox, symbol, page.last_seq, page.epoch)
        for symbol in rest:
            state = snapshots.get(symbol)
            if state is None:
                self.hub.release(self.outbox, symbol, None)
                continue
            update = to_price_update(state, snapshot=True)
            update.update(snapshot_fields(references.get(symbol)))
            if epoch is not None:
                update["epoch"] = epoch
            self.hub.send_snapshot(self.outbox, symbol, orjson.dumps(update).decode())
            page = behind.get(symbol)
            if page is not None:
                self.hub.send_updates(
                    self.outbox,
                    symbol,
                    [add_fields(text, RECOVERED) for _, text in page.updates],
                )
            last_seq = page.last_seq if page is not None else state.seq
            self.hub.release(self.outbox, symbol, last_seq, epoch)

    async def _unavailable(self, added: list[str], exc: Exception) -> None:
        """The stores could not serve the subscribe: undo it and say so, so the
        client retries instead of waiting for a snapshot that never comes."""
        for symbol in added:
            self.hub.drop_hold(self.outbox, symbol)
            self.symbols.pop(symbol, None)
        await self.hub.unsubscribe(self.outbox, added)
        logger.warning(
            "event=ws_subscribe_unavailable conn=%s symbols=%s error=%r",
            self.conn_id,
            ",".join(added),
            exc,
        )
        self.reply(
            {
                "type": "error",
                "code": "unavailable",
                "message": "Subscription temporarily unavailable (the price store "
                f"cannot be read); not subscribed: {', '.join(added)}; retry",
                "retryable": True,
                "symbols": added,
            }
        )

    async def _subscribe_bars(self, symbols: list[str], content: dict) -> None:
        """The ``bars`` of a subscribe: bar streams of its subscribed symbols."""
        names, problem = bars.parse_bars(content["bars"])
        if problem:
            self.send_error("unknown_interval", problem)
        mine = [s for s in symbols if s in self.symbols]
        if not names or not mine:
            return
        recover = bars.parse_bar_recover(content.get("recover"))
        reply, release = await bars.subscribe_bars(
            self.hub, self.outbox, mine, names, recover
        )
        self.reply(reply)
        release()

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        parsed = self._parse_symbols(content)
        if parsed is None:
            return
        if "bars" in content:  # only the bar streams, the symbols stay
            names, problem = bars.parse_bars(content["bars"])
            if problem:
                self.send_error("unknown_interval", problem)
            keys = bars.bar_keys_of(self.outbox, parsed.valid, names)
            await self.hub.unsubscribe(self.outbox, keys)
            self.reply(
                {"type": "bar_subscription", "action": "unsubscribed", "streams": keys}
            )
            return
        removed = [s for s in parsed.valid if s in self.symbols]
        for symbol in removed:
            del self.symbols[symbol]
        streams = bars.bar_keys_of(self.outbox, removed, None)
        await self.hub.unsubscribe(self.outbox, removed + streams)
        self.reply(
            {
                "type": "subscription",
                "action": "unsubscribed",
                "symbols": removed,
                "subscribed_total": len(self.symbols),
            }
        )
        self.reply(self._subscriptions())

    async def _get_subscriptions(self, content: dict[str, Any]) -> None:
        self.reply(self._subscriptions())

    def _subscriptions(self) -> dict[str, Any]:
        """The ``subscriptions`` list (with ``bars`` streams, bars.py); ``options``
        (extension) names each symbol's ``max_rate`` / ``data_types``, only when
        one of them has any."""
        message = bars.subscriptions_message(self.outbox, list(self.symbols))
        options = self.hub.shaper.describe(self.outbox, self.symbols)
        if options:
            message["options"] = options
        return message

    async def _ping(self, content: dict[str, Any]) -> None:
        self.reply({"type": "pong", "timestamp": int(time.time() * 1000)})

    def _token_deadline(self) -> TokenDeadline | None:
        """A connection token's connection ends at its exp (tokenlife.py)."""
        claims = self.scope.get("realtime_token_claims")
        if claims is None:
            return None
        deadline = TokenDeadline(
            claims,
            conn_id=self.conn_id,
            reply=self.reply,
            close=self._close_with,
            site_user_active=site_user_active,
        )
        deadline.arm()
        return deadline

    async def _refresh(self, content: dict[str, Any]) -> None:
        if self.token_deadline is None:
            self.send_error(
                "bad_request",
                "refresh applies only to connections opened with a connection token",
            )
            return
        refused = await self.token_deadline.refresh(content.get("token"))
        if refused is not None:
            self.send_error("token_refused", refused)

    _actions = {
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
        "get_subscriptions": _get_subscriptions,
        "ping": _ping,
        "refresh": _refresh,
    }

    def _parse_symbols(self, content: dict[str, Any]) -> SymbolParse | None:
        """Valid symbols of the request; an ``error`` names any invalid ones."""
        if "symbols" not in content:
            self.send_error("bad_request", "Missing 'symbols' field")
            return None
        try:
            parsed = parse_symbols(content["symbols"])
        except InvalidSymbol as exc:
            self.send_error("invalid_symbol", str(exc))
            return None
        if parsed.invalid:
            bad = ", ".join(repr(v)[:40] for v in parsed.invalid[:10])
            self.send_error("invalid_symbol", f"Invalid symbols: {bad}")
        return parsed

    def send_error(self, code: str, message: str) -> None:
        self.reply({"type": "error", "message": message, "code": code})
