"""Reason codes and the 5.0 → 3.1.1 CONNACK mapping."""

from __future__ import annotations

import pytest

from mqtthub.mqtt import ConnackReturnCode, ReasonCode, connack_code_for


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SUCCESS", 0x00),
        ("NORMAL_DISCONNECTION", 0x00),
        ("GRANTED_QOS_0", 0x00),
        ("GRANTED_QOS_2", 0x02),
        ("NO_MATCHING_SUBSCRIBERS", 0x10),
        ("MALFORMED_PACKET", 0x81),
        ("BAD_USER_NAME_OR_PASSWORD", 0x86),
        ("NOT_AUTHORIZED", 0x87),
        ("SERVER_SHUTTING_DOWN", 0x8B),
        ("KEEP_ALIVE_TIMEOUT", 0x8D),
        ("SESSION_TAKEN_OVER", 0x8E),
        ("QUOTA_EXCEEDED", 0x97),
        ("ADMINISTRATIVE_ACTION", 0x98),
        ("PAYLOAD_FORMAT_INVALID", 0x99),
        ("WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED", 0xA2),
    ],
)
def test_values_from_the_spec(name: str, value: int) -> None:
    assert ReasonCode[name].value == value


def test_every_code_is_there() -> None:
    assert len({code.value for code in ReasonCode}) == 43
    assert [code.value for code in ConnackReturnCode] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("reason_code", "expected"),
    [
        (0x00, 0),
        (0x84, 1),
        (0x85, 2),
        (0x88, 3),
        (0x89, 3),
        (0x8A, 3),
        (0x97, 3),
        (0x9C, 3),
        (0x80, 3),
        (0x86, 4),
        (0x87, 5),
        (0x8C, 5),
    ],
)
def test_v311_mapping(reason_code: int, expected: int) -> None:
    assert connack_code_for(reason_code, 4) == expected
    assert connack_code_for(reason_code, 3) == expected


@pytest.mark.parametrize("reason_code", [0x00, 0x86, 0x87, 0x9F])
def test_v5_is_unchanged(reason_code: int) -> None:
    assert connack_code_for(reason_code, 5) == reason_code
