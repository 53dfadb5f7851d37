"""Four web processes on one Redis channel layer, with a feed leader and a hot
standby (issue 23): every process's clients get the symbols, and still do after
the leader is killed and the standby takes over; through random kills and
restarts the upstream set stays the union of the leases."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.live import (
    LiveProduct,
    ServerProcess,
    start_scaled,
    stop_scaled,
    wait_until,
)
from tests.realtime.wsclient import next_update, open_client, subscribe

pytestmark = pytest.mark.redis


@pytest.fixture
def four(migrated_postgres, redis_prefix, request):
    stack = start_scaled(migrated_postgres, redis_prefix, workers=2, webs=4)
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


async def test_four_web_processes_deliver_through_a_feed_takeover(four):
    assert len(four["ports"]) == 4
    clients = [await open_client(port) for port in four["ports"]]
    # One symbol all share, and one of each process's own.
    for i, ws in enumerate(clients):
        await subscribe(ws, ["FOURALL", f"FOUR{i}"])
    for i, ws in enumerate(clients):
        for symbol in ("FOURALL", f"FOUR{i}"):
            assert (await next_update(ws, symbol, 60))["symbol"] == symbol
    leader = next(w for w in four["workers"] if "event=feed_lock_acquired" in w.log())
    standby = next(w for w in four["workers"] if w is not leader)
    leader.kill()
    await asyncio.to_thread(
        wait_until,
        lambda: "event=feed_lock_acquired" in standby.log(),
        60,
        "the standby to take the lock",
    )
    # A symbol first asked for after the takeover can only come from the new
    # leader: every process's clients get it, and their own ones go on.
    for ws in clients:
        await subscribe(ws, ["FOURNEW"])
    for i, ws in enumerate(clients):
        for symbol in ("FOURNEW", f"FOUR{i}"):
            assert (await next_update(ws, symbol, 60))["symbol"] == symbol
    await asyncio.gather(*(ws.close() for ws in clients))


def upstream_of(stack: dict) -> frozenset[str]:
    """The tickers the feed leader holds at the simulator (FMP) right now."""
    sim = stack["sim"]
    return sim.run(sim.sim.subscribed_symbols)


def logins_of(stack: dict) -> int:
    """How many feed sessions have logged in at the simulator so far."""
    sim = stack["sim"]
    return sim.run(lambda: sim.sim.logins)


async def test_the_upstream_set_follows_the_leases_through_random_kills_and_restarts(
    four,
):
    """Web processes and the feed leader die (SIGKILL) and come back in a random
    order; after each step the symbols subscribed at FMP are exactly the union
    of what the live processes' clients hold: a dead process's lease expires,
    a restarted one's is taken, a new leader rebuilds the set from the leases."""
    rng = random.Random(23)
    clients: dict[int, Any] = {}

    async def connect(i: int) -> None:
        ws = await open_client(four["ports"][i])
        await subscribe(ws, ["RKALL", f"RK{i}A", f"RK{i}B"])
        assert (await next_update(ws, f"RK{i}A", 60))["symbol"] == f"RK{i}A"
        clients[i] = ws

    def expected() -> frozenset[str]:
        wanted = {"RKALL"} if clients else set()
        for i in clients:
            wanted |= {f"RK{i}A", f"RK{i}B"}
        return frozenset(wanted)

    async def settle(why: str) -> None:
        await asyncio.to_thread(
            wait_until,
            lambda: upstream_of(four) == expected(),
            60,
            f"the upstream set to equal the leases' union after {why}",
        )

    for i in range(4):
        await connect(i)
    await settle("the start")
    steps = ["web", "web", "leader", "web", "web"]
    rng.shuffle(steps)
    for step in steps:
        if step == "leader":
            leader = next(
                w for w in four["workers"] if "event=feed_lock_acquired" in w.log()
            )
            logins = logins_of(four)
            leader.kill()
            leader.stop()  # already dead: only removes its log file
            # The killed worker comes back as the new standby, so the next
            # leader kill has a process to take over.
            restarted = ServerProcess(leader.name, leader.args, leader.env).start()
            four["workers"][four["workers"].index(leader)] = restarted
            # Compare the new leader's session, not the dead one's last set.
            await asyncio.to_thread(
                wait_until,
                lambda before=logins: logins_of(four) > before,
                60,
                "the standby to log in upstream",
            )
            await settle("a leader kill")
            continue
        i = rng.choice(sorted(clients)) if clients else 0
        four["webs"][i].kill()
        four["webs"][i].stop()
        del clients[i]  # its client's socket died with the process
        await settle(f"killing web-{i}")
        web = LiveProduct(f"web-{i}", four["env"]).start().wait_ready()
        four["webs"][i] = web.proc
        four["ports"][i] = web.port
        await connect(i)
        await settle(f"restarting web-{i}")
    await asyncio.gather(
        *(ws.close() for ws in clients.values()), return_exceptions=True
    )
