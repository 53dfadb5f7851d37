"""The whole product in embedded mode, over real sockets: daphne + feed + simulator.

The server is a daphne subprocess (``product_server``) whose embedded feed connects to
a simulator this test process controls (``live_simulator``). Each test uses its
own symbols, since the server is shared by the session.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.live import start_product, wait_until
from tests.realtime.wsclient import (
    collect_updates,
    next_update,
    open_client,
    subscribe,
    subscriptions,
)

GUIDE_EXAMPLE = Path(__file__).parent / "guide" / "example3_client.py"


async def test_client_gets_snapshot_then_live_updates_for_exactly_its_symbols(
    product_server, live_simulator
):
    first = await open_client(product_server["port"])
    ack = await subscribe(first, ["E2EA", "E2EB"])
    assert isinstance(ack.pop("epoch"), str)  # extension: the seq space (issue 15)
    assert ack == {
        "type": "subscription",
        "action": "subscribed",
        "symbols": ["E2EA", "E2EB"],
        "subscribed_total": 2,
    }
    updates = await collect_updates(first, 2.0)
    assert {u["symbol"] for u in updates} == {"E2EA", "E2EB"}
    assert all(not u.get("snapshot") for u in updates)
    second = await open_client(product_server["port"])
    await subscribe(second, ["E2EA"])
    # The ack, then the connection's full list (docs/protocol.md), then the snapshot.
    listed = json.loads(await asyncio.wait_for(second.recv(), 60))
    assert listed == {"type": "subscriptions", "symbols": ["E2EA"]}
    snapshot = json.loads(await asyncio.wait_for(second.recv(), 60))
    assert snapshot["type"] == "price_update" and snapshot["symbol"] == "E2EA"
    assert snapshot["snapshot"] is True and snapshot["last_price"] is not None
    await first.close()
    await second.close()


async def test_two_clients_with_overlapping_symbols_each_get_only_theirs(
    product_server,
):
    a = await open_client(product_server["port"])
    b = await open_client(product_server["port"])
    await subscribe(a, ["OVLA", "OVLB"])
    await subscribe(b, ["OVLB", "OVLC"])
    got_a, got_b = await asyncio.gather(collect_updates(a, 2), collect_updates(b, 2))
    assert {u["symbol"] for u in got_a} == {"OVLA", "OVLB"}
    assert {u["symbol"] for u in got_b} == {"OVLB", "OVLC"}
    shared_a = {u["timestamp"] for u in got_a if u["symbol"] == "OVLB"}
    shared_b = {u["timestamp"] for u in got_b if u["symbol"] == "OVLB"}
    assert shared_a & shared_b, "both clients should see the same OVLB ticks"
    await a.close()
    await b.close()


async def test_upstream_set_follows_clients_joining_and_leaving(
    product_server, live_simulator
):
    def upstream():
        return live_simulator.run(live_simulator.sim.subscribed_symbols)

    ws = await open_client(product_server["port"])
    await subscribe(ws, ["FLWA", "FLWB"])
    await asyncio.to_thread(
        wait_until, lambda: {"FLWA", "FLWB"} <= upstream(), 60, "FLWA/FLWB upstream"
    )
    await ws.send(json.dumps({"action": "unsubscribe", "symbols": ["FLWA"]}))
    await asyncio.to_thread(
        wait_until, lambda: "FLWA" not in upstream(), 60, "FLWA dropped after grace"
    )
    assert "FLWB" in upstream()
    await ws.close()
    await asyncio.to_thread(
        wait_until, lambda: "FLWB" not in upstream(), 60, "FLWB dropped on close"
    )


async def test_clients_keep_their_sockets_through_an_upstream_drop(
    product_server, live_simulator
):
    ws = await open_client(product_server["port"])
    await subscribe(ws, ["DRPA"])
    assert await collect_updates(ws, 1.5)
    live_simulator.call(live_simulator.sim.drop_connections())
    after = await collect_updates(ws, 4.0)
    assert after, "no updates after the upstream reconnected"
    assert await subscriptions(ws) == ["DRPA"]
    await ws.close()


def test_guide_python_example_runs_unchanged_and_prints_prices(product_server):
    """Section "예제 3" of the guide, byte-for-byte but for the server's port."""
    source = GUIDE_EXAMPLE.read_text().replace(
        "ws://localhost:8000", f"ws://localhost:{product_server['port']}"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", source], stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 15
        while len(lines) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                lines.append(line.strip())
    finally:
        proc.kill()
        proc.wait(5)
    assert len(lines) >= 3, f"example printed {lines!r}"
    assert all(re.fullmatch(r"(AAPL|MSFT|TSLA): \$\d+\.\d+", line) for line in lines), (
        lines
    )


@pytest.fixture(scope="module")
def closed_server(migrated_sqlite, live_simulator):
    """A server that refuses anonymous clients, as production does."""
    with start_product(
        "daphne-closed",
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="closed-key",
        FMP_WS_URL=live_simulator.url,
        REALTIME_ALLOW_ANONYMOUS="false",
        REALTIME_EMBEDDED_FEED="false",
    ) as live:
        yield live.port


async def test_refused_connection_gets_http_403_at_handshake(closed_server):
    url = f"ws://127.0.0.1:{closed_server}/api/v2/realtime/ws/prices"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as foreign:
        await websockets.connect(url, origin="http://evil.example")
    assert foreign.value.response.status_code == 403


@pytest.fixture(scope="module")
def strict_product(migrated_sqlite):
    """A product whose simulator knows only real symbols, as FMP does."""
    with start_product(
        "daphne-strict",
        simulator={"rate": 20.0, "seed": 3, "any_symbol": False},
        DATABASE_URL=migrated_sqlite,
        FMP_API_KEY="strict-test-key",
        REALTIME_SIMULATOR_ANY_SYMBOL="false",
    ) as live:
        yield {"port": live.port, "process": live.proc}


async def next_reply(ws) -> dict:
    """The next message that is not an ``upstream_status`` (a server that has just
    started tells its first clients that the feed is still connecting)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] != "upstream_status":
            return message


async def test_unknown_symbol_is_an_error_and_snapshots_carry_reference_data(
    strict_product,
):
    client = await open_client(strict_product["port"])
    await client.send(
        json.dumps({"action": "subscribe", "symbols": ["AAPL", "ZZZZZZ"]})
    )
    # Errors about a request come before its acknowledgement (docs/protocol.md).
    error = await next_reply(client)
    assert error["type"] == "error" and error["code"] == "unknown_symbol", error
    assert "ZZZZZZ" in error["message"] and "AAPL" not in error["message"]
    ack = await next_reply(client)
    assert ack["type"] == "subscription" and ack["symbols"] == ["AAPL"], ack
    assert await next_reply(client) == {
        "type": "subscriptions",
        "symbols": ["AAPL"],
    }
    await next_update(client, "AAPL", within=60)  # AAPL is cached now
    second = await open_client(strict_product["port"])
    await subscribe(second, ["AAPL"])
    assert (await next_reply(second))["type"] == "subscriptions"
    snapshot = await next_reply(second)
    assert snapshot["snapshot"] is True and snapshot["symbol"] == "AAPL"
    assert snapshot["name"] == "Apple Inc."
    assert isinstance(snapshot["previous_close"], float)
    assert isinstance(snapshot["open"], float)
    await client.close()
    await second.close()
