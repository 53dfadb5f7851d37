"""Fixtures for the upstream tests: a simulator on a free port, clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from realtime.upstream.client import FmpClient
from realtime.upstream.config import FmpConfig
from realtime.upstream.simulator import FmpSimulator

CLIENT_ARGUMENTS = (
    "on_tick",
    "on_state_change",
    "on_event",
    "on_refused",
    "asset_class",
)


@pytest.fixture
async def simulator() -> AsyncIterator[FmpSimulator]:
    sim = FmpSimulator(port=0, rate=200.0, seed=11, heartbeat_interval=0.2)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def make_client(
    simulator: FmpSimulator,
) -> AsyncIterator[Callable[..., FmpClient]]:
    """Build FmpClients with fast test timings; every one is stopped afterwards."""
    clients: list[FmpClient] = []

    def build(**overrides: Any) -> FmpClient:
        """``overrides`` name FmpConfig fields or FmpClient's callbacks."""
        options: dict[str, Any] = {
            "url": simulator.url,
            "api_key": "test-key-0123456789",
            "login_timeout": 0.5,
            "reconnect_base": 0.02,
            "reconnect_cap": 0.1,
            "fatal_backoff": 0.5,
            "slot_backoff": 0.5,
            "idle_timeout": 5.0,
        }
        options.update(overrides)
        callbacks = {
            name: options.pop(name) for name in CLIENT_ARGUMENTS if name in options
        }
        callbacks.setdefault("on_tick", lambda tick: None)
        client = FmpClient(FmpConfig(**options), **callbacks)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.stop()
