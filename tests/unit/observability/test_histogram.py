from __future__ import annotations

import pytest

from mqtthub.observability.histogram import Histogram


def test_buckets_are_cumulative_and_inclusive() -> None:
    histogram = Histogram((1, 10))
    for observed in (0.5, 1, 1.5, 10, 11):
        histogram.observe(observed)
    assert histogram.buckets() == [("1.0", 2), ("10.0", 4), ("+Inf", 5)]
    assert histogram.count == 5
    assert histogram.sum == pytest.approx(24.0)


@pytest.mark.parametrize("bounds", [(), (2, 1), (1, 1)])
def test_bounds_must_increase(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram(bounds)
