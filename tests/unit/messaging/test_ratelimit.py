"""The per-caller token bucket, on a hand-driven clock."""

from __future__ import annotations

import pytest

from mqtthub.messaging.ratelimit import TokenBucketLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_steady_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_refill_is_capped_at_burst() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(1.0, 2, clock=clock)
    clock.now += 1000
    assert [limiter.acquire("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_zero_rate_disables_limiting() -> None:
    limiter = TokenBucketLimiter(0.0, 1)
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


def test_memory_is_bounded() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(1.0, 1, max_keys=10, clock=clock)
    for index in range(100):
        limiter.acquire(f"k{index}")
    assert len(limiter._buckets) == 10
    assert limiter.acquire("k99") > 0  # recent keys are kept


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucketLimiter(-1, 1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucketLimiter(1, 0)
