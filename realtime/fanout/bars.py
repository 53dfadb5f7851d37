"""The ``bars`` field of subscribe and unsubscribe (docs/protocol.md, "Bars").

A bar stream is a hub key ``<SYMBOL>@<interval>`` (realtime/bars/keys.py), so
subscribing one is the tick path's subscribe unchanged: hold its live bars,
register it with the hub, replay what ``recover`` asks for from the bar history
(``backends().bar_history``, read through the subscribe coalescers of
subscribe_reads.py) or start live, then release the held bars. The
consumer calls these functions; the logic lives here so consumers.py stays the
protocol's switchboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from realtime.backends import backends
from realtime.bars.keys import is_stream_key, split_key, stream_key
from realtime.fanout import subscribe_reads
from realtime.feed.state import RECOVERED, add_fields

if TYPE_CHECKING:
    from realtime.fanout.hub import FanoutHub, Outbox


def parse_bars(raw: object) -> tuple[list[str], str | None]:
    """``bars`` of a request -> (known interval names, error message or None)."""
    known = backends().bar_intervals
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        return [], "'bars' must be an array of interval names such as \"1m\""
    names = list(dict.fromkeys(raw))[:16]
    unknown = [n for n in names if n not in known]
    good = [n for n in names if n in known]
    if unknown:
        offered = ", ".join(known) or "none (bars are off)"
        bad = ", ".join(repr(n[:10]) for n in unknown)
        return good, f"Unknown bar intervals: {bad}; this server offers {offered}"
    return good, None


def parse_bar_recover(raw: object) -> dict[str, tuple[str, int]]:
    """The bar-stream entries of ``recover`` (``"AAPL@1m": {epoch, seq}``);
    symbols' entries are the consumer's (``parse_recover``)."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, tuple[str, int]] = {}
    for key, position in list(raw.items())[:200]:
        if not isinstance(key, str) or not is_stream_key(key):
            continue
        epoch = position.get("epoch") if isinstance(position, dict) else None
        seq = position.get("seq") if isinstance(position, dict) else None
        if (
            isinstance(epoch, str)
            and 0 < len(epoch) <= 64
            and isinstance(seq, int)
            and not isinstance(seq, bool)
            and seq >= 0
        ):
            symbol, interval = split_key(key)
            out[stream_key(symbol.upper(), interval)] = (epoch, seq)
    return out


async def subscribe_bars(
    hub: FanoutHub,
    outbox: Outbox,
    symbols: list[str],
    names: list[str],
    recover: dict[str, tuple[str, int]],
) -> tuple[dict[str, Any], Callable[[], None]]:
    """Subscribe ``outbox`` to the bar streams of ``symbols`` x ``names``.

    Returns the ``bar_subscription`` reply and what to call once it is queued:
    the replays, then live bars (replies and bars share the outbox, in order).
    """
    keys = [stream_key(s, n) for s in symbols for n in names]
    new = [k for k in keys if k not in outbox.symbols]
    hub.hold(outbox, new)
    try:
        await hub.subscribe(outbox, new)
        # Coalesced with the process's other subscribes (subscribe_reads.py):
        # a fleet resubscribing its candles shares the rounds.
        wanted = {key: recover[key][1] for key in new if key in recover}
        found = await subscribe_reads.bar_pages(wanted) if wanted else {}
        epoch_now = await subscribe_reads.bar_epoch()
    except BaseException:
        for key in new:
            hub.drop_hold(outbox, key)
        raise
    pages = {
        key: page
        for key, page in found.items()
        if page is not None and page.recovers(*recover[key])
    }
    recovered = list(pages)
    reply: dict[str, Any] = {
        "type": "bar_subscription",
        "action": "subscribed",
        "streams": keys,
        "epoch": epoch_now,
    }
    if recover:
        reply["recovered"] = recovered
        reply["not_recovered"] = [k for k in recover if k in new and k not in pages]

    def release() -> None:
        for key in new:
            page = pages.get(key)
            if page is None:
                hub.release(outbox, key, None)
                continue
            texts = [add_fields(text, RECOVERED) for _, text in page.updates]
            hub.send_updates(outbox, key, texts)
            hub.release(outbox, key, page.last_seq)

    return reply, release


def bar_keys_of(
    outbox: Outbox, symbols: list[str], names: list[str] | None
) -> list[str]:
    """The outbox's bar streams of ``symbols`` (of ``names`` only, or all)."""
    wanted = set(symbols)
    out = []
    for key in outbox.symbols:
        if not is_stream_key(key):
            continue
        symbol, interval = split_key(key)
        if symbol in wanted and (names is None or interval in names):
            out.append(key)
    return sorted(out)


def subscriptions_message(outbox: Outbox, symbols: list[str]) -> dict[str, Any]:
    """The ``subscriptions`` message: the connection's symbols and, once it has
    any, its bar streams (``"bars": ["AAPL@1m", ...]``; absent otherwise, so a
    connection without bars gets exactly the guide's message)."""
    message: dict[str, Any] = {"type": "subscriptions", "symbols": symbols}
    streams = sorted(key for key in outbox.symbols if is_stream_key(key))
    if streams:
        message["bars"] = streams
    return message
