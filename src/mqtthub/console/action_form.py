"""The form of one action of an event subscription: its fields by action type, and the API's action built from it.

An action is validated as the API validates it, inside the subscription's list of actions
(``SubscriptionUpdate``): a condition that does not parse, a template with a syntax error or a URL the outbound
policy refuses is shown next to the field it is about. JSON fields (headers, parameters) must be JSON objects;
a body or payload that is not JSON is a text template, as the API takes it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import FormData

from mqtthub.console.fielderrors import FORM, FieldErrors, FieldOf
from mqtthub.integrations.action_specs import KNOWN_TYPES

OTHER = "other"
"""The form's name for a domain action (its type is typed in ``domain_type``)."""

TYPES = (
    ("webhook", "Webhook (HTTP call with a JSON body)"),
    ("republish", "Republish a message"),
    ("email", "E-mail"),
    ("conditional_email", "Conditional e-mail"),
    ("http", "HTTP call with parameters"),
    ("store", "Store in the event log"),
    (OTHER, "Domain action (another type)"),
)
"""The choices of the type selector, in order."""

FIELDS_OF = {
    "email": ("template", "to"),
    "conditional_email": ("template", "to"),
    "webhook": ("url", "method", "headers", "timeout", "retries", "body"),
    "http": ("url", "method", "headers", "timeout", "retries", "params"),
    "republish": ("target", "topic", "payload", "qos", "retain"),
    "store": (),
    OTHER: ("domain_type", "params"),
}
"""The form's fields each action type uses (``condition`` is every type's)."""

SHOWN_FOR = {
    name: " ".join(kind for kind, fields in FIELDS_OF.items() if name in fields)
    for name in {name for fields in FIELDS_OF.values() for name in fields}
}
"""For each field, the types that use it (the page shows a field only for those)."""

_JSON_OBJECTS = frozenset({"headers", "params"})
_JSON_OR_TEXT = frozenset({"body", "payload"})
_REFUSED_FIELD = re.compile(r"^actions\[\d+\]\.(?P<name>\w+)")


def action_from_form(form: FormData, errors: FieldErrors) -> dict[str, Any]:
    """The action the form says, as the API's request body has it; problems of form are added to ``errors``."""
    kind = _text(form, "type")
    if kind not in FIELDS_OF:
        errors.add("type", "choose an action type")
        return {}
    action: dict[str, Any] = {"type": _text(form, "domain_type") if kind == OTHER else kind}
    if condition := _text(form, "condition"):
        action["condition"] = condition
    for name in FIELDS_OF[kind]:
        value = _text(form, name)
        if name == "domain_type":
            continue
        if name == "retain":
            action[name] = form.get(name) is not None
        elif name == "to":
            recipients = [line.strip() for line in value.splitlines() if line.strip()]
            if recipients:
                action[name] = recipients
        elif not value:
            continue
        elif name in _JSON_OBJECTS:
            try:
                action[name] = json.loads(value)
            except ValueError as exc:
                errors.add(name, f"must be a JSON object: {exc}")
                continue
            if not isinstance(action[name], dict):
                errors.add(name, 'must be a JSON object, e.g. {"key": "{{event.id}}"}')
        elif name in _JSON_OR_TEXT:
            try:
                action[name] = json.loads(value)
            except ValueError:
                action[name] = value  # text: a template as it is
        else:
            action[name] = value
    return action


def field_of(kind: str, index: int) -> FieldOf:
    """Where an error of the subscription's validation belongs in the form of action ``index`` (of type ``kind``)."""

    def place(location: tuple[int | str, ...]) -> str:
        if location[:2] != ("actions", index):
            return FORM
        # ("actions", index, <tag of the action type>, <field>, ...)
        name = str(location[3]) if len(location) > 3 else "type"
        if name == "type" and kind == OTHER:
            return "domain_type"
        return name if name == "condition" or name in FIELDS_OF.get(kind, ()) or name == "type" else FORM

    return place


def refused_field(field: str) -> str:
    """The form field of a service's refusal (``actions[2].url`` is ``url``)."""
    match = _REFUSED_FIELD.match(field)
    return match.group("name") if match else FORM


def form_values(action: dict[str, Any]) -> dict[str, str]:
    """A stored action as the form's values (to edit it)."""
    kind = action.get("type", "")
    values: dict[str, str] = {"type": kind if kind in KNOWN_TYPES else OTHER}
    if kind not in KNOWN_TYPES:
        values["domain_type"] = kind
    for name, value in action.items():
        if name == "type" or value is None:
            continue
        if name == "to":
            values[name] = "\n".join(value)
        elif name == "retain":
            values[name] = "true" if value else ""
        elif isinstance(value, str):
            values[name] = value
        elif name in _JSON_OBJECTS or name in _JSON_OR_TEXT:
            values[name] = json.dumps(value, indent=2, ensure_ascii=False)
        else:
            values[name] = str(value)
    return values


def summary(action: dict[str, Any]) -> str:
    """What an action does, in one line of JSON (its type and condition are shown apart)."""
    rest = {name: value for name, value in action.items() if name not in ("type", "condition")}
    return json.dumps(rest, ensure_ascii=False) if rest else ""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
