"""The scaled stack for tests: a simulator, feed workers and daphne web processes
on the real Redis channel layer, with a private key prefix per test."""

from __future__ import annotations

import sys

import redis

from tests.conftest import ServerProcess, SimulatorThread, daphne, free_port, server_env

REDIS_URL = "redis://127.0.0.1:6379/0"


def start_scaled(
    database_url: str,
    redis_prefix: str,
    *,
    redis_url: str = REDIS_URL,
    workers: int = 1,
    webs: int = 2,
    **env_overrides: str,
) -> dict:
    """Start a simulator, ``workers`` feed workers and ``webs`` web processes
    (``env_overrides``: settings of this stack, e.g. ``REALTIME_LEASE_TTL``)."""
    redis.Redis.from_url(redis_url).ping()  # fail loudly: CI must provide Redis
    sim = SimulatorThread(rate=40.0, seed=11, heartbeat_interval=1.0).start()
    env = server_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REALTIME_CHANNEL_PREFIX=redis_prefix,
        REALTIME_CACHE_PREFIX=redis_prefix,
        FMP_API_KEY="scaled-key",
        FMP_WS_URL=sim.url,
        **env_overrides,
    )
    feed_workers = [
        ServerProcess(
            f"feed-worker-{i}",
            [sys.executable, "manage.py", "runworker", "fmp-feed"],
            env,
        ).start()
        for i in range(workers)
    ]
    ports = [free_port() for _ in range(webs)]
    web_processes = [daphne(f"web-{i}", port, env) for i, port in enumerate(ports)]
    stack = {
        "ports": ports,
        "webs": web_processes,
        "workers": feed_workers,
        "sim": sim,
        "env": env,
        "redis_url": redis_url,
        "prefix": redis_prefix,
    }
    try:
        for web, port in zip(web_processes, ports, strict=True):
            web.wait_port(port)
    except BaseException:
        stop_scaled(stack, show_logs=True)
        raise
    return stack


def stop_scaled(stack: dict, *, show_logs: bool = False) -> None:
    for process in [*stack["workers"], *stack["webs"]]:
        if show_logs:
            print(f"--- {process.name} ---\n{process.log()}")
        process.stop()
    stack["sim"].stop()
    try:
        client = redis.Redis.from_url(stack["redis_url"])
        for key in client.scan_iter(f"{stack['prefix']}*"):
            client.delete(key)
    except redis.RedisError:
        pass
