"""Fixtures for the reference-data tests: a simulator speaking FMP's REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from realtime.reference.service import reset_reference_service
from realtime.upstream.simulator import FmpSimulator


@pytest.fixture(autouse=True)
def _fresh_reference_service() -> Iterator[None]:
    """No cached references or registered simulator URL leak between tests."""
    reset_reference_service()
    yield
    reset_reference_service()


@pytest.fixture
async def fmp() -> AsyncIterator[FmpSimulator]:
    """FMP as the product meets it: only the universe's symbols are known."""
    sim = FmpSimulator(rate=0.0, seed=1, any_symbol=False, api_keys={"ref-key"})
    await sim.start()
    yield sim
    await sim.stop()
