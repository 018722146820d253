"""The Integrations forms: what the API is sent for what was typed, where each error is shown; the connector's state."""

from __future__ import annotations

import base64
import io

import pytest
from pydantic import ValidationError
from starlette.datastructures import FormData, Headers, UploadFile

from mqtthub.console import action_form, config_form
from mqtthub.console.fielderrors import FORM, FieldErrors
from mqtthub.console.products import connector_state
from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.schemas import BrokerConfig, MqttConfigIn, SubscriptionUpdate
from mqtthub.integrations.status import ConnectionStatus


def _upload(content: bytes) -> UploadFile:
    return UploadFile(io.BytesIO(content), filename="client.p12", headers=Headers({"content-type": "x"}))


async def test_the_config_form_says_the_apis_body() -> None:
    form = FormData(
        [
            ("broker.host", " broker.example "),
            ("broker.port", "8883"),
            ("broker.use_tls", "true"),
            ("broker.username", ""),
            ("broker.password", "s3cret"),
            ("broker.client_key.remove", "true"),
            ("broker.pkcs12", _upload(b"\x30\x82")),
            ("broker.alpn", "x-amzn-mqtt-ca, mqtt"),
            ("topics.qos", "2"),
        ]
    )
    body = await config_form.config_body(form)
    assert body["broker"] == {
        "host": "broker.example",
        "port": "8883",
        "use_tls": True,
        "verify_cert": False,
        "clean_session": False,
        "username": None,
        "password": "s3cret",
        "client_key": None,
        "pkcs12": base64.b64encode(b"\x30\x82").decode(),
        "alpn": ["x-amzn-mqtt-ca", "mqtt"],
    }
    assert body["topics"] == {"qos": "2", "use_shared": False}
    parsed = MqttConfigIn.model_validate(body)
    assert (parsed.broker.port, parsed.topics.qos) == (8883, 2)


async def test_blank_secrets_are_left_out_so_the_stored_ones_are_kept() -> None:
    form = FormData([("broker.host", "h"), ("broker.password", ""), ("broker.pkcs12", _upload(b""))])
    broker = (await config_form.config_body(form))["broker"]
    assert "password" not in broker
    assert "pkcs12" not in broker
    assert "broker.password" not in config_form.typed_values(FormData([("broker.password", "x")]))


async def test_config_errors_are_filed_under_their_control() -> None:
    errors = FieldErrors()
    body = await config_form.config_body(FormData([("broker.host", ""), ("broker.port", "70000")]))
    with pytest.raises(ValidationError) as refused:
        MqttConfigIn.model_validate(body)
    errors.add_validation(refused.value)
    assert set(errors) == {"broker.host", "broker.port"}
    assert errors["broker.port"] == "Input should be less than or equal to 65535"
    errors.add_refusal(ValidationFailedError("refused by outbound policy", field="broker.host"), str)
    assert "at least 1 character" in errors["broker.host"]  # the first error of a field is kept
    assert {field.name for field in config_form.FIELDS} >= {f"broker.{name}" for name in BrokerConfig.model_fields}


def test_an_action_is_read_for_its_type_only() -> None:
    errors = FieldErrors()
    form = FormData(
        [
            ("type", "webhook"),
            ("condition", " event.amount > 1 "),
            ("url", "https://hooks.example/{{event.id}}"),
            ("method", "PUT"),
            ("headers", '{"X-Id": "{{event.id}}"}'),
            ("body", "not json: {{event.id}}"),
            ("topic", "ignored/for/a/webhook"),
            ("retries", ""),
        ]
    )
    assert action_form.action_from_form(form, errors) == {
        "type": "webhook",
        "condition": "event.amount > 1",
        "url": "https://hooks.example/{{event.id}}",
        "method": "PUT",
        "headers": {"X-Id": "{{event.id}}"},
        "body": "not json: {{event.id}}",
    }
    assert not errors
    domain = action_form.action_from_form(FormData([("type", "other"), ("domain_type", "activate_policy")]), errors)
    assert domain == {"type": "activate_policy"}
    action_form.action_from_form(FormData([("type", "http"), ("params", "[1]")]), errors)
    assert errors["params"].startswith("must be a JSON object")
    action_form.action_from_form(FormData([("type", "nonsense")]), errors)
    assert errors["type"] == "choose an action type"


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"type": "republish", "topic": "a/{{ event.id"}, "topic"),
        ({"type": "republish", "topic": "a/b", "condition": "event.x >"}, "condition"),
        ({"type": "webhook", "url": "ftp://x"}, "url"),
        ({"type": "Bad Type"}, "domain_type"),
    ],
)
def test_an_actions_validation_errors_land_next_to_its_field(action: dict[str, object], field: str) -> None:
    kind = action_form.OTHER if action["type"] == "Bad Type" else str(action["type"])
    stored = [{"type": "store"}]
    with pytest.raises(ValidationError) as refused:
        SubscriptionUpdate.model_validate({"actions": [*stored, action]})
    errors = FieldErrors()
    errors.add_validation(refused.value, action_form.field_of(kind, 1))
    assert list(errors) == [field]
    assert not errors[field].startswith("Value error")


def test_refusals_of_the_services_land_next_to_their_field() -> None:
    assert action_form.refused_field("actions[3].url") == "url"
    assert action_form.refused_field("broker.host") == FORM


def test_a_stored_action_fills_the_form_it_was_made_with() -> None:
    stored = {
        "type": "republish",
        "topic": "t/{{event.id}}",
        "payload": {"id": "{{event.id}}"},
        "qos": 1,
        "retain": True,
    }
    values = action_form.form_values(stored)
    assert values == {
        "type": "republish",
        "topic": "t/{{event.id}}",
        "payload": '{\n  "id": "{{event.id}}"\n}',
        "qos": "1",
        "retain": "true",
    }
    assert action_form.action_from_form(FormData(list(values.items())), FieldErrors()) == stored | {"qos": "1"}
    assert action_form.form_values({"type": "activate_policy"}) == {"type": "other", "domain_type": "activate_policy"}


def test_a_connector_run_by_another_hub_is_on_standby() -> None:
    status = ConnectionStatus(product_id="p", client_id="c", hub="hub-b").as_dict()
    assert connector_state(status, runs_here=False) == "standby"
    assert connector_state(status, runs_here=True) == "disconnected"
    assert connector_state(ConnectionStatus(product_id="p", client_id="c").as_dict(), runs_here=False) == "disconnected"
    running = ConnectionStatus(product_id="p", client_id="c", hub="hub-a")
    running.record_connected("5.0", 1)
    assert connector_state(running.as_dict(), runs_here=True) == "connected"
