"""The condition language: what it accepts, what it refuses, how it evaluates."""

from __future__ import annotations

from typing import Any

import pytest

from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.conditions import Condition

EVENT: dict[str, Any] = {"payment": {"status": "pending", "amount": 12.5}, "sendEmail": True, "tags": ["a", "b"]}
CONTEXT: dict[str, Any] = {**EVENT, "event": EVENT, "topic": "t/1"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("payment.status == 'pending'", True),
        ("payment.status == 'paid'", False),
        ("event.sendEmail == true", True),
        ("event.sendEmail == True and payment.amount > 10", True),
        ("payment.amount >= 20 or topic == 't/1'", True),
        ("not event.sendEmail", False),
        ("'a' in tags", True),
        ("payment.status in ['paid', 'refunded']", False),
        ("payment.status not in ['paid']", True),
        ("missing.field == null", True),
        ("missing.field > 3", False),
        ("payment.status < 3", False),
        ("1 < payment.amount < 20", True),
        ("payment.status != 'pending'", False),
    ],
)
def test_evaluates(source: str, expected: bool) -> None:
    assert Condition(source).evaluate(CONTEXT) is expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('true')",
        "payment.status.upper() == 'PENDING'",
        "payment['status'] == 'pending'",
        "payment.__class__ == 1",
        "1 + 1 == 2",
        "-payment.amount < 0",
        "[x for x in tags]",
        "lambda: 1",
        "payment.status ==",
        "x := 1",
        "a" * 1001,
    ],
)
def test_refuses(source: str) -> None:
    with pytest.raises(ValidationFailedError, match="condition"):
        Condition(source)
