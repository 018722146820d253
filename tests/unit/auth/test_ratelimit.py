"""The sliding-window limiter, driven by a fake clock."""

from __future__ import annotations

import pytest

from mqtthub.auth.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_up_to_the_limit_then_names_the_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.hit("a")
        clock.now += 10
    assert limiter.retry_after("a") == pytest.approx(30)
    assert limiter.retry_after("b") == 0
    clock.now += 30
    assert limiter.retry_after("a") == 0
    assert limiter.count("a") == 2


def test_reset_forgets_a_key() -> None:
    limiter = SlidingWindowLimiter(1, 60, clock=Clock())
    limiter.hit("a")
    assert limiter.retry_after("a") > 0
    limiter.reset("a")
    assert limiter.retry_after("a") == 0


def test_tracks_a_bounded_number_of_keys() -> None:
    limiter = SlidingWindowLimiter(1, 60, max_keys=2, clock=Clock())
    for key in ("a", "b", "c"):
        limiter.hit(key)
    assert limiter.count("a") == 0
    assert limiter.count("c") == 1


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(0, 60)
