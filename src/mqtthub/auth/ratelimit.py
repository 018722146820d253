"""An in-memory sliding-window limiter, used for login attempts and failed MQTT authentications.

Each key (an account, an address) keeps the times of its recent events; an event is
allowed while fewer than ``limit`` fall within the last ``window`` seconds. Memory is
bounded: at most ``max_keys`` keys are tracked, the least recently used dropped first.
The clock is a constructor parameter so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Counts events per key over a sliding window of ``window`` seconds."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = deque()
            self._events[key] = events
            while len(self._events) > self._max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        horizon = now - self.window
        while events and events[0] <= horizon:
            events.popleft()
        return events

    def count(self, key: str) -> int:
        """Events of ``key`` within the window."""
        return len(self._recent(key, self._clock()))

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may have another event (0 when it may now)."""
        now = self._clock()
        events = self._recent(key, now)
        if len(events) < self.limit:
            return 0.0
        return max(0.0, events[len(events) - self.limit] + self.window - now)

    def hit(self, key: str) -> None:
        """Record an event of ``key`` now."""
        now = self._clock()
        self._recent(key, now).append(now)

    def reset(self, key: str) -> None:
        """Forget every event of ``key``."""
        self._events.pop(key, None)
