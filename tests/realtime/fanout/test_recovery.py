"""Recovery on reconnect over real servers (issue 15, docs/protocol.md).

A client that lost its socket subscribes again with ``recover`` and its last
(epoch, seq); it must then see every update after that seq exactly once, in
order, replayed ones (``recovered: true``) first and live ones after, while the
simulator keeps ticking at a high rate during the replay. Embedded mode (one
daphne) and scaled mode (two daphne and feed workers on Redis, failover included).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from tests.live import (
    REDIS_URL,
    LiveProduct,
    SimulatorThread,
    server_env,
    start_scaled,
    stop_scaled,
    wait_until,
)
from tests.realtime.wsclient import next_message, open_client, request, subscribe

HIGH_RATE = 400.0  # ticks/s over the subscribed symbols


async def updates_of(ws, symbol: str, count: int, within: float = 60) -> list[dict]:
    """The next ``count`` price_updates of ``symbol`` (snapshots included)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {count} updates of {symbol} arrived"
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message["type"] == "price_update" and message["symbol"] == symbol:
            got.append(message)
    return got


async def recover(ws, symbols: list[str], positions: dict[str, dict]) -> dict:
    return await request(
        ws,
        {"action": "subscribe", "symbols": symbols, "recover": positions},
        "subscription",
    )


def assert_contiguous(updates: list[dict], after: int) -> None:
    """Seqs run after+1, after+2, ... with no gap and no duplicate; every replayed
    update comes before every live one."""
    seqs = [u["seq"] for u in updates]
    flags = [bool(u.get("recovered")) for u in updates]
    replayed = flags.count(True)
    expected = list(range(after + 1, after + 1 + len(seqs)))
    bad = next(
        (i for i, (a, b) in enumerate(zip(seqs, expected, strict=False)) if a != b),
        None,
    )
    assert bad is None, (
        f"seq {seqs[bad]} where {expected[bad]} was due, at index {bad} "
        f"({replayed} replayed): {seqs[max(0, bad - 5) : bad + 5]}"
    )
    assert flags == [True] * replayed + [False] * (len(flags) - replayed), flags
    assert not any(u.get("snapshot") for u in updates)


async def read_then_drop(port: int, symbol: str, count: int = 20) -> tuple[str, int]:
    """Subscribe, read ``count`` live updates, disconnect: (epoch, last seq seen)."""
    ws = await open_client(port)
    ack = await subscribe(ws, [symbol])
    epoch = ack["epoch"]
    seen = await updates_of(ws, symbol, count)
    await ws.close()
    return epoch, seen[-1]["seq"]


def history_after(port: int, symbol: str, seq: int) -> int:
    """How many updates the server holds after ``seq`` (REST, blocking)."""
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/v2/realtime/history/{symbol}?after_seq={seq}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as response:
        return len(json.loads(response.read())["updates"])


def history_page(port: int, symbol: str, seq: int) -> dict:
    """What the server holds after ``seq`` (for failure messages)."""
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/v2/realtime/history/{symbol}?after_seq={seq}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as response:
        page = json.loads(response.read())
    seqs = [u["seq"] for u in page["updates"]]
    return {
        "epoch": page["epoch"],
        "last_seq": page["last_seq"],
        "seqs": seqs[:5],
        "n": len(seqs),
    }


async def missed_some(port: int, symbol: str, seq: int, at_least: int = 50) -> None:
    """Wait (an event, not a sleep) until the feed published ``at_least`` more."""
    await asyncio.to_thread(
        wait_until,
        lambda: history_after(port, symbol, seq) >= at_least,
        60,
        f"{at_least} updates of {symbol} after seq {seq}",
        0.1,
    )


async def assert_recovers(port: int, symbol: str, epoch: str, seq: int) -> None:
    ws = await open_client(port)
    ack = await recover(ws, [symbol], {symbol: {"epoch": epoch, "seq": seq}})
    assert ack["epoch"] == epoch, ack
    assert ack["recovered"] == [symbol] and ack["not_recovered"] == [], (
        ack,
        seq,
        history_page(port, symbol, seq),
    )
    # Read well past the replay: the live updates that arrived meanwhile must
    # follow the replayed ones exactly.
    updates: list[dict[str, Any]] = []
    live = 0
    while live < 100:
        update = (await updates_of(ws, symbol, 1))[0]
        updates.append(update)
        live += not update.get("recovered")
    await ws.close()
    assert_contiguous(updates, seq)
    replayed = sum(1 for u in updates if u.get("recovered"))
    assert replayed >= 50 and len(updates) - replayed >= 50, replayed


# --- embedded mode --------------------------------------------------------------------


@pytest.fixture
def embedded(migrated_sqlite, request):
    sim = SimulatorThread(rate=HIGH_RATE, seed=21, heartbeat_interval=1.0).start()
    env = server_env(
        DATABASE_URL=migrated_sqlite, FMP_API_KEY="recovery-key", FMP_WS_URL=sim.url
    )
    servers: list = []

    def start():
        web = LiveProduct(f"recovery-web-{len(servers)}", env).start()
        servers.append(web)
        web.wait_ready()
        return web.proc, web.port

    yield start
    failed = getattr(request.node, "rep_call", None)
    for web in servers:
        if failed and failed.failed:
            print(f"--- {web.name} ---\n{web.log()}")
        web.stop()
    sim.stop()


async def test_embedded_recovery_is_contiguous_while_ticks_keep_coming(embedded):
    _, port = embedded()
    epoch, seq = await read_then_drop(port, "RCVA")
    # Another client keeps the symbol subscribed upstream while the first is away.
    keeper = await open_client(port)
    await subscribe(keeper, ["RCVA"])
    await missed_some(port, "RCVA", seq)
    await assert_recovers(port, "RCVA", epoch, seq)
    await keeper.close()


async def test_recover_bad_input_and_lost_history(embedded):
    web, port = embedded()
    ws = await open_client(port)
    # A malformed recover: an error naming it, and the subscribe still happens.
    await ws.send(
        json.dumps(
            {
                "action": "subscribe",
                "symbols": ["RCVB", "RCVC"],
                "recover": {"RCVB": {"epoch": 5, "seq": "x"}, "RCVC": 3},
            }
        )
    )
    error = await next_message(ws, "error", 60)
    assert error["code"] == "bad_request", error
    assert "RCVB" in error["message"] and "RCVC" in error["message"]
    ack = await next_message(ws, "subscription", 60)
    assert ack["symbols"] == ["RCVB", "RCVC"], ack
    assert ack["recovered"] == [] and ack["not_recovered"] == [], ack
    ws2 = await open_client(port)
    bad = await request(
        ws2, {"action": "subscribe", "symbols": ["RCVB"], "recover": []}, "error"
    )
    assert (
        bad["code"] == "bad_request"
        and "'recover' must be an object" in (bad["message"])
    )
    live = (await updates_of(ws, "RCVB", 5))[-1]
    epoch, seq = ack["epoch"], live["seq"]
    await ws.close()
    await ws2.close()
    # The server restarts: its history is gone, a new epoch starts; recovering
    # with the old one gets not_recovered and a snapshot in the new epoch.
    web.stop()
    _, port2 = embedded()
    ws = await open_client(port2)
    await subscribe(ws, ["RCVB"])
    await updates_of(ws, "RCVB", 1)  # the new server has data for it
    again = await open_client(port2)
    ack = await recover(again, ["RCVB"], {"RCVB": {"epoch": epoch, "seq": seq}})
    assert ack["recovered"] == [] and ack["not_recovered"] == ["RCVB"], ack
    assert ack["epoch"] != epoch
    first = (await updates_of(again, "RCVB", 1))[0]
    assert first.get("snapshot") is True and first["epoch"] == ack["epoch"], first
    assert isinstance(first["seq"], int) and not first.get("recovered")
    await ws.close()
    await again.close()


# --- scaled mode ----------------------------------------------------------------------


@pytest.fixture
def scaled_stack(migrated_postgres, redis_prefix, request):
    stacks: list[dict] = []

    def start(**kwargs: Any) -> dict:
        stack = start_scaled(migrated_postgres, redis_prefix, **kwargs)
        stacks.append(stack)
        stack["sim"].run(lambda: stack["sim"].sim.set_rate(HIGH_RATE))
        return stack

    yield start
    failed = getattr(request.node, "rep_call", None)
    for stack in stacks:
        stop_scaled(stack, show_logs=bool(failed and failed.failed))


@pytest.mark.redis
async def test_scaled_recovery_on_the_other_web_process_is_contiguous(scaled_stack):
    stack = scaled_stack()
    a, b = stack["ports"]
    epoch, seq = await read_then_drop(a, "RCVS")
    keeper = await open_client(a)
    await subscribe(keeper, ["RCVS"])
    await missed_some(b, "RCVS", seq)
    await assert_recovers(b, "RCVS", epoch, seq)
    await keeper.close()


@pytest.mark.redis
async def test_scaled_feed_failover_keeps_the_epoch_and_the_sequence(
    scaled_stack, redis_prefix
):
    stack = scaled_stack(workers=2, webs=1)
    port = stack["ports"][0]
    watcher = await open_client(port)
    ack = await subscribe(watcher, ["RCVF"])
    epoch = ack["epoch"]
    before = await updates_of(watcher, "RCVF", 20)
    client = redis.Redis.from_url(REDIS_URL)
    leader = client.get(f"{redis_prefix}:feed:leader").decode()
    leader_proc = next(w for w in stack["workers"] if f":{w.proc.pid}:" in leader)
    # A client that was away during the failover recovers from before it.
    away_epoch, away_seq = await read_then_drop(port, "RCVF")
    leader_proc.kill()  # SIGKILL: nothing flushed, no lock released
    sim = stack["sim"]
    await asyncio.to_thread(
        wait_until,
        lambda: sim.run(lambda: sim.sim.logins) >= 2,
        60,
        "the standby to log in upstream",
    )
    # The watcher, connected throughout, saw one unbroken sequence.
    after = await updates_of(watcher, "RCVF", 200)
    seqs = [u["seq"] for u in before + after]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    new_leader = client.get(f"{redis_prefix}:feed:leader").decode()
    assert new_leader != leader
    assert client.get(f"{redis_prefix}:history:epoch").decode() == epoch
    assert away_epoch == epoch
    await assert_recovers(port, "RCVF", epoch, away_seq)
    await watcher.close()


@pytest.mark.redis
async def test_scaled_lost_history_is_a_new_epoch_and_a_snapshot(
    scaled_stack, redis_prefix
):
    stack = scaled_stack(webs=1)
    port = stack["ports"][0]
    epoch, seq = await read_then_drop(port, "RCVL")
    # A client connected throughout: told of the new epoch by a fresh snapshot.
    keeper = await open_client(port)
    await subscribe(keeper, ["RCVL"])
    await updates_of(keeper, "RCVL", 5)
    client = redis.Redis.from_url(REDIS_URL)
    # Redis lost the history (flushed) while the feed was down: its next start is
    # a new epoch. Killed first: a running leader writes its epoch back with its
    # next batch (a flushed Redis follows the writer), which raced the delete.
    stack["workers"][0].kill()
    for key in client.scan_iter(f"{redis_prefix}:history:*"):
        client.delete(key)
    stack["workers"][0] = (
        stack["workers"][0]
        .__class__(
            "feed-worker-restarted",
            stack["workers"][0].args,
            stack["env"],
        )
        .start()
    )
    await asyncio.to_thread(
        wait_until,
        lambda: (
            (e := client.get(f"{redis_prefix}:history:epoch")) is not None
            and e.decode() != epoch
        ),
        60,
        "the restarted feed's new epoch",
    )
    fresh = await next_message(keeper, "price_update", 60, snapshot=True)
    assert fresh["symbol"] == "RCVL" and fresh["epoch"] not in (None, epoch), fresh
    ws = await open_client(port)
    ack = await recover(ws, ["RCVL"], {"RCVL": {"epoch": epoch, "seq": seq}})
    assert ack["not_recovered"] == ["RCVL"] and ack["epoch"] != epoch, ack
    first = (await updates_of(ws, "RCVL", 1))[0]
    assert first.get("snapshot") and first["epoch"] == ack["epoch"], first
    await ws.close()
    await keeper.close()
