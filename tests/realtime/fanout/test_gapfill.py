"""A hub fills a forward jump in ``seq`` from the shared history itself
(realtime/fanout/gapfill.py, docs/protocol.md "Gaps").

The history is the real Redis one the feed writes; the layer's losses are made
by handing the hub only some of what was written, as a full channel would.
"""

from __future__ import annotations

import orjson
import pytest
import redis

from realtime.events import Update
from realtime.fanout.gapfill import GapFiller
from realtime.fanout.hubs import close_hub, get_hub
from realtime.fanout.recovery import SequenceGuard
from realtime.feed.history import RedisHistory
from tests.factories import update
from tests.live import REDIS_URL, async_wait_until
from tests.realtime.fanout.test_hub import collecting_outbox

pytestmark = pytest.mark.redis


@pytest.fixture
async def history(redis_prefix):
    made = RedisHistory(REDIS_URL, redis_prefix, size=100, seconds=600)
    await made.start()
    yield made
    await made.aclose()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)


async def written(history: RedisHistory, symbol: str, count: int) -> list[Update]:
    """``count`` updates of ``symbol`` written to the history, as the feed does."""
    batch = []
    for _ in range(count):
        seq = history.next_seq(symbol)
        text = orjson.dumps(
            {"type": "price_update", "symbol": symbol, "seq": seq, "timestamp": 1}
        ).decode()
        batch.append(update(symbol, text, 1, seq=seq, epoch=history.epoch))
    await history.write(batch)
    return batch


def seen(sent: list[str]) -> list[tuple[str, int, bool]]:
    return [
        (m["symbol"], m["seq"], m.get("recovered", False))
        for m in map(orjson.loads, sent)
    ]


@pytest.fixture
async def hub(history):
    made = get_hub()
    made.sequence = SequenceGuard(GapFiller(history, made.deliver, max_gap=50))
    yield made
    await close_hub()


async def test_lost_layer_messages_reach_the_client_in_order_from_history(hub, history):
    outbox, sent = collecting_outbox()
    hub.attach(outbox)
    await hub.subscribe(outbox, ["GAPA", "GAPB"])
    a = await written(history, "GAPA", 12)
    b = await written(history, "GAPB", 3)
    # The layer lost 3-4 and 8-10 of GAPA; GAPB flows untouched meanwhile.
    for item in [a[0], a[1], b[0], a[4], b[1], a[5], a[6], a[10], b[2], a[11]]:
        hub.deliver(item)
    await async_wait_until(lambda: len(sent) == 15, 60, "all fifteen updates")
    got = seen(sent)
    assert [(s, q) for s, q, _ in got if s == "GAPA"] == [
        ("GAPA", n) for n in range(1, 13)
    ], "every seq once, in order"
    assert [q for s, q, r in got if s == "GAPA" and r] == [3, 4, 8, 9, 10]
    assert [q for s, q, _ in got if s == "GAPB"] == [1, 2, 3]
    assert not hub.sequence.gaps.filling


async def test_updates_arriving_during_a_fill_wait_behind_it(hub, history):
    outbox, sent = collecting_outbox()
    hub.attach(outbox)
    await hub.subscribe(outbox, ["GAPC"])
    c = await written(history, "GAPC", 8)
    hub.deliver(c[0])
    hub.deliver(c[3])  # the jump: a fill starts reading Redis
    hub.deliver(c[4])  # in the same turn, before the read answers
    hub.deliver(c[6])  # and a second jump among the waiting ones
    hub.deliver(c[7])
    await async_wait_until(lambda: len(sent) == 8, 60, "all eight updates")
    assert [q for _, q, _ in seen(sent)] == list(range(1, 9))


async def test_a_takeover_replay_during_a_fill_is_not_sent_twice(hub, history):
    outbox, sent = collecting_outbox()
    hub.attach(outbox)
    await hub.subscribe(outbox, ["GAPD"])
    d = await written(history, "GAPD", 6)
    hub.deliver(d[0])
    hub.deliver(d[4])  # jump: 2-4 missing, a fill starts
    for item in d[1:]:  # a new leader re-publishes the tail meanwhile
        hub.deliver(item._replace(replayed=True))
    await async_wait_until(lambda: len(sent) == 6, 60, "six updates")
    assert [q for _, q, _ in seen(sent)] == list(range(1, 7))


async def test_a_gap_wider_than_the_bound_is_left_to_the_client(hub, history):
    outbox, sent = collecting_outbox()
    hub.attach(outbox)
    await hub.subscribe(outbox, ["GAPE"])
    e = await written(history, "GAPE", 60)
    hub.deliver(e[0])
    hub.deliver(e[59])  # 58 missing > max_gap 50
    await async_wait_until(lambda: len(sent) == 2, 60, "both updates")
    assert [(q, r) for _, q, r in seen(sent)] == [(1, False), (60, False)]
    assert not hub.sequence.gaps.filling


async def test_what_the_history_lacks_is_left_as_a_gap(hub, history):
    outbox, sent = collecting_outbox()
    hub.attach(outbox)
    await hub.subscribe(outbox, ["GAPF"])
    f = await written(history, "GAPF", 3)
    hub.deliver(f[0])

    # 4 and 5 were published but never written (a history write that timed
    # out): the hub fills 2-3, then delivers 5 once, leaving 4 as a gap.
    def numbered(seq: int) -> Update:
        return f[0]._replace(seq=seq, text=f[0].text.replace('"seq":1', f'"seq":{seq}'))

    hub.deliver(numbered(5))
    hub.deliver(numbered(6))
    await async_wait_until(lambda: len(sent) == 5, 60, "five updates")
    assert [(q, r) for _, q, r in seen(sent)] == [
        (1, False),
        (2, True),
        (3, True),
        (5, False),
        (6, False),
    ]
    assert not hub.sequence.gaps.filling
