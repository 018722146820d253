"""Device topics inside organization namespaces; thresholds."""

from __future__ import annotations

import pytest

from mqtthub.telemetry.routing import DeviceTopic, Route, broadcast_topic, command_topic, parse_device_topic
from mqtthub.telemetry.thresholds import AlertKind, check_reading, effective_thresholds


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("org/ab12cd34/devices/d1/datastream", DeviceTopic(Route.DATASTREAM, "ab12cd34", "d1")),
        ("org/ab12cd34/devices/d1/status", DeviceTopic(Route.STATUS, "ab12cd34", "d1")),
        ("org/ab12cd34/devices/d1/commands/reply", DeviceTopic(Route.COMMAND_REPLY, "ab12cd34", "d1")),
        ("org/ab12cd34/device/d1/telemetry/temp", DeviceTopic(Route.TELEMETRY, "ab12cd34", "d1", "temp")),
        ("org/ab12cd34/device/d1/telemetry/env/air", DeviceTopic(Route.TELEMETRY, "ab12cd34", "d1", "env/air")),
    ],
)
def test_device_topics(topic: str, expected: DeviceTopic) -> None:
    assert parse_device_topic(topic) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "devices/d1/datastream",
        "org/ab12cd34/devices/d1/commands",
        "org/ab12cd34/devices/d1/datastream/x",
        "org/ab12cd34/devices//datastream",
        "org//devices/d1/datastream",
        "org/ab12cd34/device/d1/telemetry",
        "org/ab12cd34/device/d1/telemetry/",
        "org/ab12cd34/organizations/o/broadcast",
        "org/ab12cd34/sensors/x/y",
        "other/ab12cd34/devices/d1/status",
    ],
)
def test_other_topics_are_not_telemetry(topic: str) -> None:
    assert parse_device_topic(topic) is None


def test_outbound_topics() -> None:
    assert command_topic("ab12cd34", "d1") == "org/ab12cd34/devices/d1/commands"
    assert broadcast_topic("ab12cd34", "o1") == "org/ab12cd34/organizations/o1/broadcast"


def test_thresholds() -> None:
    assert check_reading(25, urgent=False, low=20, high=30) is None
    assert check_reading(20, urgent=False, low=20, high=30) is None
    assert check_reading(19.9, urgent=False, low=20, high=30) is AlertKind.BELOW_MIN
    assert check_reading(30.1, urgent=False, low=20, high=30) is AlertKind.ABOVE_MAX
    assert check_reading(25, urgent=True, low=20, high=30) is AlertKind.URGENT
    assert check_reading(None, urgent=False, low=20, high=30) is None
    assert check_reading(None, urgent=True, low=None, high=None) is AlertKind.URGENT
    assert check_reading(1e9, urgent=False, low=None, high=None) is None
    assert effective_thresholds(None, 40, 10, 30) == (10, 40)
    assert effective_thresholds(None, None, None, None) == (None, None)
