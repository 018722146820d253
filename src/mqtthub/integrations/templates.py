"""Templates in actions (``{{event.policy_id}}``), rendered in a bounded Jinja2 sandbox.

Strings are rendered as text. In a JSON value (a webhook body, ``http`` params) every
string leaf is a template; a leaf that is exactly one expression (``"{{event.amount}}"``)
keeps the value's JSON type, so numbers stay numbers. Templates are parsed when an
action is saved, so a broken one is refused with 422 rather than failing later.

A message's payload fills the template, so the payload's author can make a template
expensive: ``{{ event.a ** event.b }}`` with a large exponent, ``{{ 'x' * 10**8 }}``.
The sandbox therefore bounds arithmetic (an integer result may not exceed
:attr:`ExpressionLimits.max_int_bits`) and sizes (a string or list built by an operator
or a method call, and the rendered output, may not exceed :attr:`ExpressionLimits.max_length`).
What the sandbox cannot see (a filter such as ``center`` given a huge width, a loop that
doubles a string) is stopped by the worker process rendering it: a time budget and a memory
limit (see :mod:`mqtthub.integrations.expressions`).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from mqtthub.errors import ValidationFailedError

_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(?P<expression>[^{}]+?)\s*\}\}$")
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
}


@dataclass(frozen=True)
class ExpressionLimits:
    """Bounds on what one template or condition may build.

    Attributes:
        max_int_bits: Largest integer an arithmetic operator may produce (4096 bits is about 1233 digits).
        max_length: Most characters (or items) in a string or list built by an operator or a method call,
            and in one rendered output.
    """

    max_int_bits: int = 4096
    max_length: int = 1_048_576


DEFAULT_LIMITS = ExpressionLimits()


class _EventEnvironment(SandboxedEnvironment):
    """Dotted names read JSON keys first; growing operators and calls are bounded by ``limits``."""

    intercepted_binops = frozenset(_OPERATORS)

    def __init__(self, limits: ExpressionLimits) -> None:
        super().__init__(autoescape=False, keep_trailing_newline=True)
        self.limits = limits

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``event.items`` is the payload's ``items``, not ``dict.items``."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``+``, ``*``, ``**`` and ``%``, refused before they compute a result over the limits."""
        self._check_binop(operator, left, right)
        return self._bounded(_OPERATORS[operator](left, right))

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A method or function call: no integer argument past ``max_length`` (a width, a count), a bounded result."""
        for value in (*args, *kwargs.values()):
            if _is_int(value) and abs(value) > self.limits.max_length:
                raise SecurityError(f"argument {value} is larger than the limit of {self.limits.max_length}")
        return self._bounded(super().call(__context, __obj, *args, **kwargs))

    def _check_binop(self, operator: str, left: Any, right: Any) -> None:
        limit = self.limits.max_int_bits
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            if abs(left).bit_length() * right > limit + right:
                raise SecurityError(f"{left} ** {right} would exceed the integer limit of {limit} bits")
        elif operator == "*" and _is_int(left) and _is_int(right):
            if abs(left).bit_length() + abs(right).bit_length() > limit + 1:
                raise SecurityError(f"a product would exceed the integer limit of {limit} bits")
        elif operator == "*":
            sequence, count = (left, right) if _is_int(right) else (right, left)
            if _is_int(count) and _sized(sequence) and len(sequence) * count > self.limits.max_length:
                raise SecurityError(f"repetition would exceed the length limit of {self.limits.max_length}")
        elif operator == "+" and _sized(left) and _sized(right) and len(left) + len(right) > self.limits.max_length:
            raise SecurityError(f"concatenation would exceed the length limit of {self.limits.max_length}")

    def _bounded(self, value: Any) -> Any:
        if _sized(value) and len(value) > self.limits.max_length:
            raise SecurityError(f"a value of {len(value)} items exceeds the length limit of {self.limits.max_length}")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


@lru_cache(maxsize=4)
def environment(limits: ExpressionLimits = DEFAULT_LIMITS) -> SandboxedEnvironment:
    """The sandboxed environment for ``limits`` (no autoescape: output is JSON, MQTT payloads and plain-text mail)."""
    env = _EventEnvironment(limits)
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


def render(text: str, context: dict[str, Any], limits: ExpressionLimits = DEFAULT_LIMITS) -> str:
    """Render a text template.

    Raises:
        SecurityError: the template broke the sandbox's rules or its limits.
    """
    output = _template(text, limits).render(context)
    if len(output) > limits.max_length:
        raise SecurityError(f"the output of {len(output)} characters exceeds the limit of {limits.max_length}")
    return output


def render_json(value: Any, context: dict[str, Any], limits: ExpressionLimits = DEFAULT_LIMITS) -> Any:
    """Render every string leaf of a JSON value; a lone ``{{ expression }}`` keeps its JSON type."""
    if isinstance(value, str):
        match = _SINGLE_EXPRESSION.match(value)
        if match:
            result = _expression(match["expression"], limits)(**context)
            return result if _is_json(result) else str(result)
        return render(value, context, limits)
    if isinstance(value, dict):
        return {key: render_json(item, context, limits) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, context, limits) for item in value]
    return value


@lru_cache(maxsize=512)
def _template(text: str, limits: ExpressionLimits) -> Template:
    """Compiling costs about a millisecond, rendering a few microseconds: actions reuse their compiled templates."""
    return environment(limits).from_string(text)


@lru_cache(maxsize=512)
def _expression(source: str, limits: ExpressionLimits) -> Callable[..., Any]:
    return environment(limits).compile_expression(source, undefined_to_none=True)


def _is_json(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)
