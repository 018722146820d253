"""Permission checks of a resolved caller: topic filters of an MQTT API token, or the whole namespace."""

from __future__ import annotations

import pytest

from mqtthub.errors import PermissionDeniedError
from mqtthub.messaging.auth import Caller
from mqtthub.messaging.namespace import OrgScope
from mqtthub.tenancy import filter_within

SCOPE = OrgScope.of("org", "abcdef")


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        ("#", "anything/at/all", True),
        ("#", "#", True),
        ("a/#", "a", True),
        ("a/#", "a/b/+", True),
        ("a/#", "b/#", False),
        ("a/+", "a/b", True),
        ("a/+", "a/+", True),
        ("a/+", "a/#", False),
        ("a/+", "a/b/c", False),
        ("a/b", "a/b", True),
        ("a/b", "a/+", False),
        ("a/b", "a", False),
        ("device/+/telemetry/#", "device/d1/telemetry/temp", True),
        ("device/+/telemetry/#", "device/+/telemetry/#", True),
        ("device/+/telemetry/#", "device/#", False),
        ("device/+/telemetry/#", "device/d1/commands", False),
    ],
)
def test_token_filters_cover(allowed: str, requested: str, covered: bool) -> None:
    assert filter_within(requested, allowed) is covered


def test_a_user_may_do_everything_in_the_namespace() -> None:
    caller = Caller(key="user:1", scope=SCOPE)
    assert caller.can_publish("x/y")
    assert caller.can_subscribe("#")
    assert caller.can_read("x")
    assert caller.readable is None
    caller.require_publish("x")
    caller.require_subscribe("#")


def test_a_subscribe_only_token() -> None:
    caller = Caller(key="token:1", scope=SCOPE, publish_filters=(), subscribe_filters=("device/+/telemetry/#",))
    assert not caller.can_publish("device/d1/telemetry/t")
    with pytest.raises(PermissionDeniedError, match="subscribe-only"):
        caller.require_publish("device/d1/telemetry/t")
    assert caller.can_read("device/d1/telemetry/t")
    assert not caller.can_read("device/d1/status")
    with pytest.raises(PermissionDeniedError, match="may not subscribe"):
        caller.require_subscribe("device/#")


def test_a_token_with_publish_filters() -> None:
    caller = Caller(key="token:2", scope=SCOPE, publish_filters=("cmd/+",), subscribe_filters=("#",))
    caller.require_publish("cmd/reboot")
    with pytest.raises(PermissionDeniedError, match="may not publish to 'cmd/a/b'"):
        caller.require_publish("cmd/a/b")
    assert caller.organization_id == "org"
