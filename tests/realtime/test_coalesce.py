"""Coalescer: concurrent callers share one fetch per round (realtime/coalesce.py)."""

from __future__ import annotations

import asyncio

import pytest

from realtime.coalesce import Coalescer


class Store:
    """A fetch that records each round's keys and can be held open or failed."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.started = asyncio.Event()

    async def fetch(self, keys: list[str]) -> dict[str, str]:
        self.rounds.append(list(keys))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {k: k.lower() for k in keys if k != "MISSING"}


async def test_concurrent_callers_share_one_fetch_and_each_key_once():
    store = Store()
    coalescer = Coalescer(store.fetch, name="t")
    answers = await asyncio.gather(
        *(coalescer.get_many(["AAPL", s, "MISSING"]) for s in ["MSFT", "IBM"] * 50)
    )
    assert len(store.rounds) == 1
    assert sorted(store.rounds[0]) == ["AAPL", "IBM", "MISSING", "MSFT"]
    assert answers[0] == {"AAPL": "aapl", "MSFT": "msft"}
    assert answers[1] == {"AAPL": "aapl", "IBM": "ibm"}


async def test_a_key_already_sent_is_asked_again_in_the_next_round():
    store = Store()
    store.gate = asyncio.Event()
    coalescer = Coalescer(store.fetch, name="t")
    first = asyncio.create_task(coalescer.get_many(["AAPL"]))
    await asyncio.wait_for(store.started.wait(), 60)
    second = asyncio.create_task(coalescer.get_many(["AAPL"]))
    await asyncio.sleep(0)
    assert len(store.rounds) == 1  # one fetch in flight at a time
    store.gate.set()
    assert await first == {"AAPL": "aapl"}
    assert await second == {"AAPL": "aapl"}
    assert store.rounds == [["AAPL"], ["AAPL"]]


async def test_a_failed_round_raises_in_each_caller_and_the_next_round_works():
    store = Store()
    store.fail = ConnectionError("No connection available.")
    coalescer = Coalescer(store.fetch, name="t")
    results = await asyncio.gather(
        coalescer.get_many(["A"]), coalescer.get_many(["B"]), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    store.fail = None
    assert await coalescer.get("A") == "a"


async def test_a_cancelled_caller_leaves_the_others_their_answer():
    store = Store()
    store.gate = asyncio.Event()
    coalescer = Coalescer(store.fetch, name="t")
    leaver = asyncio.create_task(coalescer.get_many(["A"]))
    stayer = asyncio.create_task(coalescer.get_many(["A"]))
    await asyncio.wait_for(store.started.wait(), 60)
    leaver.cancel()
    store.gate.set()
    assert await stayer == {"A": "a"}
    with pytest.raises(asyncio.CancelledError):
        await leaver


async def test_rounds_are_bounded_by_max_batch():
    store = Store()
    coalescer = Coalescer(store.fetch, name="t", max_batch=3)
    keys = [f"K{i}" for i in range(7)]
    assert await coalescer.get_many(keys) == {k: k.lower() for k in keys}
    assert [len(r) for r in store.rounds] == [3, 3, 1]
