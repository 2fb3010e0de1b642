"""The per-stream rate limiter forgets idle streams (their buckets are full again)."""

from __future__ import annotations

import pytest

from kms.errors import LimitExceeded
from kms.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_idle_full_buckets_are_evicted_and_busy_ones_kept():
    clock = Clock()
    rl = RateLimiter(100, 100, sweep_interval_s=10, clock=clock)
    for i in range(1000):  # streams that come and go
        rl.take(f"stream-{i}", 60)
    assert len(rl) == 1000
    clock.now = 0.5  # before the sweep interval nothing is dropped
    rl.take("busy", 100)
    assert len(rl) == 1001
    clock.now = 10.0  # 100 B/s for 9.5 s or more refills every bucket
    rl.take("busy", 1)  # sweeps first: every bucket is full, so only the one this take makes is left
    assert len(rl) == 1
    with pytest.raises(LimitExceeded):  # the kept bucket still limits
        rl.take("busy", 100)


def test_a_partly_drained_bucket_survives_the_sweep():
    clock = Clock()
    rl = RateLimiter(10, 100, sweep_interval_s=1, clock=clock)
    rl.take("a", 100)
    rl.take("b", 1)
    clock.now = 2.0  # a: 20 of 100 tokens back; b: full
    rl.take("c", 1)
    assert len(rl) == 2  # a and c
    with pytest.raises(LimitExceeded):
        rl.take("a", 50)  # eviction did not reset a's debt
