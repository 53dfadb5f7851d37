"""Redis Sentinel under the product's stores and channel layer (issue 23).

Real processes on free loopback ports: one master, one replica and three
sentinels (``redis-server --sentinel``); a failover is a SIGKILL of the master
and a real promotion. The stores' clients and the channel layer are built from
one ``redis+sentinel://`` URL and must follow the new master without being
rebuilt.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from realtime.redisurl import InvalidRedisUrl, channel_host, parse_sentinel
from realtime.stores import RedisClients
from tests.live import free_port, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.live]

MASTER = "fmpsite-test"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def test_sentinel_urls_parse_and_bad_ones_say_why():
    target = parse_sentinel(
        "redis+sentinel://:s3cret@h1:26380,h2,[::1]:26381/mymaster/3"
        "?sentinel_password=sp&socket_timeout=2"
    )
    assert target.sentinels == (("h1", 26380), ("h2", 26379), ("::1", 26381))
    assert target.master_name == "mymaster" and target.db == 3
    assert target.connection_kwargs() == {
        "db": 3,
        "socket_timeout": 2.0,
        "password": "s3cret",
    }
    assert target.sentinel_kwargs() == {"password": "sp", "socket_timeout": 2.0}
    assert parse_sentinel("rediss+sentinel://h1/m").ssl is True
    assert parse_sentinel("redis://127.0.0.1:6379/0") is None
    assert channel_host("redis://127.0.0.1:6379/0", socket_timeout=None) == {
        "address": "redis://127.0.0.1:6379/0",
        "socket_timeout": None,
    }
    for bad, why in [
        ("redis+sentinel:///m", "at least one sentinel"),
        ("redis+sentinel://h1:x/m", "port must be a number"),
        ("redis+sentinel://h1", "master name"),
        ("redis+sentinel://h1/m/zero", "must be a number"),
        ("redis+sentinel://h1/m?colour=red", "unknown option"),
    ]:
        with pytest.raises(InvalidRedisUrl, match=why):
            parse_sentinel(bad)


class Group:
    """A master, a replica and three sentinels, each a process of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with it
        # Its own directory: a replica's full sync writes dump.rdb into it.
        workdir = self.root / name
        workdir.mkdir(exist_ok=True)
        self.procs[name] = subprocess.Popen(
            [REDIS_SERVER, *args, "--dir", str(workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> Group:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._start("master", "--port", str(self.master_port), *common)
        self._start(
            "replica",
            "--port",
            str(self.replica_port),
            *common,
            "--replicaof",
            "127.0.0.1",
            str(self.master_port),
        )
        for port in [self.master_port, self.replica_port]:
            wait_until(lambda p=port: ping(p), 60, f"redis on {port}")
        for i, port in enumerate(self.sentinel_ports):
            conf = self.root / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
            )
            self._start(f"sentinel-{i}", str(conf), "--sentinel")
        for port in self.sentinel_ports:
            wait_until(lambda p=port: ping(p), 60, f"sentinel on {port}")
        return self

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def master(self) -> int | None:
        for port in self.sentinel_ports:
            try:
                answer = redis.Redis(port=port).sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            if answer:
                return int(answer[1])
        return None

    def ready_for_failover(self) -> bool:
        """Every sentinel knows the replica and both other sentinels.

        Sentinels learn replicas from the master's INFO (every 10 s) and each
        other from hello messages (every 2 s); a master killed before that has
        nobody to promote and nobody to vote with.
        """
        for port in self.sentinel_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=1)
                replicas = client.sentinel_slaves(MASTER)
                peers = client.sentinel_sentinels(MASTER)
            except redis.RedisError:
                return False
            if len(peers) < 2 or not any(
                int(r["port"]) == self.replica_port and "s_down" not in r["flags"]
                for r in replicas
            ):
                return False
        return True

    def kill_master(self) -> None:
        self.procs["master"].send_signal(signal.SIGKILL)
        self.procs["master"].wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


async def eventually(attempt, what: str, within: float = 60.0) -> None:
    """Retry the coroutine function ``attempt`` until it returns True."""
    deadline = asyncio.get_running_loop().time() + within
    while not await attempt():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def sentinel_group(tmp_path) -> Iterator[Group]:
    group = Group(tmp_path).start()
    try:
        wait_until(
            lambda: group.master() == group.master_port, 60, "sentinels to agree"
        )
        wait_until(
            group.ready_for_failover, 60, "sentinels to know the replica and each other"
        )
        yield group
    finally:
        group.stop()


async def test_stores_and_the_layer_follow_a_sentinel_failover(sentinel_group):
    group = sentinel_group
    clients = RedisClients(group.url, socket_timeout=2.0, socket_connect_timeout=2.0)
    layer = RedisChannelLayer(hosts=[channel_host(group.url)], prefix="sentinel-t")
    try:
        clients.sync.set("before", "1")
        await clients.aio.set("before-aio", "1")
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "x.y", "n": 1})
        assert (await layer.receive(channel))["n"] == 1
        # The replica has it before the master goes (replication is async).
        replica = redis.Redis(port=group.replica_port)
        wait_until(lambda: replica.get("before-aio") == b"1", 60, "replication")

        group.kill_master()
        await asyncio.to_thread(
            wait_until,
            lambda: group.master() == group.replica_port,
            60,
            "the replica promoted",
        )

        def sync_write() -> bool:
            try:
                return bool(clients.sync.set("after", "2"))
            except redis.RedisError:
                return False

        async def aio_write() -> bool:
            try:
                return bool(await clients.aio.set("after-aio", "2"))
            except redis.RedisError:
                return False

        await asyncio.to_thread(wait_until, sync_write, 60, "a sync write")
        await eventually(aio_write, "the asyncio client to reach the new master")
        # Same client objects, now talking to the promoted replica.
        assert replica.get("after") == b"2" and replica.get("after-aio") == b"2"
        assert clients.sync.get("before") == b"1"

        async def layer_round_trip() -> bool:
            try:
                fresh = await layer.new_channel()
                await layer.send(fresh, {"type": "x.y", "n": 2})
                return (await layer.receive(fresh))["n"] == 2
            except (redis.RedisError, OSError):
                return False

        await eventually(layer_round_trip, "the channel layer to reach the master")
    finally:
        await clients.aclose()
        try:
            await layer.flush()
        except redis.RedisError:
            pass  # no master left to flush: the failure above says why
