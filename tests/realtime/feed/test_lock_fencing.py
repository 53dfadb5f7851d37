"""The feed leader lock across a Redis failover (realtime/feed/lock.py, issue 23).

Asynchronous replication can lose the lock key when Sentinel promotes a replica:
a standby then acquires while the old leader still believes it leads. The
fencing token makes every history write of the stale leader fail, so it
publishes nothing after the new leader started and steps down. Real Redis; the
lost key is a ``DEL`` of it, which is what the promoted replica looks like.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess

import orjson
import pytest
import redis

from realtime.events import Update
from realtime.feed.broker import RedisBroker
from realtime.feed.history import Fenced, RedisHistory
from realtime.feed.lock import RedisLeaderLock
from tests.live import REDIS_URL, async_wait_until, free_port, wait_until
from tests.realtime.sentinels import REDIS_SERVER

pytestmark = pytest.mark.redis


@pytest.fixture
def made(redis_prefix):
    yield None, redis_prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


def lock(prefix: str, owner: str) -> RedisLeaderLock:
    return RedisLeaderLock(REDIS_URL, f"{prefix}:feed:leader", owner, ttl=30.0)


def numbered(history: RedisHistory, symbol: str) -> Update:
    seq = history.next_seq(symbol)
    text = orjson.dumps({"symbol": symbol, "seq": seq, "timestamp": 1}).decode()
    return Update(symbol, seq, history.epoch, text, 1)


async def test_a_stale_leader_cannot_write_once_a_new_one_holds_the_lock(made):
    _, prefix = made
    client = redis.Redis.from_url(REDIS_URL)
    old, new = lock(prefix, "feed-old"), lock(prefix, "feed-new")
    await old.acquire()
    old_history = RedisHistory(REDIS_URL, prefix, size=100, seconds=600)
    old_history.fence = old.fence
    await old_history.start()
    await old_history.write([numbered(old_history, "FENCE")])
    # The failover: the promoted replica never got the lock key.
    client.delete(f"{prefix}:feed:leader")
    await asyncio.wait_for(new.acquire(), 60)
    assert new.fence.token == old.fence.token + 1
    new_history = RedisHistory(REDIS_URL, prefix, size=100, seconds=600)
    new_history.fence = new.fence
    await new_history.start()
    stream = f"{prefix}:history:{new_history.epoch}:s:FENCE"
    assert client.xlen(stream) == 1
    # The stale leader's next write is refused and leaves nothing behind...
    with pytest.raises(Fenced):
        await old_history.write([numbered(old_history, "FENCE")])
    assert client.xlen(stream) == 1
    assert client.hget(f"{prefix}:history:{new_history.epoch}:seq", "FENCE") == b"1"
    # ...while the new leader continues the sequence where the history is.
    await new_history.write([numbered(new_history, "FENCE")])
    assert [int(f[b"s"]) for _, f in client.xrange(stream)] == [1, 2]
    # And its renewal finds the lock gone to the other owner.
    assert not await old.renew()
    assert await new.renew()
    for item in (old_history, new_history):
        await item.aclose()
    await old.release()
    await new.release()


class Recorder:
    """The layer publisher's part a broker calls: what reached the fan-out."""

    def __init__(self) -> None:
        self.delivered: list[Update] = []

    def deliver(self, update: Update) -> None:
        self.delivered.append(update)

    def deliver_upstream(self, status: str, text: str) -> None: ...
    def deliver_refused(self, symbols, message: str) -> None: ...
    def forget_channel(self, channel: str) -> None: ...
    def route_channel(self, channel: str, symbols) -> None: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


async def test_a_fenced_broker_publishes_nothing_more_and_signals_step_down(
    made, caplog
):
    _, prefix = made
    client = redis.Redis.from_url(REDIS_URL)
    old, new = lock(prefix, "feed-old"), lock(prefix, "feed-new")
    await old.acquire()
    history = RedisHistory(REDIS_URL, prefix, size=100, seconds=600)
    fanout = Recorder()
    broker = RedisBroker(history, fanout, old.fence)
    await broker.start()
    broker.publish(numbered(history, "FENCB"))
    await async_wait_until(lambda: fanout.delivered, 60, "the first publish")
    client.delete(f"{prefix}:feed:leader")
    await asyncio.wait_for(new.acquire(), 60)
    caplog.set_level(logging.WARNING, logger="realtime.feed.broker")
    broker.publish(numbered(history, "FENCB"))
    await asyncio.wait_for(broker.fenced.wait(), 60)
    broker.publish(numbered(history, "FENCB"))  # after stepping down: dropped
    await broker.aclose()
    assert [u.seq for u in fanout.delivered] == [1]
    assert "event=feed_fenced" in caplog.text
    await old.release()
    await new.release()


async def test_an_unfenced_history_writes_as_before(made):
    _, prefix = made
    history = RedisHistory(REDIS_URL, prefix, size=100, seconds=600)
    await history.start()
    await history.write([numbered(history, "NOFENCE")])
    page = await history.aread("NOFENCE", 0, 10)
    assert page is not None and [seq for seq, _ in page.updates] == [1]
    await history.aclose()


@pytest.fixture
def replicated(tmp_path):
    """A private master with one replica (real ``redis-server`` processes)."""
    master, replica = free_port(), free_port()
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs = [
        subprocess.Popen(
            [REDIS_SERVER, "--port", str(master), *common, "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [REDIS_SERVER, "--port", str(replica), *common]
            + ["--replicaof", "127.0.0.1", str(master)]
            # A replica's full sync writes dump.rdb: into the test's directory.
            + ["--dir", str(replica_dir)],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_until(
            lambda: _linked(master),
            60,
            "the replica to be in sync",
        )
        yield master, replica, procs[1]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)


def _linked(port: int) -> bool:
    try:
        info = redis.Redis(port=port).info("replication")
    except redis.RedisError:
        return False
    return info.get("slave0", {}).get("state") == "online"


async def test_the_lock_waits_for_a_replica_and_says_when_none_acked(
    replicated, caplog
):
    master, replica, replica_proc = replicated
    url = f"redis://127.0.0.1:{master}/0"
    caplog.set_level(logging.INFO, logger="realtime.feed.lock")
    first = RedisLeaderLock(url, "t:feed:leader", "feed-a", ttl=3.0)
    await first.acquire()
    # WAIT 1 returned: the replica a promotion would pick holds lock and fence.
    copy = redis.Redis(port=replica)
    assert copy.get("t:feed:leader") == b"feed-a"
    assert int(copy.get("t:feed:leader:fence")) == first.fence.token
    assert "event=feed_lock_unreplicated" not in caplog.text
    await first.release()
    # A replica that does not answer: leadership goes on, and the log says so.
    replica_proc.send_signal(signal.SIGSTOP)
    second = RedisLeaderLock(url, "t:feed:leader", "feed-b", ttl=3.0)
    await asyncio.wait_for(second.acquire(), 60)
    assert "event=feed_lock_unreplicated owner=feed-b" in caplog.text
    assert second.fence.token == first.fence.token + 1
    await second.release()


async def test_a_leader_finds_its_own_lock_and_leads_again_with_a_new_fence(made):
    """After stepping down because Redis was unreachable, the lock that still
    names this owner (replicated to the promoted master) is acquired again at
    once; another owner still waits for it."""
    _, prefix = made
    leader, standby = lock(prefix, "feed-a"), lock(prefix, "feed-b")
    await leader.acquire()
    first = leader.fence.token
    await asyncio.wait_for(leader.acquire(), 5)  # its own key: no TTL wait
    assert leader.fence.token == first + 1  # late writes of before are fenced
    waiting = asyncio.create_task(standby.acquire())
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), 1.0)
    finally:
        await leader.release()
    await asyncio.wait_for(waiting, 60)  # the release lets the standby in
    assert standby.fence.token == first + 2
    await standby.release()
