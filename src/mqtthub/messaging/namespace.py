"""An organization's topic namespace inside the broker, and the checks on topics the API is given.

The checks raise :class:`ValueError`, so that inside a pydantic model they become FastAPI's
422 shape; endpoints that take a topic in the path or query wrap them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi.exceptions import RequestValidationError

from mqtthub.errors import MQTTHubError
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from mqtthub.mqtt.topics import validate_topic_filter, validate_topic_name
from mqtthub.tenancy import namespace_prefix


@dataclass(frozen=True, slots=True)
class Namespace:
    """Maps an organization's topics (as its callers see them) to full internal topics and back."""

    prefix: str

    def internal(self, topic: str) -> str:
        """The internal topic or filter of an already checked caller topic or filter."""
        return self.prefix + topic

    def external(self, internal_topic: str) -> str:
        """The caller's view of an internal topic of this namespace."""
        return internal_topic[len(self.prefix) :] if internal_topic.startswith(self.prefix) else internal_topic


def _check_common(value: str) -> None:
    if len(value) > MAX_RECORDED_TOPIC_LENGTH:
        raise ValueError(f"topic is longer than {MAX_RECORDED_TOPIC_LENGTH} characters")
    if value.startswith("$"):
        raise ValueError("topics starting with '$' (system and shared topics) are not available here")


def check_topic_name(topic: str) -> str:
    """Return ``topic`` if the API accepts it as a topic name (no wildcards), else raise ValueError."""
    _check_common(topic)
    try:
        validate_topic_name(topic)
    except MQTTHubError as exc:
        raise ValueError(exc.message) from None
    return topic


def check_topic_filter(topic_filter: str) -> str:
    """Return ``topic_filter`` if the API accepts it as a filter (``+``/``#`` allowed), else raise ValueError."""
    _check_common(topic_filter)
    try:
        validate_topic_filter(topic_filter)
    except MQTTHubError as exc:
        raise ValueError(exc.message) from None
    return topic_filter


def checked(check: Callable[[str], str], topic: str, location: str, name: str = "topic") -> str:
    """``check(topic)``, its ValueError turned into FastAPI's 422 for a path or query parameter ``name``."""
    try:
        return check(topic)
    except ValueError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": (location, name), "msg": str(exc), "input": topic}]
        ) from None


@dataclass(frozen=True, slots=True)
class OrgScope:
    """The organization a call acts for, and its namespace."""

    organization_id: str
    namespace: Namespace

    @classmethod
    def of(cls, organization_id: str, short_id: str) -> OrgScope:
        """The scope of an organization given its id and short id."""
        return cls(organization_id, Namespace(namespace_prefix(short_id)))
