"""Coalesced store reads: many concurrent callers, one round trip per round.

A reconnect storm makes thousands of connections of one process ask the same
store the same question at once (each subscribe: the symbols' snapshots, the
epoch, the reference data, a connection slot). One command per caller through a
bounded Redis pool (``REALTIME_REDIS_POOL_SIZE``) queues them all for a pooled
connection; past the pool's wait they fail (``No connection available``) and
everything else on that pool (the hub's lease beat) waits behind them (issue 26).

A ``Coalescer`` turns that into rounds: callers add their keys to the round
being gathered and wait; one task sends the round as a single fetch (an
``HMGET``, a pipeline) and hands each caller its answers. Keys asked by several
callers of a round are fetched once. Only one fetch per coalescer is in flight,
so it holds at most one pooled connection however many callers wait: callers
queue in memory, nothing fails for want of a connection. A key already sent is
not joined (its answer may predate the caller's question, which subscribe
ordering relies on); it goes into the next round.

State is kept per event loop (futures belong to one loop), as the reference
service does; a coalescer may be a module-level object.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Keys per fetch: one round of a storm over a wide universe stays one bounded
# command; the rest go in the next round.
MAX_BATCH = 2000


class _Round(Generic[K, V]):
    def __init__(self) -> None:
        self.pending: dict[K, asyncio.Future[V | None]] = {}
        self.sender: asyncio.Task[None] | None = None


class Coalescer(Generic[K, V]):
    """``get_many(keys)`` over a ``fetch(keys) -> {key: value}`` shared by
    concurrent callers; a key absent from the fetch's answer is absent from the
    caller's. A failing fetch raises its exception in every caller of the round.
    """

    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]],
        *,
        name: str,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.fetch = fetch
        self.name = name
        self.max_batch = max(1, max_batch)
        self.rounds = 0  # fetches sent (tests, benchmarks)
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Round[K, V]
        ] = weakref.WeakKeyDictionary()

    async def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _Round()
        futures: dict[K, asyncio.Future[V | None]] = {}
        for key in keys:
            future = state.pending.get(key)
            if future is None:
                future = state.pending[key] = loop.create_future()
            futures[key] = future
        if not futures:
            return {}
        if state.sender is None:
            state.sender = loop.create_task(self._send(state), name=self.name)
        # asyncio.wait, not gather: a caller that is cancelled must not cancel
        # the futures other callers of the round share.
        await asyncio.wait(futures.values())
        found: dict[K, V] = {}
        for key, future in futures.items():
            value = future.result()  # the round's exception, if it failed
            if value is not None:
                found[key] = value
        return found

    async def get(self, key: K) -> V | None:
        return (await self.get_many([key])).get(key)

    async def _send(self, state: _Round[K, V]) -> None:
        try:
            # One pass of the loop first: the callers woken by the same event
            # (a burst of subscribes read in one go) join this round.
            await asyncio.sleep(0)
            while state.pending:
                keys = list(state.pending)[: self.max_batch]
                batch = {key: state.pending.pop(key) for key in keys}
                self.rounds += 1
                try:
                    answer = await self.fetch(keys)
                except Exception as exc:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: callers re-raise it
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(answer.get(key))
        finally:
            state.sender = None
            for future in state.pending.values():  # cancelled while gathering
                if not future.done():
                    future.cancel()
            state.pending.clear()
