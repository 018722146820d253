"""Topic names, filters, shared subscriptions and matching [MQTT-4.7] [MQTT-4.8.2]."""

from __future__ import annotations

import pytest

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt import parse_shared, topic_matches, validate_topic_filter, validate_topic_name


@pytest.mark.parametrize(
    "topic",
    ["a", "a/b", "/", "a//b", "$SYS/broker/uptime", " ", "\u00fc/\U0001f600", "a" * 65535],
    ids=lambda topic: f"{topic[:20]}({len(topic)})",
)
def test_valid_names(topic: str) -> None:
    validate_topic_name(topic)


@pytest.mark.parametrize(
    ("topic", "error", "reason_code"),
    [
        ("", ProtocolError, 0x90),
        ("a/+", ProtocolError, 0x90),
        ("#", ProtocolError, 0x90),
        ("a/b#", ProtocolError, 0x90),
        ("a\x00b", MalformedPacketError, 0x81),
        pytest.param("a" * 65536, MalformedPacketError, 0x81, id="65536 bytes"),
        pytest.param("\U0001f600" * 16384, MalformedPacketError, 0x81, id="65536 bytes of emoji"),
        ("\ud800", MalformedPacketError, 0x81),
    ],
)
def test_invalid_names(topic: str, error: type[ProtocolError], reason_code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_topic_name(topic)
    assert type(caught.value) is error
    assert caught.value.reason_code == reason_code


@pytest.mark.parametrize("topic_filter", ["#", "+", "a/#", "+/+", "a/+/b", "/+", "+/", "$SYS/#", "a/b", "$share"])
def test_valid_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize(
    ("topic_filter", "error"),
    [
        ("", ProtocolError),
        ("a/#/b", ProtocolError),
        ("a#", ProtocolError),
        ("#/", ProtocolError),
        ("a+", ProtocolError),
        ("a/+b/c", ProtocolError),
        ("++", ProtocolError),
        ("a\x00", MalformedPacketError),
        pytest.param("a" * 65536, MalformedPacketError, id="65536 bytes"),
    ],
)
def test_invalid_filters(topic_filter: str, error: type[ProtocolError]) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_topic_filter(topic_filter)
    assert type(caught.value) is error
    assert caught.value.reason_code == (0x8F if error is ProtocolError else 0x81)


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("a/b", (None, "a/b")),
        ("$share/g/a/b", ("g", "a/b")),
        ("$share/mqtthub/devices/+/datastream", ("mqtthub", "devices/+/datastream")),
        ("$share/g/#", ("g", "#")),
        ("$share/g//", ("g", "/")),
        ("$SHARE/g/a", (None, "$SHARE/g/a")),
    ],
)
def test_parse_shared(topic_filter: str, expected: tuple[str | None, str]) -> None:
    assert parse_shared(topic_filter) == expected


@pytest.mark.parametrize(
    "topic_filter", ["$share/g", "$share//a", "$share/g+/a", "$share/#/a", "$share/g/", "$share/g/a#"]
)
def test_invalid_shared(topic_filter: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_shared(topic_filter)
    assert caught.value.reason_code == 0x8F


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/b", "a/b/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/+", "a/", True),
        ("+/+", "/x", True),
        ("+", "/x", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "ab", False),
        ("#", "a/b", True),
        ("#", "/", True),
        ("+/b/#", "a/b", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        # [MQTT-4.7.2-1]: wildcards at the first level never match topics starting with "$".
        ("#", "$SYS/uptime", False),
        ("+/uptime", "$SYS/uptime", False),
        ("$SYS/#", "$SYS/uptime", True),
        ("$SYS/+", "$SYS/uptime", True),
        ("a/#", "a/$b", True),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
