"""The channel layer sharded over two Redis masters (issue 23).

``REALTIME_CHANNEL_REDIS_URL`` lists two real ``redis-server`` processes (the
shared one and a private one on a free port); channels-redis hashes each group
and channel to one of them (a CRC-12 split into equal ranges,
channels_redis/utils.py ``_consistent_hash``). Symbols are picked so their
groups land on both shards; every client of both web processes must get them all,
and keeps getting them through a ``kill -9`` of one shard and its restart.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import pytest
import redis
from channels_redis.utils import _consistent_hash

from realtime.groups import price_group
from tests.live import (
    LiveProduct,
    async_wait_until,
    free_port,
    start_scaled,
    stop_scaled,
    wait_until,
)
from tests.realtime.httpprobe import http_json, metric
from tests.realtime.sentinels import REDIS_SERVER
from tests.realtime.wsclient import next_update, open_client, subscribe

pytestmark = pytest.mark.redis


class RedisServer:
    """A private ``redis-server`` (no persistence) that can be killed and
    started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: _answers(self.port), 60, f"redis on {self.port}")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.fixture
def second_redis():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.RedisError:
        return False


def symbols_on(shard: int, count: int) -> list[str]:
    """``count`` symbols whose price groups hash to ``shard`` of two."""
    found = []
    for n in range(1000):
        symbol = f"SH{n}"
        if _consistent_hash(price_group(symbol), 2) == shard:
            found.append(symbol)
        if len(found) == count:
            return found
    raise AssertionError("no symbols found for the shard")


@pytest.fixture
def sharded(migrated_postgres, redis_prefix, second_redis, request):
    urls = f"redis://127.0.0.1:6379/0,redis://127.0.0.1:{second_redis.port}/0"
    stack = start_scaled(
        migrated_postgres, redis_prefix, REALTIME_CHANNEL_REDIS_URL=urls
    )
    yield stack
    failed = getattr(request.node, "rep_call", None)
    stop_scaled(stack, show_logs=bool(failed and failed.failed))


async def test_every_symbol_reaches_every_subscriber_across_two_shards(
    sharded, second_redis, redis_prefix
):
    wanted = symbols_on(0, 2) + symbols_on(1, 2)
    clients = [await open_client(port) for port in sharded["ports"]]
    for ws in clients:
        await subscribe(ws, wanted)
    for ws in clients:
        for symbol in wanted:
            update = await next_update(ws, symbol, 60)
            assert update["symbol"] == symbol
    # Both shards carry groups of the layer: the split is real.
    for port in (6379, second_redis.port):
        keys = redis.Redis(port=port).keys(f"{redis_prefix}:group:*")
        assert keys, f"no group of the layer on the Redis at {port}"
    await asyncio.gather(*(ws.close() for ws in clients))


# --- one shard killed under streaming -------------------------------------------

DROPPED = 'fmpsite_layer_dropped_total{reason="error"}'


class Recorder:
    """Every ``price_update`` one client receives, read in a task."""

    def __init__(self, ws, web: int) -> None:
        self.ws = ws
        self.web = web
        self.updates: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "price_update":
                self.updates.append(message)

    def live(self, symbol: str, since: int = 0) -> list[dict]:
        return [
            u
            for u in self.updates[since:]
            if u["symbol"] == symbol and not u.get("snapshot")
        ]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.ws.close()


def hub_shard(redis_prefix: str, probe: str) -> tuple[int] | None:
    """The shard of the hub channel in ``probe``'s group (on shard 0), once it
    joined: ``probe`` is a symbol only one web process's client subscribes to.
    channels-redis hashes a process-local channel on its part up to ``!``."""
    key = f"{redis_prefix}:group:{price_group(probe)}"
    members = redis.Redis(port=6379).zrange(key, 0, -1)
    if not members:
        return None
    assert len(members) == 1, members
    channel = members[0].decode()
    return (_consistent_hash(channel[: channel.index("!") + 1], 2),)


def exported(port: int, name: str) -> float:
    try:
        return metric(port, name)
    except AssertionError:
        return 0.0


async def test_a_killed_shard_is_counted_resynced_and_the_other_shard_unaffected(
    sharded, second_redis, redis_prefix, record_property
):
    healthy, affected = symbols_on(0, 2), symbols_on(1, 2)
    probes = iter(symbols_on(0, 12)[2:])  # one per web process
    recorders: list[Recorder] = []
    shards: dict[int, int] = {}  # web index -> its hub channel's shard
    ports = list(sharded["ports"])

    async def join(web: int) -> None:
        ws = await open_client(ports[web])
        probe = next(probes)
        await subscribe(ws, [*healthy, *affected, probe])
        (shards[web],) = await async_wait_until(
            lambda: hub_shard(redis_prefix, probe), 60, f"{probe}'s hub channel"
        )
        recorders.append(Recorder(ws, web))

    for web in range(len(ports)):
        await join(web)
    # The hub channel's shard is random (channels-redis's per-process prefix):
    # until one web process listens on the shard that stays up, add one.
    while 0 not in shards.values():
        assert len(ports) < 10, f"no hub channel on shard 0 in {len(ports)} tries"
        extra = LiveProduct(f"web-{len(ports)}", sharded["env"]).start()
        sharded["webs"].append(extra.proc)
        await asyncio.to_thread(extra.wait_ready)
        ports.append(extra.port)
        await join(len(ports) - 1)

    def every_client_got(count: int, marks: list[int] | None = None) -> bool:
        return all(
            len(r.live(s, marks[i] if marks else 0)) >= count
            for i, r in enumerate(recorders)
            for s in [*healthy, *affected]
        )

    await async_wait_until(lambda: every_client_got(3), 60, "updates of all")
    start = [len(r.updates) for r in recorders]
    dropped_before = exported(ports[0], DROPPED)

    second_redis.kill()
    killed = [len(r.updates) for r in recorders]
    calm = [r for r in recorders if shards[r.web] == 0]
    # The feed counts what it cannot publish (its counters reach every web
    # process's /metrics through its status, on the shard that is up) ...
    await async_wait_until(
        lambda: exported(ports[0], DROPPED) > dropped_before + 20,
        60,
        "the updates for the dead shard to be counted dropped",
    )
    # ... while the clients of the live shard's symbols on a web process
    # listening there go on.
    await async_wait_until(
        lambda: all(
            len(r.live(s, killed[recorders.index(r)])) >= 10
            for r in calm
            for s in healthy
        ),
        60,
        "the live shard's updates during the outage",
    )
    during = exported(ports[0], DROPPED)
    second_redis.start()  # the same port, empty: every group on it is gone
    back = [len(r.updates) for r in recorders]
    await async_wait_until(
        lambda: every_client_got(5, back), 60, "every symbol again on every client"
    )
    await asyncio.gather(*(r.close() for r in recorders))

    for i, r in enumerate(recorders):
        for symbol in [*healthy, *affected]:
            seqs = [u["seq"] for u in r.live(symbol, start[i])]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (
                f"web-{r.web} (hub on shard {shards[r.web]}) {symbol}: not every "
                f"seq once, in order: {seqs}"
            )
        # The dead shard's symbols came back filled from the history.
        for symbol in affected:
            assert any(u.get("recovered") for u in r.live(symbol, killed[i])), (
                f"web-{r.web} {symbol}: nothing recovered after the outage"
            )
    for r in calm:
        for symbol in healthy:
            after = r.live(symbol, killed[recorders.index(r)])
            assert after, f"web-{r.web} {symbol}: nothing after the kill"
            assert not any(u.get("recovered") for u in after), (
                f"web-{r.web} {symbol}: the live shard's updates were disturbed"
            )
    assert during > dropped_before
    record_property("hub_shards", sorted(shards.values()))
    record_property("dropped_during_outage", during - dropped_before)
    for process in [*sharded["webs"], *sharded["workers"]]:
        assert process.proc.poll() is None, f"{process.name} died:\n{process.log()}"
    for port in ports:
        assert http_json(port, "/api/v2/realtime/health")["status"] == "connected"
        assert metric(port, "fmpsite_fanout_healthy") == 1
    feed_log = "".join(w.log() for w in sharded["workers"])
    assert "event=layer_shard_down shard=1" in feed_log
    assert "event=layer_shard_up shard=1" in feed_log
