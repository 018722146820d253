"""Action validation at save time: known types, domain actions, bad conditions and templates refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mqtthub.integrations.action_specs import DomainAction, EmailAction, WebhookAction, dump_actions, parse_actions
from mqtthub.integrations.runtime import compose_topic
from mqtthub.integrations.schemas import BrokerConfig, SubscriptionCreate


def test_documented_actions_parse_and_round_trip() -> None:
    given: list[dict[str, Any]] = [
        {"type": "activate_policy", "params": {"policy_id": "{{event.policy_id}}"}},
        {"type": "conditional_email", "condition": "event.sendEmail == true", "template": "policy_activated"},
        {"type": "webhook", "url": "https://example.com/h", "body": {"id": "{{event.id}}"}},
    ]
    actions = parse_actions(given)
    assert [type(action) for action in actions] == [DomainAction, EmailAction, WebhookAction]
    assert dump_actions(actions) == given


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "conditional_email", "condition": "payment.status = 'x'", "template": "t"}, "invalid condition"),
        ({"type": "email", "condition": "os.system('x')", "template": "t"}, "not allowed"),
        ({"type": "webhook", "url": "https://x/{{ a", "body": None}, "invalid template"),
        ({"type": "webhook", "url": "ftp://x"}, "http"),
        ({"type": "webhook", "url": "https://x", "body": {"a": ["{% for %}"]}}, "invalid template"),
        ({"type": "republish", "topic": "a/+/b"}, "wildcards"),
        ({"type": "Bad Type!"}, "lowercase"),
        ({"type": "email"}, "template"),
        ({"type": "store", "unexpected": 1}, "Extra inputs"),
    ],
)
def test_bad_actions_are_refused(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SubscriptionCreate(name="x", actions=[action])


def test_topic_composition() -> None:
    assert compose_topic("/v3/applications", "{application_id}/business-events", {"application_id": "A1"}) == (
        "/v3/applications/A1/business-events"
    )
    assert compose_topic("/v3/applications/", "/{application_id}/x", {}) == "/v3/applications/+/x"
    assert compose_topic("", "{a}/{b}", {"a": "1"}) == "1/+"


def test_broker_validation() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        BrokerConfig(host="h", port=70000)
    with pytest.raises(ValidationError, match="base64"):
        BrokerConfig(host="h", pkcs12="not base64!")
    with pytest.raises(ValidationError, match="PEM"):
        BrokerConfig(host="h", ca_cert="garbage")
    assert BrokerConfig(host="h").port == 1883
