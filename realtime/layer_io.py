"""Every reach into channels-redis's internals, in one module, probed once.

channels-redis's public calls pay several Redis round trips per message: ``send``
runs four commands, ``receive`` a clean-up script, a ``BZPOPMIN``, a ``ZADD`` and a
``ZPOPMIN`` (at-least-once bookkeeping for consumers cancelled mid-receive). The
tick path crosses processes in batches instead (docs/scaling.md):

- the feed reads the members of a flush's groups in one pipeline per shard
  (``group_members``) and sends every hub its batch in one script call per shard
  (``send_many``, which does what ``send`` does: drop expired messages, refuse
  past the capacity, add, set the expiry);
- a hub takes up to ``limit`` messages of its channel per round trip: a
  ``BZPOPMIN`` (waiting while the channel is empty) pipelined with a ``ZPOPMIN``
  of the rest (``receive_many``). A message
  popped while the process is being stopped is lost with the process, which is
  what the at-least-once bookkeeping would only have delayed.

A sharded layer loses one shard at a time: group reads and sends go per shard,
so a shard that fails (or that the caller knows is down, ``ShardDown``) leaves
the others' results intact; ``group_add_many`` puts memberships back on a shard
that restarted empty (realtime/feed/publishers.py).

These rely on channels-redis 4.x's storage (requirements.txt pins it): a channel
is a sorted set at ``prefix + non_local_name(channel)`` scored by send time, a
group a sorted set at ``_group_key(group)`` of channel names, shards chosen by
``consistent_hash``. ``probe`` checks every name once; any other layer (the
in-memory one, a channels-redis that moved them) gets None and a log line, and
callers use the public API. tests/realtime/test_layer_io.py is the canary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from channels.exceptions import ChannelFull

logger = logging.getLogger(__name__)

# What the module uses of a channels-redis layer.
REQUIRED = (
    "prefix",
    "expiry",
    "brpop_timeout",
    "non_local_name",
    "consistent_hash",
    "connection",
    "serialize",
    "deserialize",
    "get_capacity",
    "_group_key",
    "group_expiry",
)

# channels-redis's send for many channels at once: KEYS are the channels' keys,
# ARGV their serialized messages, then their capacities, then now and the
# expiry. Returns the (1-based) indexes of the channels that were full.
_SEND_MANY = """
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local expiry = tonumber(ARGV[2 * n + 2])
local full = {}
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        table.insert(full, i)
    end
end
return full
"""


class ShardDown(Exception):
    """Not tried: the shard failed recently and has not answered since."""


class RedisLayerIO:
    """Batched group reads, sends and receives on one channels-redis layer."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._scripts: dict[int, Any] = {}
        self.foreign_dropped = 0

    def shard_of(self, name: str) -> int:
        """The shard (index into the layer's hosts) a group or channel lives on."""
        layer = self.layer
        if "!" in name:
            name = layer.non_local_name(name)
        return layer.consistent_hash(name)

    async def group_members(
        self, groups: Iterable[str], down: Collection[int] = ()
    ) -> tuple[dict[str, list[str]], dict[int, Exception]]:
        """The channels in each group: one pipeline per Redis shard.

        A shard that fails (or is in ``down``, not tried) does not stop the
        others: its groups are left out of the members, and its error is in the
        second mapping, by shard index.
        """
        layer = self.layer
        by_shard: dict[int, list[str]] = {}
        for group in groups:
            by_shard.setdefault(layer.consistent_hash(group), []).append(group)
        members: dict[str, list[str]] = {}
        failed: dict[int, Exception] = {}
        for index, shard_groups in by_shard.items():
            if index in down:
                failed[index] = ShardDown(index)
                continue
            try:
                async with layer.connection(index).pipeline(transaction=False) as pipe:
                    for group in shard_groups:
                        pipe.zrange(layer._group_key(group), 0, -1)
                    results = await pipe.execute()
            except Exception as exc:  # this shard is down: the others still answer
                failed[index] = exc
                continue
            for group, channels in zip(shard_groups, results, strict=True):
                members[group] = [c.decode() for c in channels]
        return members, failed

    async def group_add_many(self, shard: int, pairs: Iterable[tuple[str, str]]) -> int:
        """``group_add`` of each (group, channel) on ``shard``, in one pipeline
        (channels-redis's own: the channel scored by now, the group's expiry
        renewed). Returns how many."""
        layer = self.layer
        now = time.time()
        count = 0
        async with layer.connection(shard).pipeline(transaction=False) as pipe:
            for group, channel in pairs:
                key = layer._group_key(group)
                pipe.zadd(key, {channel: now})
                pipe.expire(key, layer.group_expiry)
                count += 1
            if count:
                await pipe.execute()
        return count

    async def ping(self, shard: int) -> None:
        """Raise unless ``shard`` answers."""
        await self.layer.connection(shard).ping()

    async def send_many(
        self, messages: Mapping[str, Mapping[str, Any]], down: Collection[int] = ()
    ) -> dict[str, Exception | None]:
        """Send each channel its message; per channel None (sent), ``ChannelFull``
        or the Redis error of its shard (``ShardDown`` for a shard in ``down``,
        not tried)."""
        layer = self.layer
        now = time.time()
        by_shard: dict[int, list[tuple[str, bytes, bytes]]] = {}
        for channel, message in messages.items():
            local = layer.non_local_name(channel)
            key = f"{layer.prefix}{local}".encode()
            data = layer.serialize({**message, "__asgi_channel__": channel})
            by_shard.setdefault(layer.consistent_hash(local), []).append(
                (channel, key, data)
            )
        outcome: dict[str, Exception | None] = {}
        for index, sends in by_shard.items():
            if index in down:
                outcome.update((channel, ShardDown(index)) for channel, _, _ in sends)
                continue
            script = self._scripts.get(index)
            if script is None:
                script = layer.connection(index).register_script(_SEND_MANY)
                self._scripts[index] = script
            args: list[Any] = [data for _, _, data in sends]
            args += [layer.get_capacity(channel) for channel, _, _ in sends]
            args += [now, int(layer.expiry)]
            try:
                full = await script(keys=[key for _, key, _ in sends], args=args)
            except Exception as exc:  # Redis restarting: this shard's sends failed
                outcome.update((channel, exc) for channel, _, _ in sends)
                continue
            refused = {int(i) - 1 for i in full}
            for i, (channel, _, _) in enumerate(sends):
                outcome[channel] = ChannelFull() if i in refused else None
        return outcome

    async def receive_many(self, channel: str, limit: int = 256) -> list[dict]:
        """Up to ``limit`` messages of ``channel`` (a ``new_channel()`` name), oldest
        first; waits while there are none (up to the layer's ``brpop_timeout``,
        then returns an empty list)."""
        layer = self.layer
        local = layer.non_local_name(channel)
        key = layer.prefix + local
        connection = layer.connection(layer.consistent_hash(local))
        # One round trip: Redis runs the ZPOPMIN right after the BZPOPMIN returns
        # (a blocked client's next commands wait behind it), so whatever came
        # with or after the first message is taken in the same call.
        async with connection.pipeline(transaction=False) as pipe:
            pipe.bzpopmin(key, timeout=layer.brpop_timeout)
            pipe.zpopmin(key, limit - 1)
            first, rest = await pipe.execute()
        if first is None:
            return []
        popped = [(first[1], first[2]), *rest]
        messages = []
        for data, _ in popped:
            message = layer.deserialize(data)
            # A group send names every channel of the key that it is for.
            target = message.pop("__asgi_channel__", channel)
            if target != channel and not (
                isinstance(target, list) and channel in target
            ):
                # Another channel of this process: only the hub reads the layer
                # here (consumers have none), so this is a stray; say so once.
                if not self.foreign_dropped:
                    logger.warning("event=layer_foreign_message channel=%s", target)
                self.foreign_dropped += 1
                continue
            messages.append(message)
        return messages


def probe(layer: Any) -> RedisLayerIO | None:
    """A ``RedisLayerIO`` for ``layer``, or None when it lacks anything used here."""
    if layer is None:
        return None
    missing = [name for name in REQUIRED if not hasattr(layer, name)]
    if missing:
        if type(layer).__module__.startswith("channels_redis"):
            logger.warning(
                "event=layer_io_unavailable layer=%s missing=%s "
                "fallback=public_api (one Redis round trip per message)",
                type(layer).__name__,
                ",".join(missing),
            )
        return None
    return RedisLayerIO(layer)
