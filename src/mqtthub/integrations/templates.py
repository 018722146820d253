"""Templates in actions (``{{event.policy_id}}``), rendered in Jinja2's sandbox.

Strings are rendered as text. In a JSON value (a webhook body, ``http`` params) every
string leaf is a template; a leaf that is exactly one expression (``"{{event.amount}}"``)
keeps the value's JSON type, so numbers stay numbers. Templates are parsed when an
action is saved, so a broken one is refused with 422 rather than failing later.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from mqtthub.errors import ValidationFailedError

_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(?P<expression>[^{}]+?)\s*\}\}$")


class _EventEnvironment(SandboxedEnvironment):
    """Dotted names read JSON keys first, so ``event.items`` is the payload's ``items``, not ``dict.items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The one sandboxed environment (no autoescape: output is JSON, MQTT payloads and plain-text mail)."""
    env = _EventEnvironment(autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = lambda value: json.dumps(value, separators=(",", ":"), default=str)
    return env


def validate_template(text: str, *, where: str) -> None:
    """Parse ``text``.

    Raises:
        ValidationFailedError: a syntax error; ``where`` names the field.
    """
    try:
        environment().parse(text)
    except TemplateSyntaxError as exc:
        raise ValidationFailedError(f"invalid template in {where}: {exc.message}", field=where) from None


def validate_json_template(value: Any, *, where: str) -> None:
    """Parse every string leaf of a JSON value (see :func:`validate_template`)."""
    if isinstance(value, str):
        validate_template(value, where=where)
    elif isinstance(value, dict):
        for key, item in value.items():
            validate_json_template(item, where=f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            validate_json_template(item, where=f"{where}[{index}]")


def render(text: str, context: dict[str, Any]) -> str:
    """Render a text template."""
    return environment().from_string(text).render(context)


def render_json(value: Any, context: dict[str, Any]) -> Any:
    """Render every string leaf of a JSON value; a lone ``{{ expression }}`` keeps its JSON type."""
    if isinstance(value, str):
        match = _SINGLE_EXPRESSION.match(value)
        if match:
            result = environment().compile_expression(match["expression"], undefined_to_none=True)(**context)
            return result if _is_json(result) else str(result)
        return render(value, context)
    if isinstance(value, dict):
        return {key: render_json(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, context) for item in value]
    return value


def _is_json(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)
