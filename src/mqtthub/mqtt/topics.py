"""Topic names, topic filters and shared subscriptions [MQTT-4.7], [MQTT-4.8.2].

Structural violations (a wildcard in a name, a misplaced ``#``) raise
:class:`~mqtthub.errors.ProtocolError` carrying 0x90 (topic name invalid) or
0x8F (topic filter invalid), which the broker can put in a PUBACK or SUBACK;
encoding violations (U+0000, more than 65535 bytes) raise
:class:`~mqtthub.errors.MalformedPacketError`.
"""

from __future__ import annotations

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt.reason_codes import ReasonCode

MAX_TOPIC_BYTES = 65_535
SHARE_PREFIX = "$share/"


def _check_encoding(text: str, what: str) -> None:
    if "\x00" in text:
        raise MalformedPacketError(f"{what} contains U+0000 [MQTT-1.5.4-2]")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MalformedPacketError(f"{what} holds a lone surrogate [MQTT-1.5.4-1]") from exc
    if size > MAX_TOPIC_BYTES:
        raise MalformedPacketError(f"{what} is longer than 65535 bytes [MQTT-4.7.3-3]")


def validate_topic_name(topic: str) -> None:
    """Check a topic name, as used in PUBLISH and in a will.

    Args:
        topic: The topic name.

    Raises:
        ProtocolError: Empty [MQTT-4.7.3-1] or containing ``+``/``#`` [MQTT-4.7.0-1]; reason code 0x90.
        MalformedPacketError: U+0000 [MQTT-4.7.3-2] or longer than 65535 bytes [MQTT-4.7.3-3].
    """
    if not topic:
        raise ProtocolError("empty topic name [MQTT-4.7.3-1]", reason_code=ReasonCode.TOPIC_NAME_INVALID)
    if "+" in topic or "#" in topic:
        raise ProtocolError(
            f"wildcard in topic name {topic!r} [MQTT-4.7.0-1]", reason_code=ReasonCode.TOPIC_NAME_INVALID
        )
    _check_encoding(topic, "topic name")


def fits_under(mountpoint: str, topic: str) -> bool:
    """Whether ``topic`` still fits an MQTT topic name once ``mountpoint`` is put before it [MQTT-4.7.3-3].

    A namespace prefix lengthens every topic; a client that may use the whole 65535 bytes would
    otherwise hand the broker a topic that no subscriber of the global namespace can be sent.
    """
    if len(mountpoint) + len(topic) <= MAX_TOPIC_BYTES // 4:
        return True  # at most four UTF-8 bytes per character: no need to encode
    return len(mountpoint.encode()) + len(topic.encode()) <= MAX_TOPIC_BYTES


def validate_topic_filter(topic_filter: str) -> None:
    """Check a topic filter, as used in SUBSCRIBE and UNSUBSCRIBE.

    Args:
        topic_filter: The topic filter (a shared filter is checked as a plain one; see :func:`parse_shared`).

    Raises:
        ProtocolError: Empty [MQTT-4.7.3-1], ``#`` not alone in the last level [MQTT-4.7.1-1], or ``+`` not
            alone in its level [MQTT-4.7.1-2]; reason code 0x8F.
        MalformedPacketError: U+0000 [MQTT-4.7.3-2] or longer than 65535 bytes [MQTT-4.7.3-3].
    """
    if not topic_filter:
        raise ProtocolError("empty topic filter [MQTT-4.7.3-1]", reason_code=ReasonCode.TOPIC_FILTER_INVALID)
    _check_encoding(topic_filter, "topic filter")
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            raise ProtocolError(
                f"'#' must be alone in the last level of {topic_filter!r} [MQTT-4.7.1-1]",
                reason_code=ReasonCode.TOPIC_FILTER_INVALID,
            )
        if "+" in level and level != "+":
            raise ProtocolError(
                f"'+' must be alone in its level of {topic_filter!r} [MQTT-4.7.1-2]",
                reason_code=ReasonCode.TOPIC_FILTER_INVALID,
            )


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split a shared subscription ``$share/{group}/{filter}`` into group and filter [MQTT-4.8.2].

    Args:
        topic_filter: A topic filter as received in SUBSCRIBE or UNSUBSCRIBE.

    Returns:
        ``(group, filter)`` for a shared subscription, ``(None, topic_filter)`` otherwise. Both forms are
        validated.

    Raises:
        ProtocolError: The group is missing, empty or holds a wildcard [MQTT-4.8.2-1], [MQTT-4.8.2-2], or the
            filter is invalid; reason code 0x8F.
        MalformedPacketError: See :func:`validate_topic_filter`.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        validate_topic_filter(topic_filter)
        return None, topic_filter
    group, separator, plain = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not separator or not group or "+" in group or "#" in group:
        raise ProtocolError(
            f"invalid share name in {topic_filter!r} [MQTT-4.8.2-1] [MQTT-4.8.2-2]",
            reason_code=ReasonCode.TOPIC_FILTER_INVALID,
        )
    validate_topic_filter(plain)
    return group, plain


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Tell whether ``topic`` matches ``topic_filter`` [MQTT-4.7.1].

    A filter starting with a wildcard does not match a topic starting with ``$`` [MQTT-4.7.2-1], and
    ``a/#`` matches ``a`` as well as everything below it [MQTT-4.7.1.2]. Both arguments are assumed valid.

    Args:
        topic_filter: A valid, non-shared topic filter.
        topic: A valid topic name.

    Returns:
        Whether a subscription to ``topic_filter`` receives messages published to ``topic``.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
