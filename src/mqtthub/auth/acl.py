"""Topic access rules: which filters a principal may publish to and subscribe with.

Every rule set is a pair of topic-filter lists, inside the principal's organization
namespace (the broker's mountpoint puts ``org/<short_id>/`` in front of everything, so a
rule can never reach another organization). A publish is allowed when its topic
matches one of the publish filters. A subscription is allowed when its filter is
*contained* in one of the subscribe filters: every topic it could match is matched by
the allowed filter too (``device/abc/telemetry/#`` inside ``device/+/telemetry/#``, but
not ``device/#``).

============  ========================================================  ==========================================
principal     publish                                                   subscribe
============  ========================================================  ==========================================
device        ``devices/{id}/datastream``, ``devices/{id}/status``,     ``devices/{id}/commands``,
              ``device/{id}/telemetry/#``, ``devices/{id}/commands/     ``organizations/{org id}/broadcast``
              reply``
app token     its ``publish`` filters (default none)                    its ``subscribe`` filters
                                                                        (default ``device/+/telemetry/#``)
user cert     none                                                      ``device/+/telemetry/#``,
                                                                        ``app/user/{user id}/sub``
anonymous     ``#``                                                     ``#``
============  ========================================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from mqtthub.errors import MQTTHubError, ValidationFailedError
from mqtthub.mqtt.topics import topic_matches, validate_topic_filter
from mqtthub.tenancy import filter_within

DEFAULT_APP_SUBSCRIBE = ("device/+/telemetry/#",)
MAX_FILTERS = 50
_SEPARATOR = "\x00"  # U+0000 cannot occur in a topic [MQTT-1.5.4-2], so it safely joins filters.


@dataclass(frozen=True, slots=True)
class TopicRules:
    """What a principal may publish to and subscribe with, as topic filters."""

    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    def may_publish(self, topic: str) -> bool:
        """Whether ``topic`` (a valid topic name) matches a publish filter."""
        return any(topic_matches(allowed, topic) for allowed in self.publish)

    def may_subscribe(self, topic_filter: str) -> bool:
        """Whether ``topic_filter`` (a valid, non-shared filter) lies within a subscribe filter."""
        return any(filter_within(topic_filter, allowed) for allowed in self.subscribe)

    def to_attributes(self) -> dict[str, str]:
        """The rules as string attributes of a broker principal."""
        return {"publish": _SEPARATOR.join(self.publish), "subscribe": _SEPARATOR.join(self.subscribe)}

    @classmethod
    def from_attributes(cls, attributes: object) -> TopicRules:
        """The rules stored by :meth:`to_attributes` (none when absent)."""
        get = getattr(attributes, "get", None)
        if get is None:
            return cls()
        publish, subscribe = get("publish") or "", get("subscribe") or ""
        return cls(
            tuple(publish.split(_SEPARATOR)) if publish else (), tuple(subscribe.split(_SEPARATOR)) if subscribe else ()
        )


def device_rules(device_id: str, organization_id: str) -> TopicRules:
    """A device's own topics (document 001), plus the reply topic of its commands."""
    return TopicRules(
        publish=(
            f"devices/{device_id}/datastream",
            f"devices/{device_id}/status",
            f"device/{device_id}/telemetry/#",
            f"devices/{device_id}/commands/reply",
        ),
        subscribe=(f"devices/{device_id}/commands", f"organizations/{organization_id}/broadcast"),
    )


def user_rules(user_id: str) -> TopicRules:
    """A user's certificate: read its organization's telemetry and its own inbox."""
    return TopicRules(subscribe=("device/+/telemetry/#", f"app/user/{user_id}/sub"))


ANONYMOUS_RULES = TopicRules(publish=("#",), subscribe=("#",))

ADMIN_RULES = TopicRules(publish=("#",), subscribe=("#", "$SYS/#"))
"""A platform administrator, in the global namespace: every organization's topics and ``$SYS``."""


def validate_permission_filters(filters: list[str], field: str) -> tuple[str, ...]:
    """Check custom permission filters of a token: valid MQTT filters, not ``$``-topics, no duplicates.

    Raises:
        ValidationFailedError: a filter is invalid, or there are too many.
    """
    if len(filters) > MAX_FILTERS:
        raise ValidationFailedError(f"at most {MAX_FILTERS} topic filters are allowed", field=field)
    checked: list[str] = []
    for topic_filter in filters:
        try:
            validate_topic_filter(topic_filter)
        except MQTTHubError as exc:
            raise ValidationFailedError(f"invalid topic filter {topic_filter!r}: {exc.message}", field=field) from None
        if topic_filter.startswith("$"):
            raise ValidationFailedError(
                f"topic filter {topic_filter!r}: '$' topics (shared subscriptions, $SYS) cannot be granted",
                field=field,
            )
        if topic_filter not in checked:
            checked.append(topic_filter)
    return tuple(checked)
