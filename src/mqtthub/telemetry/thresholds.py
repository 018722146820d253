"""Threshold and urgency checks: which readings raise an alert."""

from __future__ import annotations

import enum


class AlertKind(enum.StrEnum):
    """Why an alert was raised."""

    URGENT = "urgent"
    """The device flagged the reading ``urgent: true``."""
    BELOW_MIN = "below_min"
    """The value is below the minimum threshold in force."""
    ABOVE_MAX = "above_max"
    """The value is above the maximum threshold in force."""


def effective_thresholds(
    message_min: float | None,
    message_max: float | None,
    default_min: float | None,
    default_max: float | None,
) -> tuple[float | None, float | None]:
    """Thresholds in force: the message's own override the definition's defaults, bound by bound."""
    return (
        message_min if message_min is not None else default_min,
        message_max if message_max is not None else default_max,
    )


def check_reading(value: float | None, *, urgent: bool, low: float | None, high: float | None) -> AlertKind | None:
    """The alert a reading raises, or None. A non-numeric value is checked for urgency only.

    Bounds are inclusive: a value equal to ``min`` or ``max`` is within thresholds.
    """
    if value is not None:
        if low is not None and value < low:
            return AlertKind.BELOW_MIN
        if high is not None and value > high:
            return AlertKind.ABOVE_MAX
    return AlertKind.URGENT if urgent else None
