"""The dashboard recovers what it missed (issue 15, client side; docs/protocol.md
"Sequence numbers, history and recovery").

- Against the scripted socket (``FakeStream``) and a scripted history endpoint:
  a reconnect asks to ``recover`` from the last (epoch, seq); ``not_recovered``
  and an epoch change while connected restart the card's line from the server's
  history; replayed updates extend it in order; a forward seq jump is filled
  from ``/history?after_seq=``; duplicates are dropped.
- Against the whole product: a reload draws the server's history at once
  (embedded mode), and a SIGKILLed and restarted web process (scaled mode, the
  feed worker keeps publishing meanwhile) leaves no hole in the line because the
  reconnect recovered it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from playwright.sync_api import Page, expect

from tests.dashboard.browser import (
    DEFAULT_SYMBOLS,
    PASSWORD,
    WS_GLOB,
    FakeStream,
    card,
    log_in,
    wait_until,
)
from tests.live import daphne, manage, start_scaled, stop_scaled

pytestmark = pytest.mark.browser

HISTORY_GLOB = "**/api/v2/realtime/history/*"
SEQ = re.compile(r"^\d+$")


def update(seq: int, price: float, data_type: str = "T") -> dict[str, Any]:
    return {
        "type": "price_update",
        "symbol": "AAPL",
        "seq": seq,
        "data_type": data_type,
        "last_price": price,
    }


class FakeHistory:
    """The history endpoint for AAPL, answered from ``updates`` (one epoch); 404
    for other symbols. Keeps the query of every AAPL request."""

    def __init__(self, epoch: str, updates: list[dict[str, Any]]) -> None:
        self.epoch = epoch
        self.updates = updates
        self.queries: list[dict[str, str]] = []

    def handle(self, route: Any) -> None:
        url = urlsplit(route.request.url)
        if not url.path.endswith("/AAPL"):
            route.fulfill(status=404, json={"detail": "No history"})
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.queries.append(query)
        limit = int(query.get("limit", 300))
        if "after_seq" in query:
            after = int(query["after_seq"])
            page = [u for u in self.updates if u["seq"] > after][:limit]
        else:
            page = self.updates[-limit:]
        body = {
            "symbol": "AAPL",
            "epoch": self.epoch,
            "last_seq": self.updates[-1]["seq"],
            "updates": page,
        }
        route.fulfill(status=200, json=body)


def seqs(page: Page, symbol: str = "AAPL") -> list[int | None]:
    raw = card(page, symbol).get_attribute("data-seqs") or ""
    return [None if s == "-" else int(s) for s in raw.split()]


def open_dashboard(
    page: Page,
    base_url: str,
    history: FakeHistory,
    ack_fields: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> FakeStream:
    """Log in with the socket and the history endpoint scripted; return once the
    page subscribed."""
    page.route(HISTORY_GLOB, history.handle)
    fake = FakeStream()
    fake.ack_fields = ack_fields
    page.route_web_socket(WS_GLOB, fake.route)
    log_in(page, base_url, "viewer", PASSWORD)
    wait_until(
        page,
        lambda: fake.connections and fake.actions(0, "subscribe"),
        "the first subscribe",
    )
    return fake


# --- against the scripted socket ---------------------------------------------------


def test_reconnect_recovers_and_restarts_the_line_when_it_cannot(
    django_server: str, page: Page, browser_user: str
) -> None:
    server = {"epoch": "e1", "recover": "not_recovered"}

    def ack(message: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {"epoch": server["epoch"]}
        if "recover" in message:
            asked = list(message["recover"])
            done = asked if server["recover"] == "recovered" else []
            fields |= {
                "recovered": done,
                "not_recovered": [s for s in asked if s not in done],
            }
        return fields

    history = FakeHistory(
        "e1",
        [update(1, 103.0), update(2, 103.0, "Q"), update(3, 101.0), update(4, 100.0)],
    )
    fake = open_dashboard(page, django_server, history, ack)
    aapl = card(page, "AAPL")
    expect(aapl).to_have_attribute("data-history-source", "server")
    # Nothing to recover yet: the guide's subscribe, unchanged.
    assert fake.actions(0, "subscribe") == [
        {"action": "subscribe", "symbols": DEFAULT_SYMBOLS}
    ]
    fake.price("AAPL", 104.0, seq=5)
    fake.price("MSFT", 410.0, seq=70)
    expect(aapl).to_have_attribute("data-last-seq", "5")
    expect(aapl).to_have_attribute("data-epoch", "e1")
    assert seqs(page) == [1, 3, 4, 5]
    expect(card(page, "MSFT")).to_have_attribute("data-last-seq", "70")

    # Removing a symbol forgets its position: a re-added one starts afresh.
    card(page, "MSFT").get_by_role("button", name="Remove MSFT").click()
    expect(card(page, "MSFT")).to_have_count(0)
    position = page.evaluate("window.fmpsiteDashboard.stream.position('MSFT')")
    assert position == {"epoch": None, "seq": None}

    # The server restarts with its history lost (a new epoch): the reconnect asks
    # to recover AAPL from seq 5, the server cannot, the line restarts from the
    # new epoch's history.
    server["epoch"] = "e2"
    history.epoch, history.updates = "e2", [update(1, 50.0), update(2, 51.0)]
    fake.connections[0].close(code=1012, reason="restart")
    wait_until(page, lambda: len(fake.connections) == 2, "a reconnect")
    wait_until(page, lambda: fake.actions(1, "subscribe"), "the resubscribe")
    assert fake.actions(1, "subscribe") == [
        {
            "action": "subscribe",
            "symbols": ["AAPL", "GOOGL", "AMZN", "TSLA"],
            "recover": {"AAPL": {"epoch": "e1", "seq": 5}},
        }
    ]
    fake.price("AAPL", 51.0, snapshot=True, seq=2, epoch="e2")
    expect(aapl).to_have_attribute("data-resets", "1")
    expect(aapl).to_have_attribute("data-epoch", "e2")
    expect(aapl).to_have_attribute("data-history-source", "server")
    wait_until(page, lambda: seqs(page) == [1, 2], "the e2 history as the line")
    expect(page.locator("#dashboard")).to_have_attribute("data-not-recovered", "1")
    assert len([q for q in history.queries if "after_seq" not in q]) == 2

    # The epoch changes while connected: the snapshot in the new epoch restarts
    # the line too.
    history.epoch, history.updates = "e3", [update(6, 60.0), update(7, 61.0)]
    fake.price("AAPL", 61.0, snapshot=True, seq=7, epoch="e3")
    expect(aapl).to_have_attribute("data-resets", "2")
    expect(aapl).to_have_attribute("data-epoch", "e3")
    wait_until(page, lambda: seqs(page) == [6, 7], "the e3 history as the line")

    # A reconnect the server recovers: the replayed updates extend the line in
    # order, then live ones; no reset, no refetch.
    server["epoch"], server["recover"] = "e3", "recovered"
    fetches = len(history.queries)
    fake.connections[1].close(code=1012, reason="restart")
    wait_until(page, lambda: len(fake.connections) == 3, "a second reconnect")
    wait_until(page, lambda: fake.actions(2, "subscribe"), "the second resubscribe")
    assert fake.actions(2, "subscribe")[0]["recover"] == {
        "AAPL": {"epoch": "e3", "seq": 7}
    }
    fake.price("AAPL", 62.0, seq=8, recovered=True)
    fake.price("AAPL", 62.0, data_type="Q", seq=9, recovered=True)
    fake.price("AAPL", 63.0, seq=10, recovered=True)
    fake.price("AAPL", 64.0, seq=11)
    expect(aapl).to_have_attribute("data-last-seq", "11")
    expect(aapl).to_have_attribute("data-recovered-updates", "3")
    expect(page.locator("#dashboard")).to_have_attribute("data-recovered", "1")
    assert seqs(page) == [6, 7, 8, 10, 11]
    expect(aapl).to_have_attribute("data-resets", "2")
    expect(aapl).to_have_attribute("data-gap-fills", "0")
    assert len(history.queries) == fetches


def test_seq_gap_is_filled_from_history_and_duplicates_are_dropped(
    django_server: str, page: Page, browser_user: str
) -> None:
    history = FakeHistory(
        "e1",
        [
            update(1, 103.0),
            update(2, 103.0, "Q"),
            update(3, 101.0),
            update(4, 100.0),
            update(5, 104.0),
            update(6, 105.0),
            update(7, 105.0, "Q"),
            update(8, 106.0),
            update(9, 107.0),
        ],
    )
    history_now = history.updates
    history.updates = history_now[:4]  # what the server held at page load
    fake = open_dashboard(page, django_server, history)
    aapl = card(page, "AAPL")
    expect(aapl).to_have_attribute("data-history-source", "server")
    assert seqs(page) == [1, 3, 4]
    history.updates = history_now
    fake.price("AAPL", 104.0, seq=5)
    expect(aapl).to_have_attribute("data-last-seq", "5")

    # 6 to 8 never arrived (a layer drop, a conflated slow reader): fetched.
    fake.price("AAPL", 107.0, seq=9)
    expect(aapl).to_have_attribute("data-gap-fills", "1")
    assert {"after_seq": "5", "limit": "3"} in history.queries
    assert seqs(page) == [1, 3, 4, 5, 6, 8, 9]
    expect(aapl).to_have_attribute("data-update-count", "2")

    # Seen already (a replay overlapping what arrived live): dropped, the card
    # does not step back.
    fake.price("AAPL", 106.0, seq=8, recovered=True)
    fake.price("AAPL", 107.0, seq=9)
    fake.price("AAPL", 104.0, seq=5)
    expect(aapl).to_have_attribute("data-duplicates", "3")
    expect(aapl).to_have_attribute("data-update-count", "2")
    expect(aapl).to_have_attribute("data-last-price", "107")
    fake.price("AAPL", 108.0, seq=10)
    expect(aapl).to_have_attribute("data-last-seq", "10")
    assert seqs(page) == [1, 3, 4, 5, 6, 8, 9, 10]
    expect(aapl).to_have_attribute("data-history-length", "8")
    expect(aapl).to_have_attribute("data-gap-fills", "1")


# --- against the whole product --------------------------------------------------


def numbered(page: Page, symbol: str) -> list[int]:
    return [s for s in seqs(page, symbol) if s is not None]


def test_reload_draws_the_servers_history_at_once(
    page: Page, product_url: str, product_user: tuple[str, str]
) -> None:
    points = 8
    log_in(page, product_url, *product_user)
    symbol = page.locator(".price-card").first.get_attribute("data-symbol")
    assert symbol
    aapl = card(page, symbol)
    expect(aapl).to_have_attribute("data-last-seq", SEQ, timeout=60_000)
    # The first update is the snapshot (a point, whatever its kind): wait for a
    # live trade after it, so the newest point is one the server's history has.
    first_update = int(aapl.get_attribute("data-last-seq"))
    wait_until(
        page,
        lambda: (
            len(numbered(page, symbol)) >= points
            and numbered(page, symbol)[-1] > first_update
        ),
        f"{points} points and a live trade of {symbol}",
    )
    before = numbered(page, symbol)
    page.reload()
    expect(card(page, symbol)).to_have_attribute("data-history-source", "server")
    after = numbered(page, symbol)
    # Points with a seq from before the reload can only come from the server's
    # history: the line was drawn at once, not rebuilt from new ticks.
    old = [s for s in after if s <= before[-1]]
    assert len(old) >= points, (before, after)
    assert before[-1] in after, (before, after)
    assert int(card(page, symbol).get_attribute("data-history-length")) >= points


@pytest.fixture
def scaled_dashboard(
    migrated_postgres: str, redis_prefix: str, request: Any
) -> Iterator[dict]:
    """One web process and one feed worker on Redis, and a user to log in as."""
    stack = start_scaled(migrated_postgres, redis_prefix, webs=1)
    try:
        # Slow enough that the line's 100 points span the whole outage.
        stack["sim"].run(lambda: stack["sim"].sim.set_rate(20.0))
        manage(
            stack["env"],
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.filter(username='recoverer').exists() or "
            f"User.objects.create_user('recoverer', password={PASSWORD!r})",
        )
        yield stack
    finally:
        failed = getattr(request.node, "rep_call", None)
        stop_scaled(stack, show_logs=bool(failed and failed.failed))


def history_trades(page: Page, base: str, symbol: str, after: int) -> dict:
    response = page.request.get(
        f"{base}/api/v2/realtime/history/{symbol}?after_seq={after}&limit=1000"
    )
    assert response.ok, response.text()
    return json.loads(response.text())


@pytest.mark.redis
def test_killed_and_restarted_web_process_leaves_no_gap(
    page: Page, scaled_dashboard: dict
) -> None:
    stack = scaled_dashboard
    port = stack["ports"][0]
    base = f"http://127.0.0.1:{port}"
    log_in(page, base, "recoverer", PASSWORD)
    symbol = "AAPL"
    aapl = card(page, symbol)
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-connection-state", "connected")
    for other in DEFAULT_SYMBOLS:  # each has a position to recover from
        expect(card(page, other)).to_have_attribute(
            "data-last-seq", SEQ, timeout=60_000
        )
    # A live trade after the snapshot (the first update): the line's newest point
    # is then one the server's history holds, and the page's start-up is over.
    snapshot_seq = int(aapl.get_attribute("data-last-seq"))
    wait_until(
        page,
        lambda: numbered(page, symbol)[-1:] > [snapshot_seq],
        "a live trade",
    )
    first = numbered(page, symbol)[-1]
    epoch = aapl.get_attribute("data-epoch")
    assert epoch
    gap_fills = aapl.get_attribute("data-gap-fills")
    resets = aapl.get_attribute("data-resets")

    stack["webs"][0].kill()
    expect(status).not_to_have_attribute("data-connection-state", "connected")
    last_seen = int(aapl.get_attribute("data-last-seq"))
    # The feed worker publishes on while no web process is up: wait until it has
    # published some updates of the symbol (its per-symbol counter in Redis,
    # realtime/feed/history.py's key layout) before the web process comes back.
    counters = redis.Redis.from_url(stack["redis_url"])
    seq_key = f"{stack['prefix']}:history:{epoch}:seq"
    try:
        wait_until(
            page,
            lambda: int(counters.hget(seq_key, symbol) or 0) >= last_seen + 10,
            f"10 updates of {symbol} published while the web process is down",
        )
    finally:
        counters.close()
    web = daphne("web-0-restarted", port, stack["env"])
    stack["webs"][0] = web
    web.wait_port(port, timeout=60)
    missed = history_trades(page, base, symbol, last_seen)
    assert missed["epoch"] == epoch and len(missed["updates"]) >= 10, missed
    # Skip the backoff wait, as the Reconnect now button does (a no-op when
    # the page is back already).
    page.evaluate("window.fmpsiteDashboard.stream.reconnectNow()")
    expect(status).to_have_attribute(
        "data-connection-state", "connected", timeout=60_000
    )

    root = page.locator("#dashboard")
    expect(root).to_have_attribute("data-recovered", str(len(DEFAULT_SYMBOLS)))
    expect(root).to_have_attribute("data-not-recovered", "0")
    # Live ticks after the replay too.
    target = missed["last_seq"] + 3
    wait_until(
        page,
        lambda: int(aapl.get_attribute("data-last-seq") or 0) >= target,
        f"{symbol} past seq {target}",
    )
    line = numbered(page, symbol)
    assert first in line, (first, line)
    held = history_trades(page, base, symbol, first)
    expected = [
        u["seq"]
        for u in held["updates"]
        if u["data_type"] == "T"
        and u["last_price"] is not None
        and u["seq"] <= line[-1]
    ]
    actual = [s for s in line if s > first]
    assert actual == expected, {"line": actual, "server": expected}
    assert int(aapl.get_attribute("data-recovered-updates")) > 0
    # The replay made the line whole, not a history fetch.
    expect(aapl).to_have_attribute("data-gap-fills", gap_fills)
    expect(aapl).to_have_attribute("data-resets", resets)
    expect(aapl).to_have_attribute("data-epoch", epoch)
