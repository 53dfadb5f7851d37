"""A Redis Sentinel group for tests: a master, a replica and three sentinels as
real ``redis-server`` processes on free loopback ports (issue 23).

Shared by the Sentinel store tests (test_sentinel.py) and the failover-under-load
test (test_sentinel_failover.py), and used by ``bench/failover.py``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.live import free_port, wait_until

MASTER = "fmpsite-test"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Sentinel's down-after-milliseconds for the group: the failover targets are
# stated in multiples of it (issue 23).
DOWN_AFTER_MS = 1000


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
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
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

    def replica_caught_up(self) -> bool:
        """The replica has acknowledged the master's replication offset as of
        this call (asynchronous replication: what it lacks dies with a killed
        master). Under a steady write load the master moves on meanwhile, so
        this is "caught up to a moment ago", which is what a test can ask."""
        try:
            info = redis.Redis(port=self.master_port, socket_timeout=1).info(
                "replication"
            )
        except redis.RedisError:
            return False
        offset = info.get("master_repl_offset", 0)
        return (
            any(
                isinstance(v, dict) and int(v.get("offset", -1)) >= offset
                for k, v in info.items()
                if k.startswith("slave")
            )
            or self._replica_offset() >= offset
        )

    def _replica_offset(self) -> int:
        try:
            info = redis.Redis(port=self.replica_port, socket_timeout=1).info(
                "replication"
            )
        except redis.RedisError:
            return -1
        return int(info.get("slave_repl_offset", -1))

    def kill_master(self) -> None:
        self.procs["master"].send_signal(signal.SIGKILL)
        self.procs["master"].wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_group(root: Path) -> Group:
    """A started group whose sentinels agree on the master and know the replica
    and each other (ready for a failover); stop() it."""
    group = Group(root).start()
    try:
        wait_until(
            lambda: group.master() == group.master_port, 60, "sentinels to agree"
        )
        wait_until(
            group.ready_for_failover, 60, "sentinels to know the replica and each other"
        )
    except BaseException:
        group.stop()
        raise
    return group
