"""Topic checks and the organization namespace."""

from __future__ import annotations

import pytest

from mqtthub.messaging.namespace import Namespace, OrgScope, check_topic_filter, check_topic_name


@pytest.mark.parametrize("topic", ["a", "factory/line1/press1/temperature", "a//b", "ünïcode/topic"])
def test_valid_topic_names_pass(topic: str) -> None:
    assert check_topic_name(topic) == topic


@pytest.mark.parametrize(
    "topic", ["", "a/+/b", "a/#", "$SYS/broker", "$share/g/a", "x" * 1025, "nul\x00byte"], ids=repr
)
def test_invalid_topic_names_fail(topic: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_topic_name(topic)


@pytest.mark.parametrize("topic_filter", ["a", "factory/+/+/temperature", "#", "+", "a/+/#"])
def test_valid_filters_pass(topic_filter: str) -> None:
    assert check_topic_filter(topic_filter) == topic_filter


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a+/b", "a/b#", "$share/group/a", "$SYS/#"], ids=repr)
def test_invalid_filters_fail(topic_filter: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_topic_filter(topic_filter)


def test_namespace_maps_both_ways() -> None:
    scope = OrgScope.of("org-id", "acme01")
    assert scope.namespace == Namespace("org/acme01/")
    assert scope.namespace.internal("a/+/c") == "org/acme01/a/+/c"
    assert scope.namespace.external("org/acme01/a/b") == "a/b"
    assert scope.namespace.external("org/other1/a/b") == "org/other1/a/b"
