"""The house's token bucket: bursts up to capacity, then the sustained rate."""

from __future__ import annotations

from realtime.ratelimit import TokenBucket


def test_a_full_bucket_passes_a_burst_then_refills_at_its_rate_up_to_capacity():
    now = [0.0]
    bucket = TokenBucket(rate=2.0, capacity=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] = 100.0  # refilled, but never past capacity
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_per_minute_budget_spends_its_minute_at_once_and_refills_slowly():
    now = [50.0]
    bucket = TokenBucket(rate=60 / 60.0, capacity=60, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(100)) == 60
    now[0] += 1.0
    assert [bucket.take(), bucket.take()] == [True, False]
