"""Validation errors lose the inputs of secret fields, wherever the secret sits."""

from __future__ import annotations

import pytest

from mqtthub.web.redaction import MASK, is_secret_name, redact_issue, redact_value


@pytest.mark.parametrize(
    "name",
    ["password", "pkcs12_password", "client_key", "pkcs12", "p12Password", "api_key", "X-API-Key", "token", "secret"],
)
def test_secret_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["host", "port", "username", "email", "topic", "keep_alive"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_an_error_at_a_secret_field_loses_its_input_and_context() -> None:
    issue = {
        "loc": ("body", "broker", "password"),
        "msg": "String should have at most 1000 characters",
        "type": "string_too_long",
        "input": "hunter2" * 200,
        "ctx": {"max_length": 1000},
    }
    redacted = redact_issue(issue)
    assert redacted["input"] == MASK
    assert "ctx" not in redacted
    assert redacted["loc"] == ("body", "broker", "password")
    assert redacted["msg"] == issue["msg"]


def test_secrets_inside_an_object_input_are_masked_at_any_depth() -> None:
    issue = {
        "loc": ("body", "broker", "port"),
        "msg": "Input should be less than or equal to 65535",
        "type": "less_than_equal",
        "input": {
            "host": "broker.example",
            "password": "hunter2",
            "tls": [{"client_key": "-----BEGIN PRIVATE KEY-----", "pkcs12": "MIIK"}],
        },
    }
    redacted = redact_issue(issue)
    assert redacted["input"] == {
        "host": "broker.example",
        "password": MASK,
        "tls": [{"client_key": MASK, "pkcs12": MASK}],
    }
    assert "hunter2" not in repr(redacted)


def test_plain_values_pass_unchanged() -> None:
    assert redact_value(70000) == 70000
    assert redact_value("broker.example") == "broker.example"
    assert redact_value(["a", {"name": "x"}]) == ["a", {"name": "x"}]
