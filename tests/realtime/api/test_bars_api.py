"""GET /api/v2/realtime/bars/{symbol}: the bar history, one bar per window."""

from __future__ import annotations

import pytest
from django.test import Client

from realtime.backends import backends
from realtime.bars.feed import BarFeed
from realtime.feed.broker import InMemoryBroker
from realtime.upstream.protocol import Tick

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bars_on(settings):
    """Bars are off by default (docs/benchmarks.md); these tests turn them on."""
    settings.REALTIME_BAR_INTERVALS = "1s,1m"


API = "/api/v2/realtime"
T0 = 1_700_000_040_000


class Nobody:
    def deliver(self, update):
        return None


def feed_bars():
    bars = BarFeed(InMemoryBroker(backends().bar_history, Nobody()), {"1m": 60_000})
    for minute in range(3):
        bars.on_tick(Tick("AAPL", T0 + minute * 60_000 + 5, "T", 100.0 + minute, 10))
    bars.on_tick(Tick("AAPL", T0 + 7, "T", 99.0, 5))  # late: revises minute 0
    bars.flush()  # the feed's timer would fold the buffered trades in
    return bars


def test_bars_are_one_per_window_with_revisions_applied(client: Client):
    feed_bars()
    body = client.get(f"{API}/bars/aapl?interval=1m").json()
    assert [b["start"] for b in body["bars"]] == [T0, T0 + 60_000]
    first = body["bars"][0]
    assert first["updated"] is True and first["low"] == 99.0 and first["volume"] == 15
    assert body["epoch"] == backends().bar_history.epoch


def test_bars_start_end_limit_and_errors(client: Client):
    feed_bars()
    ranged = client.get(f"{API}/bars/AAPL?interval=1m&start={T0 + 1}").json()
    assert [b["start"] for b in ranged["bars"]] == [T0 + 60_000]
    newest = client.get(f"{API}/bars/AAPL?interval=1m&limit=1").json()
    assert [b["start"] for b in newest["bars"]] == [T0 + 60_000]
    assert client.get(f"{API}/bars/AAPL?interval=7x").status_code == 400
    assert client.get(f"{API}/bars/MSFT?interval=1m").status_code == 404
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v2/realtime/bars/{symbol}" in schema.content
