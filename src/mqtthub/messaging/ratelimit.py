"""A token bucket per caller for the messaging API.

Each key gets ``burst`` tokens, refilled at ``rate`` per second; a request takes one.
Memory is bounded: at most ``max_keys`` buckets are kept, the least recently used dropped
first (a dropped bucket comes back full, which only errs towards allowing). The clock is a
constructor parameter so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucketLimiter:
    """Allows ``rate`` requests per second per key, with bursts of up to ``burst``; ``rate`` 0 allows all."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        if self.rate == 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            retry_after = 0.0
        else:
            self._buckets[key] = (tokens, now)
            retry_after = (1.0 - tokens) / self.rate
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return retry_after
