"""Topic rules: filter containment, the per-principal tables, validation of custom filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtthub.auth.acl import (
    ANONYMOUS_RULES,
    TopicRules,
    device_rules,
    user_rules,
    validate_permission_filters,
)
from mqtthub.errors import ValidationFailedError
from mqtthub.mqtt.topics import topic_matches
from mqtthub.tenancy import filter_within

DEVICE = "4797831a-e4cb-41f0-8dbc-e7de2dffe696"
OTHER = "0b6f1c52-2d7e-4a8e-9a51-3f4f7f0d2c11"
ORG = "9d3c0d7e-1111-4a2b-8c3d-123456789abc"


@pytest.mark.parametrize(
    ("requested", "allowed", "within"),
    [
        ("device/+/telemetry/#", "device/+/telemetry/#", True),
        ("device/abc/telemetry/#", "device/+/telemetry/#", True),
        ("device/abc/telemetry/temperature", "device/+/telemetry/#", True),
        ("device/+/telemetry", "device/+/telemetry/#", True),
        ("device/+/telemetry/+", "device/+/telemetry/#", True),
        ("device/#", "device/+/telemetry/#", False),
        ("#", "device/+/telemetry/#", False),
        ("+/+/telemetry/#", "device/+/telemetry/#", False),
        ("device/+/status", "device/+/telemetry/#", False),
        ("device/+/telemetry/#", "device/+/telemetry/+", False),
        ("a/b", "a/+", True),
        ("a/+", "a/b", False),
        ("a/b/c", "a/+", False),
        ("a", "a/b", False),
        ("$SYS/broker", "#", False),
        ("$SYS/broker", "+/broker", False),
        ("$SYS/broker", "$SYS/#", True),
        ("anything/at/all", "#", True),
    ],
)
def test_filter_within(requested: str, allowed: str, within: bool) -> None:
    assert filter_within(requested, allowed) is within


_level = st.sampled_from(["a", "b", "+"])
_filters = st.builds(
    lambda levels, tail: "/".join(levels + (["#"] if tail else [])),
    st.lists(_level, min_size=1, max_size=4),
    st.booleans(),
)
_topics = st.builds("/".join, st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5))


@given(requested=_filters, allowed=_filters, topic=_topics)
def test_containment_is_sound(requested: str, allowed: str, topic: str) -> None:
    """If a filter is within an allowed one, nothing it matches escapes the allowed one."""
    if filter_within(requested, allowed) and topic_matches(requested, topic):
        assert topic_matches(allowed, topic)


def test_device_table() -> None:
    rules = device_rules(DEVICE, ORG)
    for topic in (
        f"devices/{DEVICE}/datastream",
        f"devices/{DEVICE}/status",
        f"device/{DEVICE}/telemetry/temperature",
        f"device/{DEVICE}/telemetry/a/b",
        f"devices/{DEVICE}/commands/reply",
    ):
        assert rules.may_publish(topic), topic
    for topic in (
        f"devices/{OTHER}/datastream",
        f"device/{OTHER}/telemetry/temperature",
        f"devices/{DEVICE}/commands",
        f"organizations/{ORG}/broadcast",
        "anything",
    ):
        assert not rules.may_publish(topic), topic
    assert rules.may_subscribe(f"devices/{DEVICE}/commands")
    assert rules.may_subscribe(f"organizations/{ORG}/broadcast")
    assert not rules.may_subscribe("devices/+/commands")
    assert not rules.may_subscribe(f"devices/{OTHER}/commands")
    assert not rules.may_subscribe("#")
    assert not rules.may_subscribe(f"device/{DEVICE}/telemetry/#")


def test_user_and_anonymous_tables() -> None:
    rules = user_rules("u1")
    assert rules.may_subscribe("device/+/telemetry/#")
    assert rules.may_subscribe("app/user/u1/sub")
    assert not rules.may_subscribe("app/user/u2/sub")
    assert not rules.may_publish("app/user/u1/sub")
    assert ANONYMOUS_RULES.may_publish("x/y")
    assert ANONYMOUS_RULES.may_subscribe("#")


def test_rules_survive_principal_attributes() -> None:
    rules = TopicRules(publish=("a/b", "c/#"), subscribe=("x/+",))
    assert TopicRules.from_attributes(rules.to_attributes()) == rules
    assert TopicRules.from_attributes(TopicRules().to_attributes()) == TopicRules()
    assert TopicRules.from_attributes({}) == TopicRules()
    assert TopicRules.from_attributes(None) == TopicRules()


def test_custom_filters_are_validated() -> None:
    assert validate_permission_filters(["a/+/b", "a/+/b", "c/#"], "f") == ("a/+/b", "c/#")
    for bad in (["a/#/b"], ["a+"], [""], ["$SYS/#"], ["$share/g/a"], ["a\x00b"]):
        with pytest.raises(ValidationFailedError) as caught:
            validate_permission_filters(bad, "permissions.subscribe")
        assert caught.value.field == "permissions.subscribe"
    with pytest.raises(ValidationFailedError, match="at most"):
        validate_permission_filters([f"t/{index}" for index in range(51)], "f")
