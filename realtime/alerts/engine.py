"""AlertEngine: the alerts of one feed leadership, on the feed's tick path.

The feed runner (realtime/feed/runner.py) registers ``on_tick`` as a tick
callback of the leader's ``FeedService`` (like bars), so alerts are evaluated
once per tick per symbol, where the ticks are, and only while this process
leads: embedded mode in the web process, scaled mode on the feed leader.

``on_tick`` does no I/O and, for a tick that crosses nothing (nearly all of
them), no more than a dict lookup and two float comparisons against the
symbol's watch (evaluator.py); the price is the merged state's float, never
parsed from the tick's text. A tick on or past the watch's edge takes the
evaluator's bisect path, and what fired goes onto a deque as one plain tuple
(the ``Firing`` values are built by the writer). One writer task records the events
(``alert_events_record``: a unique idempotency key per alert and crossing
update, so an update replayed after a takeover is written once), then hands the
``alert`` message to the owner's connections (``route``: this process's hub, or
every hub through the channel layer) and starts the webhook delivery
(webhook.py) as a task of its own. Reloads (start, ``feed.alerts``, and
periodically) read the active alerts off the loop and fetch the previous closes
that ``pct_change_day_*`` alerts need from the reference data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import orjson
from channels.db import database_sync_to_async

from realtime.alerts import selectors, services
from realtime.alerts.evaluator import AlertEvaluator, AlertSpec, Firing, Row
from realtime.alerts.models import AlertEvent
from realtime.alerts.services import PCT_CONDITIONS
from realtime.alerts.webhook import WebhookConfig, deliver
from realtime.events import Update

logger = logging.getLogger(__name__)

PreviousCloses = Callable[[Iterable[str]], Awaitable[dict[str, float]]]
HistoryTail = Callable[[], Awaitable[Sequence[Update]]]
Pending = tuple[list[tuple[Row, float]], float, int, int, str]


class AlertRoute(Protocol):
    """Where an ``alert`` message goes: every open connection of ``user``."""

    def deliver_alert(self, user: str, text: str) -> Any: ...


def alert_message(event: AlertEvent, note: str = "") -> dict[str, Any]:
    """The client ``alert`` message and the webhook body (docs/protocol.md)."""
    return {
        "type": "alert",
        "alert_id": event.alert_id,
        "event_id": event.pk,
        "symbol": event.symbol,
        "condition": event.condition,
        "threshold": float(event.threshold),
        "price": float(event.price),
        "value": float(event.value) if event.value is not None else None,
        "tick_ts": event.tick_ts,
        "seq": event.seq,
        "epoch": event.epoch,
        "fired_at": event.fired_at.isoformat(timespec="milliseconds"),
        "idempotency_key": event.idempotency_key,
    }


class AlertEngine:
    def __init__(
        self,
        *,
        epoch: Callable[[], str],
        route: AlertRoute | None,
        webhook: WebhookConfig,
        previous_closes: PreviousCloses | None = None,
        load: Callable[[], list[AlertSpec]] = selectors.active_alert_specs,
        on_symbols: Callable[[frozenset[str]], None] | None = None,
        history_tail: HistoryTail | None = None,
    ) -> None:
        """``epoch``: the broker's current epoch (the crossing update's).
        ``on_symbols``: told the symbols with active alerts after each reload
        (the feed keeps them subscribed upstream). ``history_tail``: the last
        updates per symbol the history holds (scaled mode: what a killed leader
        recorded), evaluated once at start so that a crossing it had not
        written is not lost."""
        self.evaluator = AlertEvaluator()
        self.epoch = epoch
        self.route = route
        self.webhook = webhook
        self.previous_closes = previous_closes
        self.load = load
        self.on_symbols = on_symbols
        self.history_tail = history_tail
        self.fired = 0
        self.batches_written = 0  # firing batches the writer has recorded
        # (fired, price, tick_ts, seq, epoch) per tick that fired; ``_wake`` tells
        # the writer (a deque and an Event: cheaper on the tick path than a Queue).
        self._pending: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._watches = self.evaluator.watches
        self._writer: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[Any]] = set()

    # --- the tick path ----------------------------------------------------------
    def on_tick(self, tick: Any, state: Any) -> None:
        """The feed's tick callback: evaluate, and queue what fired (no I/O).

        Registered as a sync callback (``FeedService.register_callback(...,
        sync=True)``): it never returns an awaitable."""
        watch = self._watches.get(state.symbol)
        if watch is None:
            return
        price = state.last_price
        if price is None:
            return
        if watch.lo < price < watch.hi:
            watch.last = price
            return
        if price == watch.last:
            return  # sitting on a level: no move, nothing to do
        fired = self.evaluator.crossings(state.symbol, price, tick.timestamp)
        if fired and state.seq is not None:
            self.fired += len(fired)
            self._pending.append(
                (fired, price, tick.timestamp, state.seq, self.epoch())
            )
            self._wake.set()

    @staticmethod
    def _firings(pending: Pending) -> list[Firing]:
        fired, price, tick_ts, seq, epoch = pending
        return [
            Firing(AlertSpec(*row), price, value, tick_ts, seq, epoch)
            for row, value in fired
        ]

    # --- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        """Load the alerts, evaluate the history's tail (a takeover), start the
        writer, and take over the webhook deliveries left pending."""
        tail = await self._read_tail()
        await self.reload(tail=tail)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="alerts-writer")
        await self._resume_webhooks()
        # One line per leadership: operators (and the failover test) see the
        # engine is evaluating, with the takeover's work done.
        logger.info("event=alerts_started tail_updates=%d", len(tail))

    async def reload(self, *, tail: Sequence[Update] = ()) -> None:
        """Read the active alerts (off the loop) and the previous closes the
        percent alerts need; a database error keeps the alerts we have.

        ``tail`` (at start only) is evaluated right after the load, with no
        await in between, so no live tick is evaluated before the older
        updates it follows."""
        try:
            specs = await database_sync_to_async(self.load)()
        except Exception as exc:
            logger.warning("event=alerts_reload_failed error=%r", exc)
            return
        pct_symbols = {s.symbol for s in specs if s.condition in PCT_CONDITIONS}
        closes = await self._fetch_previous_closes(pct_symbols) if tail else {}
        self.evaluator.load(specs)
        for symbol, close in closes.items():
            self.evaluator.set_previous_close(symbol, close)
        if tail:
            self._replay(tail)
        logger.info(
            "event=alerts_loaded alerts=%d symbols=%d",
            len(self.evaluator),
            len(self.evaluator.symbols),
        )
        if self.on_symbols is not None:
            self.on_symbols(self.evaluator.symbols)
        await self.refresh_previous_closes()

    async def _read_tail(self) -> Sequence[Update]:
        if self.history_tail is None:
            return ()
        try:
            return await self.history_tail()
        except Exception as exc:  # no replay: only live crossings are seen
            logger.warning("event=alerts_tail_failed error=%r", exc)
            return ()

    def _replay(self, tail: Sequence[Update]) -> None:
        """Evaluate the history's last updates (oldest first per symbol) as if
        they were ticks. The first of a symbol only positions its books; a
        crossing after it fires under the update's own (epoch, seq), so one the
        killed leader had written is a duplicate key and is dropped by
        ``alert_events_record``, and one it had not is written now."""
        replayed = fired = 0
        watches = self._watches
        for update in tail:
            if update.symbol not in watches:
                continue
            try:
                price = orjson.loads(update.text).get("last_price")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if not isinstance(price, int | float):
                continue
            replayed += 1
            hits = self.evaluator.crossings(update.symbol, float(price), update.tick_ts)
            if hits:
                fired += len(hits)
                self.fired += len(hits)
                self._pending.append(
                    (hits, float(price), update.tick_ts, update.seq, update.epoch)
                )
                self._wake.set()
        logger.info("event=alerts_tail_evaluated updates=%d fired=%d", replayed, fired)

    async def _fetch_previous_closes(self, symbols: Iterable[str]) -> dict[str, float]:
        symbols = sorted(symbols)
        if not symbols or self.previous_closes is None:
            return {}
        try:
            return await self.previous_closes(symbols)
        except Exception as exc:  # reference data down: percent alerts wait
            logger.warning("event=alerts_previous_close_failed error=%r", exc)
            return {}

    async def refresh_previous_closes(self) -> None:
        closes = await self._fetch_previous_closes(self.evaluator.pct_symbols)
        for symbol, close in closes.items():
            self.evaluator.set_previous_close(symbol, close)

    async def aclose(self) -> None:
        """Stop writing; what is queued is still recorded (no delivery is lost
        to a clean stop), then pending webhook tasks are cancelled."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        while self._pending:
            firings = self._firings(self._pending.popleft())
            await self._record(firings, deliver_webhooks=False)
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    # --- off the tick path ------------------------------------------------------
    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                firings = self._firings(self._pending.popleft())
                try:
                    await self._record(firings)
                except Exception:  # one bad batch never stops the alerts
                    logger.exception(
                        "event=alerts_record_failed firings=%d", len(firings)
                    )
                self.batches_written += 1

    async def _record(self, firings: list[Firing], deliver_webhooks: bool = True):
        events = await database_sync_to_async(services.alert_events_record)(
            firings=firings
        )
        urls = {f.alert.id: f.alert.webhook_url for f in firings}
        owners = {f.alert.id: f.alert.owner_id for f in firings}
        for event in events:
            message = orjson.dumps(alert_message(event))
            await self._deliver_live(f"user:{owners[event.alert_id]}", message.decode())
            url = urls.get(event.alert_id)
            if url and deliver_webhooks:
                self._start_webhook(event.pk, url, message)

    async def _deliver_live(self, user: str, text: str) -> None:
        if self.route is None:
            return
        try:
            result = self.route.deliver_alert(user, text)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # live delivery is best effort; REST has it
            logger.warning("event=alert_live_failed user=%s error=%r", user, exc)

    async def _resume_webhooks(self) -> None:
        """Deliveries a previous leadership left ``pending`` (killed, or stopped
        while a POST or a back-off was under way) are started again for what is
        left of their retry bound, counted from the firing; those past it are
        closed as failed. A receiver may so see a POST twice (the first one
        reached it but was not recorded): the body's ``idempotency_key`` is
        what it deduplicates on (docs/protocol.md)."""
        retry_for = self.webhook.retry_for
        try:
            resumable, expired = await database_sync_to_async(
                services.alert_events_webhook_take_over
            )(retry_for=retry_for)
        except Exception as exc:
            logger.warning("event=alert_webhook_resume_failed error=%r", exc)
            return
        for event, url, left in resumable:
            config = dataclasses.replace(self.webhook, retry_for=left)
            body = orjson.dumps(alert_message(event))
            self._start_webhook(event.pk, url, body, config, event.webhook_attempts)
        if resumable or expired:
            logger.info(
                "event=alert_webhooks_resumed resumed=%d expired=%d",
                len(resumable),
                expired,
            )

    def _start_webhook(
        self,
        event_id: int,
        url: str,
        body: bytes,
        config: WebhookConfig | None = None,
        attempts_before: int = 0,
    ) -> None:
        task = asyncio.create_task(
            self._deliver_webhook(
                event_id, url, body, config or self.webhook, attempts_before
            ),
            name=f"alert-webhook-{event_id}",
        )
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver_webhook(
        self,
        event_id: int,
        url: str,
        body: bytes,
        config: WebhookConfig,
        attempts_before: int = 0,
    ) -> None:
        record = database_sync_to_async(services.alert_event_webhook_attempt)

        async def on_attempt(attempt: int, error: str | None, final: bool) -> None:
            await record(
                event_id=event_id,
                attempt=attempts_before + attempt,
                error=error,
                final=final,
            )

        delivered = await deliver(url, body, config, on_attempt=on_attempt)
        logger.info(
            "event=alert_webhook_done event_id=%s delivered=%s", event_id, delivered
        )
