"""MQTT control packets as plain data, shared by the codec and the broker.

One dataclass per control packet type of MQTT 3.1.1 and 5.0. The codec
(:mod:`mqtthub.mqtt.codec`) turns bytes into these objects and back; the broker
works only with these objects. ``properties`` is ``None`` for MQTT 3.1.1 packets
and for MQTT 5.0 packets that carry no properties, so the hot path of a v3.1.1
PUBLISH allocates nothing beyond the packet itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class PacketType(IntEnum):
    """Control packet types, the high nibble of the fixed header [MQTT-2.1.2]."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


PROTOCOL_V311 = 4
PROTOCOL_V5 = 5


@dataclass(slots=True)
class Properties:
    """MQTT 5.0 properties [MQTT-2.2.2]. Unset properties are ``None``.

    ``subscription_identifiers`` may hold several values on a PUBLISH sent to a
    client (one per matching subscription) and at most one on a SUBSCRIBE.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: list[int] = field(default_factory=list)
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None


@dataclass(slots=True)
class Will:
    """The will message carried by CONNECT [MQTT-3.1.2-8]."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties | None = None


@dataclass(slots=True)
class Connect:
    """CONNECT [MQTT-3.1]. ``protocol_level`` is 4 (3.1.1) or 5 (5.0); 3 (3.1) is accepted too."""

    client_id: str
    protocol_level: int = PROTOCOL_V311
    protocol_name: str = "MQTT"
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties | None = None


@dataclass(slots=True)
class Connack:
    """CONNACK [MQTT-3.2]. ``reason_code`` is the 3.1.1 return code or the 5.0 reason code."""

    session_present: bool = False
    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class Publish:
    """PUBLISH [MQTT-3.3]. ``packet_id`` is ``None`` for QoS 0.

    ``topic`` may be empty in a received MQTT 5.0 PUBLISH that uses a topic alias;
    the receiver resolves the alias.
    """

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties | None = None


@dataclass(slots=True)
class Puback:
    """PUBACK [MQTT-3.4]."""

    packet_id: int
    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class Pubrec:
    """PUBREC [MQTT-3.5]."""

    packet_id: int
    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class Pubrel:
    """PUBREL [MQTT-3.6]."""

    packet_id: int
    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class Pubcomp:
    """PUBCOMP [MQTT-3.7]."""

    packet_id: int
    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class SubscriptionRequest:
    """One topic filter of a SUBSCRIBE with its options [MQTT-3.8.3.1]."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True)
class Subscribe:
    """SUBSCRIBE [MQTT-3.8]."""

    packet_id: int
    subscriptions: list[SubscriptionRequest]
    properties: Properties | None = None


@dataclass(slots=True)
class Suback:
    """SUBACK [MQTT-3.9]: one return/reason code per requested filter."""

    packet_id: int
    reason_codes: list[int]
    properties: Properties | None = None


@dataclass(slots=True)
class Unsubscribe:
    """UNSUBSCRIBE [MQTT-3.10]."""

    packet_id: int
    topic_filters: list[str]
    properties: Properties | None = None


@dataclass(slots=True)
class Unsuback:
    """UNSUBACK [MQTT-3.11]. ``reason_codes`` is empty for 3.1.1."""

    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties | None = None


@dataclass(slots=True)
class Pingreq:
    """PINGREQ [MQTT-3.12]."""


@dataclass(slots=True)
class Pingresp:
    """PINGRESP [MQTT-3.13]."""


@dataclass(slots=True)
class Disconnect:
    """DISCONNECT [MQTT-3.14]; reason code and properties are 5.0 only."""

    reason_code: int = 0
    properties: Properties | None = None


@dataclass(slots=True)
class Auth:
    """AUTH [MQTT-3.15], 5.0 only."""

    reason_code: int = 0
    properties: Properties | None = None


Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)
