"""Sequence numbers and bounded per-symbol history (docs/protocol.md, "Extension,
sequence numbers, history and recovery").

The feed numbers each symbol's published updates (``seq`` grows by exactly 1 per
update) inside an **epoch**, a short random name of the sequence space, and keeps
each symbol's recent update texts so a client that reconnects can be sent what it
missed. One history write per tick, in the feed, never per client.

This module is storage only: the broker (realtime/feed/broker.py) decides when an
update is recorded and when it is handed to the fan-out.

Embedded mode: ``InMemoryHistory``, a ring per symbol in the process (count
``REALTIME_HISTORY_SIZE``, age ``REALTIME_HISTORY_SECONDS``); a restart is a new
epoch.

Scaled mode: ``RedisHistory``. The epoch, the per-symbol counters and one stream
per symbol live in Redis under ``REALTIME_CACHE_PREFIX``, so the standby feed that
takes over after a failover loads them and continues the sequence in the same
epoch; the epoch changes only when Redis lost it. A batch of updates is written in
one script call (a script, not a pipeline, because the client's cost is per
command: packing thousands of XADDs a second was a quarter of the feed worker's
CPU).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
import redis

from realtime.events import Update
from realtime.feed.lock import Fence
from realtime.stores import RedisClients

logger = logging.getLogger(__name__)

# Redis history writes that wait longer than this are failed, and the batch is
# published anyway: live prices never wait on a hung Redis.
REDIS_TIMEOUT = 2.0
SWEEP_INTERVAL = 30.0

# One batch of the feed's writes, atomic (a reader never sees the streams and the
# counters apart). KEYS: the epoch key, the counters' hash, the leader lock's
# fence counter, then one stream per symbol of the batch. ARGV: epoch, size, min
# id, ttl ms, n, the writer's fence token ("" when unfenced), then n triplets
# (index of the stream in KEYS, seq, text), then the symbols of KEYS[4..].
# Returns -1, writing nothing, when the fence counter is not the writer's token
# (a newer leader acquired the lock: realtime/feed/lock.py).
# The epoch is always set (only the leader writes): a Redis that was flushed
# meanwhile gets the current epoch back, and readers follow the writer. Returns 0
# when the epoch key was missing or another (Redis lost it): the caller then
# writes back every counter, not only this batch's.
_WRITE_BATCH = """
if ARGV[6] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[6] then return -1 end
local kept = redis.call('GET', KEYS[1]) == ARGV[1]
redis.call('SET', KEYS[1], ARGV[1])
local size, minid, ttl, n = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local last = {}
local i = 7
for _ = 1, n do
    local k = tonumber(ARGV[i])
    redis.call('XADD', KEYS[k], 'MAXLEN', size, '*', 's', ARGV[i + 1], 'd', ARGV[i + 2])
    last[k] = ARGV[i + 1]
    i = i + 3
end
for k = 4, #KEYS do
    redis.call('XTRIM', KEYS[k], 'MINID', minid)
    redis.call('PEXPIRE', KEYS[k], ttl)
    redis.call('HSET', KEYS[2], ARGV[i + k - 4], last[k])
end
if kept then return 1 end
return 0
"""

# A symbol's page in one call: the epoch, its last seq and its stream.
# KEYS: the epoch key; ARGV: the key prefix, the symbol.
_READ = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return false end
local base = ARGV[1] .. ':history:' .. epoch
local last = redis.call('HGET', base .. ':seq', ARGV[2])
return {epoch, last, redis.call('XRANGE', base .. ':s:' .. ARGV[2], '-', '+')}
"""


# One symbol's stream for a takeover (``RedisHistory.recent``), as a flat list:
# its length, the text of the newest entry before ARGV[1] ("" when none), then
# the texts from ARGV[1] on. Flat, because parsing XRANGE's nested entries was
# most of a takeover's read time. KEYS: the stream; ARGV: since ms, since - 1.
# Entries are written as {s, seq, d, text} (_WRITE_BATCH): the text is field 4.
_RECENT = """
local out = {redis.call('XLEN', KEYS[1]), ''}
local before = redis.call('XREVRANGE', KEYS[1], ARGV[2], '-', 'COUNT', 1)
if before[1] then out[2] = before[1][2][4] end
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+')) do
    out[#out + 1] = entry[2][4]
end
return out
"""


class Fenced(Exception):
    """A history write refused: a newer feed leader holds the lock (its fence
    token replaced this writer's). Not a ``RedisError``: the batch must not be
    published, and this leader must step down."""


def new_epoch() -> str:
    """A short random name for a new sequence space (8 url-safe characters)."""
    return secrets.token_urlsafe(6)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """What a read found: ``updates`` are ``(seq, text)``, oldest first."""

    symbol: str
    epoch: str
    updates: list[tuple[int, str]]
    last_seq: int  # the symbol's newest published seq (0: none yet)

    def recovers(self, epoch: object, seq: int) -> bool:
        """True when this page is exactly what a client at (epoch, seq) missed:
        same epoch, nothing in the future, and every seq after ``seq`` present."""
        if epoch != self.epoch or seq > self.last_seq:
            return False
        expected = seq + 1
        for got, _ in self.updates:
            if got != expected:
                return False
            expected += 1
        return expected == self.last_seq + 1


@dataclass(frozen=True, slots=True)
class RecentUpdates:
    """One symbol's recent update texts (oldest first), the newest one written
    before them (``earlier``, None when there is none) and the stream's length
    against its cap: a stream shorter than its cap lost entries only by age."""

    texts: list[str]
    earlier: str | None
    length: int
    size: int
    seconds: float  # the history's age bound


class History(Protocol):
    size: int
    seconds: float
    epoch: str

    def next_seq(self, symbol: str) -> int: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def aepoch(self) -> str | None: ...
    async def aread(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None: ...
    async def aread_many(
        self, wanted: Sequence[tuple[str, int | None, int]]
    ) -> dict[tuple[str, int | None, int], HistoryPage | None]: ...
    def read(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None: ...
    def clear(self) -> None: ...


def _select(
    entries: list[tuple[int, str]], after_seq: int | None, limit: int
) -> list[tuple[int, str]]:
    """The first ``limit`` entries after ``after_seq``; the last ``limit`` without."""
    if after_seq is None:
        return entries[-limit:] if limit > 0 else []
    return [e for e in entries if e[0] > after_seq][:limit]


class InMemoryHistory:
    """Embedded mode: one bounded deque of ``(seq, monotonic time, text)`` per symbol.

    The feed and the consumers share the event loop, so a consumer that registers
    for live updates and then reads the ring (without awaiting in between) can
    never miss or repeat an update.
    """

    def __init__(
        self, size: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.seconds = seconds
        self.clock = clock
        self.epoch = new_epoch()
        self._seq: dict[str, int] = {}
        self._rings: dict[str, deque[tuple[int, float, str]]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def next_seq(self, symbol: str) -> int:
        seq = self._seq.get(symbol, 0) + 1
        self._seq[symbol] = seq
        return seq

    def record(self, update: Update) -> None:
        symbol = update.symbol
        ring = self._rings.get(symbol)
        if ring is None:
            ring = self._rings[symbol] = deque(maxlen=self.size)
        now = self.clock()
        ring.append((update.seq, now, update.text))
        cutoff = now - self.seconds
        while ring[0][1] < cutoff:
            ring.popleft()

    def sweep(self) -> int:
        """Drop entries past the age bound (and empty rings); returns how many."""
        cutoff = self.clock() - self.seconds
        dropped = 0
        for symbol in list(self._rings):
            ring = self._rings[symbol]
            while ring and ring[0][1] < cutoff:
                ring.popleft()
                dropped += 1
            if not ring:
                del self._rings[symbol]
        return dropped

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(min(SWEEP_INTERVAL, max(self.seconds, 0.1)))
            self.sweep()

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="history")

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def aepoch(self) -> str | None:
        return self.epoch

    async def aread(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None:
        return self.read(symbol, after_seq, limit)

    async def aread_many(
        self, wanted: Sequence[tuple[str, int | None, int]]
    ) -> dict[tuple[str, int | None, int], HistoryPage | None]:
        return {key: self.read(*key) for key in wanted}

    def read(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None:
        last = self._seq.get(symbol)
        if last is None:
            return None
        ring = self._rings.get(symbol)
        # list() of a deque runs in C under the GIL: safe from a view's thread.
        items = list(ring) if ring is not None else []
        cutoff = self.clock() - self.seconds
        entries = [(seq, text) for seq, at, text in items if at >= cutoff]
        return HistoryPage(symbol, self.epoch, _select(entries, after_seq, limit), last)

    def clear(self) -> None:
        self._seq.clear()
        self._rings.clear()


class RedisHistory:
    """Scaled mode: the epoch, counters and streams in Redis.

    Keys (``P`` = ``REALTIME_CACHE_PREFIX``): ``P:history:epoch`` (string),
    ``P:history:<epoch>:seq`` (hash symbol -> last seq) and
    ``P:history:<epoch>:s:<symbol>`` (stream of ``{s: seq, d: text}``, capped at
    ``size`` entries, trimmed by age on every write and expiring when idle).
    Putting the epoch in the key names means a new epoch never mixes with the
    streams of an old one.
    """

    def __init__(self, url: str, prefix: str, size: int, seconds: float) -> None:
        self.url = url
        self.prefix = prefix
        self.size = size
        self.seconds = seconds
        self.epoch_key = f"{prefix}:history:epoch"
        self.epoch = ""
        self._seq: dict[str, int] = {}
        self._redis = RedisClients(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=2.0
        )
        self.batches_written = 0
        # The leadership's fencing token, set by the broker's owner (None: every
        # write goes through; tests and tools that write without a lock).
        self.fence: Fence | None = None

    def _seq_key(self, epoch: str) -> str:
        return f"{self.prefix}:history:{epoch}:seq"

    def _stream_key(self, epoch: str, symbol: str) -> str:
        return f"{self.prefix}:history:{epoch}:s:{symbol}"

    # --- writer side (the feed leader) -----------------------------------------------
    def next_seq(self, symbol: str) -> int:
        seq = self._seq.get(symbol, 0) + 1
        self._seq[symbol] = seq
        return seq

    async def start(self) -> None:
        """Continue the sequence held in Redis, or start a new epoch if it is lost."""
        try:
            await self._load()
        except (redis.RedisError, OSError) as exc:
            # No way to continue the old sequence: a fresh one, written (and made
            # the current epoch) by the first batch once Redis answers.
            self.epoch, self._seq = new_epoch(), {}
            logger.warning(
                "event=history_load_failed epoch=%s error=%r", self.epoch, exc
            )

    async def _load(self) -> None:
        client = self._redis.aio
        raw = await client.get(self.epoch_key)
        if raw is None:
            candidate = new_epoch()
            if await client.set(self.epoch_key, candidate, nx=True):
                self.epoch, self._seq = candidate, {}
                logger.info("event=history_epoch_new epoch=%s", candidate)
                return
            raw = await client.get(self.epoch_key)
        self.epoch = raw.decode() if isinstance(raw, bytes) else str(raw)
        counters = await client.hgetall(self._seq_key(self.epoch))
        self._seq = {k.decode(): int(v) for k, v in counters.items()}
        logger.info(
            "event=history_continued epoch=%s symbols=%d", self.epoch, len(self._seq)
        )

    async def tail(self, count: int) -> list[Update]:
        """Each symbol's last ``count`` written updates, oldest first, marked
        ``replayed``: what a new leader re-publishes at takeover (broker.py)."""
        if not self._seq:
            return []
        pipe = self._redis.aio.pipeline(transaction=False)
        symbols = sorted(self._seq)
        for symbol in symbols:
            pipe.xrevrange(self._stream_key(self.epoch, symbol), count=count)
        updates: list[Update] = []
        for symbol, entries in zip(symbols, await pipe.execute(), strict=True):
            for _, fields in reversed(entries):
                text = fields[b"d"].decode()
                try:
                    seq = int(fields[b"s"])
                    tick_ts = int(orjson.loads(text).get("timestamp") or 0)
                except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                    continue  # not an update this feed wrote
                updates.append(Update(symbol, seq, self.epoch, text, tick_ts, True))
        return updates

    async def recent(self, since_ms: int) -> dict[str, RecentUpdates]:
        """Every symbol's updates written at or after ``since_ms`` (wall ms),
        oldest first, with what tells a reader whether the stream still holds
        everything from a given time on (``RecentUpdates``): what a new feed
        leader rebuilds its open bars from (realtime/bars/takeover.py)."""
        client = self._redis.aio
        raw = await client.get(self.epoch_key)
        if raw is None:
            return {}
        epoch = raw.decode()
        symbols = sorted(k.decode() for k in await client.hkeys(self._seq_key(epoch)))
        if not symbols:
            return {}
        pipe = client.pipeline(transaction=False)
        before = str(max(0, since_ms - 1))
        for symbol in symbols:
            pipe.eval(_RECENT, 1, self._stream_key(epoch, symbol), since_ms, before)
        out: dict[str, RecentUpdates] = {}
        for symbol, answer in zip(symbols, await pipe.execute(), strict=True):
            if len(answer) < 3:
                continue
            length, earlier, *texts = answer
            out[symbol] = RecentUpdates(
                [t.decode() for t in texts],
                earlier.decode() or None,
                int(length),
                self.size,
                self.seconds,
            )
        return out

    async def write(self, batch: list[Update]) -> None:
        """Write ``batch`` in one script call (raises what Redis raises, and
        ``Fenced`` when a newer leader holds the lock)."""
        if batch:
            await self._write(batch)
            self.batches_written += 1

    async def _write(self, batch: list[Update]) -> None:
        epoch = self.epoch
        fence = self.fence
        fence_key = fence.key if fence is not None else f"{self.prefix}:history:nofence"
        keys = [self.epoch_key, self._seq_key(epoch), fence_key]
        index: dict[str, int] = {}
        args: list[str | int] = []
        for symbol, seq, _, text, *_ in batch:
            k = index.get(symbol)
            if k is None:
                keys.append(self._stream_key(epoch, symbol))
                k = index[symbol] = len(keys)  # 1-based in Lua
            args += (k, seq, text)
        min_id = max(0, int((time.time() - self.seconds) * 1000))
        ttl_ms = int((self.seconds + 60) * 1000)
        token = fence.token if fence is not None else ""
        head: list[str | int] = [epoch, self.size, min_id, ttl_ms, len(batch), token]
        client = self._redis.aio
        kept = await client.eval(_WRITE_BATCH, len(keys), *keys, *head, *args, *index)
        if kept == -1:
            raise Fenced(f"fence {token} replaced at {fence_key}")
        if not kept:
            # Redis lost the epoch (flushed, restarted empty): put every counter
            # back, or a standby taking over later would restart the symbols this
            # batch did not touch at seq 1 inside the same epoch.
            await client.hset(self._seq_key(epoch), mapping=self._seq)
            logger.warning(
                "event=history_epoch_restored epoch=%s symbols=%d",
                epoch,
                len(self._seq),
            )

    async def aclose(self) -> None:
        await self._redis.aclose()

    # --- reader side (any process) ----------------------------------------------------
    async def aepoch(self) -> str | None:
        """The current epoch; one is created if none exists yet (a client that
        subscribes before the feed's first start still gets one to recover in:
        the feed continues it)."""
        client = self._redis.aio
        raw = await client.get(self.epoch_key)
        if raw is None:
            await client.set(self.epoch_key, new_epoch(), nx=True)
            raw = await client.get(self.epoch_key)
        return raw.decode() if raw is not None else None

    async def aread(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None:
        raw = await self._redis.aio.eval(_READ, 1, self.epoch_key, self.prefix, symbol)
        return self._page(symbol, raw, after_seq, limit)

    async def aread_many(
        self, wanted: Sequence[tuple[str, int | None, int]]
    ) -> dict[tuple[str, int | None, int], HistoryPage | None]:
        """Many ``aread`` in one pipeline (one pooled connection, one round trip):
        the subscribes of a reconnect storm recover together
        (realtime/fanout/subscribe_reads.py)."""
        keys = list(wanted)
        if not keys:
            return {}
        pipe = self._redis.aio.pipeline(transaction=False)
        for symbol, _, _ in keys:
            pipe.eval(_READ, 1, self.epoch_key, self.prefix, symbol)
        raws = await pipe.execute()
        return {
            key: self._page(key[0], raw, key[1], key[2])
            for key, raw in zip(keys, raws, strict=True)
        }

    def read(
        self, symbol: str, after_seq: int | None, limit: int
    ) -> HistoryPage | None:
        raw = self._redis.sync.eval(_READ, 1, self.epoch_key, self.prefix, symbol)
        return self._page(symbol, raw, after_seq, limit)

    def _page(
        self, symbol: str, raw: list | None, after_seq: int | None, limit: int
    ) -> HistoryPage | None:
        """``raw``: ``_READ``'s answer, entries as ``[id, [field, value, ...]]``."""
        if not raw or raw[1] is None:
            return None
        epoch, last, entries = raw
        cutoff_ms = (time.time() - self.seconds) * 1000
        kept = []
        for entry_id, flat in entries:
            if int(entry_id.split(b"-", 1)[0]) >= cutoff_ms:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                kept.append((int(fields[b"s"]), fields[b"d"].decode()))
        newest = max(int(last), kept[-1][0] if kept else 0)
        epoch_name = epoch.decode()
        return HistoryPage(symbol, epoch_name, _select(kept, after_seq, limit), newest)

    def clear(self) -> None:
        self._seq.clear()
