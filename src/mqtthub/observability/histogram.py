"""A histogram kept in plain integers, exported as a Prometheus histogram on scrape.

Observing is one ``bisect`` and two additions, with no lock and no library call, so it can sit
on a hot path (one observation per batch or per request, never per MQTT message).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency buckets in seconds (1 ms to 10 s)."""


class Histogram:
    """Counts of observations per bucket (upper bounds inclusive, like Prometheus ``le``) and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bucket bounds must be strictly increasing and not empty")
        self.bounds = tuple(float(bound) for bound in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """One count per bound, then the observations above the last bound."""
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs ending with ``+Inf``, as Prometheus exposes them."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return pairs
