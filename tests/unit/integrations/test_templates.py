"""Sandboxed templates: rendering, JSON types kept, syntax errors refused, the sandbox holding."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.templates import render, render_json, validate_json_template, validate_template

CONTEXT = {"event": {"policy_id": "P-7", "amount": 12.5, "items": [1, 2]}, "topic": "a/b"}


def test_render_text() -> None:
    assert render("policy {{event.policy_id}} on {{ topic }}", CONTEXT) == "policy P-7 on a/b"


def test_render_json_keeps_types_of_lone_expressions() -> None:
    body = {"id": "{{event.policy_id}}", "amount": "{{ event.amount }}", "items": "{{event.items}}", "text": "x{{1}}"}
    assert render_json(body, CONTEXT) == {"id": "P-7", "amount": 12.5, "items": [1, 2], "text": "x1"}
    assert render_json(["{{ event.missing }}", 3, None], CONTEXT) == [None, 3, None]


@pytest.mark.parametrize("text", ["{{ event.policy_id", "{% if %}", "{{ }}"])
def test_syntax_errors_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailedError, match="invalid template"):
        validate_template(text, where="body")
    with pytest.raises(ValidationFailedError, match=r"body\.x"):
        validate_json_template({"x": text}, where="body")


def test_the_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(SecurityError):
        render("{{ event.__class__.__mro__[1].__subclasses__() }}", CONTEXT)
