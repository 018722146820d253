"""Conditions of event-subscription actions: a small, safe expression language (never ``eval``).

A condition such as ``payment.status == 'pending' and event.sendEmail == true`` is parsed
with :mod:`ast` and accepted only when every node is on a whitelist: ``and``, ``or``,
``not``, comparisons (``== != < <= > >= in``, ``not in``), dotted names, and literals
(strings, numbers, ``true``/``false``/``null`` or their Python spellings, lists of
literals). No calls, subscripts, arithmetic or attribute access on objects other than
the event's own dictionaries, so a condition cannot reach anything but the message.

Names resolve in the message context: each top-level key of the JSON payload, plus
``event`` (the whole payload) and ``topic``. A missing name is ``null``; an ordering
comparison between values of unlike types is false rather than an error.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from mqtthub.errors import ValidationFailedError

_LITERAL_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_MAX_LENGTH = 1000


class Condition:
    """A parsed condition, checked once and evaluated against many messages."""

    def __init__(self, source: str) -> None:
        """Parse and check ``source``.

        Raises:
            ValidationFailedError: the text is not a valid condition (the message says why).
        """
        if len(source) > _MAX_LENGTH:
            raise ValidationFailedError(f"condition longer than {_MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValidationFailedError(f"invalid condition {source!r}: {exc.msg}") from None
        _check(tree.body, source)
        self.source = source
        self._tree = tree.body

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True when the condition holds for ``context``."""
        return bool(_evaluate(self._tree, context))


def _check(node: ast.AST, source: str) -> None:
    allowed = (
        ast.BoolOp,
        ast.UnaryOp,
        ast.Compare,
        ast.Name,
        ast.Attribute,
        ast.Constant,
        ast.List,
        ast.Tuple,
        ast.And,
        ast.Or,
        ast.Not,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.In,
        ast.NotIn,
        ast.Load,
    )
    for child in ast.walk(node):
        if not isinstance(child, allowed):
            raise ValidationFailedError(
                f"invalid condition {source!r}: {type(child).__name__.lower()} is not allowed "
                "(use ==, !=, <, <=, >, >=, in, and, or, not, dotted names and literals)"
            )
        if isinstance(child, ast.UnaryOp) and not isinstance(child.op, ast.Not):
            raise ValidationFailedError(f"invalid condition {source!r}: only 'not' may prefix a value")
        if isinstance(child, ast.Constant) and not isinstance(child.value, str | int | float | bool | None):
            raise ValidationFailedError(f"invalid condition {source!r}: unsupported literal")
        if isinstance(child, ast.Attribute | ast.Name):
            name = child.attr if isinstance(child, ast.Attribute) else child.id
            if name.startswith("_"):
                raise ValidationFailedError(f"invalid condition {source!r}: names may not start with '_'")


def _evaluate(node: ast.expr, context: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in context:
            return context[node.id]
        return _LITERAL_NAMES.get(node.id)
    if isinstance(node, ast.Attribute):
        parent = _evaluate(node.value, context)
        return parent.get(node.attr) if isinstance(parent, Mapping) else None
    if isinstance(node, ast.List | ast.Tuple):
        return [_evaluate(element, context) for element in node.elts]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_evaluate(value, context) for value in node.values)
        return any(_evaluate(value, context) for value in node.values)
    if isinstance(node, ast.UnaryOp):
        return not _evaluate(node.operand, context)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, context)
        for operator, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, context)
            if not _compare(operator, left, right):
                return False
            left = right
        return True
    raise ValidationFailedError(f"unsupported expression {type(node).__name__}")  # unreachable after _check


def _compare(operator: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(operator, ast.Eq):
        return bool(left == right)
    if isinstance(operator, ast.NotEq):
        return bool(left != right)
    try:
        if isinstance(operator, ast.In):
            return left in right if isinstance(right, list | str | Mapping) else False
        if isinstance(operator, ast.NotIn):
            return left not in right if isinstance(right, list | str | Mapping) else True
        if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
            return False
        if isinstance(operator, ast.Lt):
            return bool(left < right)
        if isinstance(operator, ast.LtE):
            return bool(left <= right)
        if isinstance(operator, ast.Gt):
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False
