"""MQTT 5.0 reason codes [MQTT-2.4], 3.1.1 CONNACK return codes [MQTT-3.2.2.3], and the mapping between them."""

from __future__ import annotations

from enum import IntEnum

from mqtthub.mqtt.packets import PROTOCOL_V5


class ReasonCode(IntEnum):
    """Every MQTT 5.0 reason code [MQTT-2.4].

    0x00 means "success", "normal disconnection" or "granted QoS 0" depending on
    the packet; the aliases below name each meaning.
    """

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2


class ConnackReturnCode(IntEnum):
    """MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3]."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USER_NAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


_V311_RETURN_CODES: dict[int, int] = {
    ReasonCode.SUCCESS: ConnackReturnCode.ACCEPTED,
    ReasonCode.UNSUPPORTED_PROTOCOL_VERSION: ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,
    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID: ConnackReturnCode.IDENTIFIER_REJECTED,
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    ReasonCode.NOT_AUTHORIZED: ConnackReturnCode.NOT_AUTHORIZED,
    ReasonCode.BAD_AUTHENTICATION_METHOD: ConnackReturnCode.NOT_AUTHORIZED,
}


def connack_code_for(reason_code: int, protocol_level: int) -> int:
    """Return the CONNACK code to send for ``reason_code`` at ``protocol_level``.

    MQTT 5.0 clients get the reason code unchanged. For 3.1.1 (and 3.1) clients
    the spec has no table; the mapping follows the meaning of each code:

    * 0x00 Success → 0 Connection Accepted.
    * 0x84 Unsupported Protocol Version → 1 [MQTT-3.1.2-2].
    * 0x85 Client Identifier not valid → 2 Identifier rejected [MQTT-3.1.3-9].
    * 0x86 Bad User Name or Password → 4 Bad user name or password.
    * 0x87 Not authorized and 0x8C Bad authentication method → 5 Not authorized:
      both say "these credentials do not grant access".
    * Everything else (0x88 Server unavailable, 0x89 Server busy, 0x8A Banned,
      0x97 Quota exceeded, 0x9C/0x9D server moved, 0x9F connection rate
      exceeded, and any protocol error) → 3 Server unavailable: 3.1.1 has no
      finer code for "the server will not serve you now", and this is the code
      that tells a well-behaved client to retry later rather than change its
      credentials.

    Args:
        reason_code: An MQTT 5.0 CONNACK reason code.
        protocol_level: The client's protocol level (3, 4 or 5).

    Returns:
        The reason code for 5.0, otherwise a :class:`ConnackReturnCode` value.
    """
    if protocol_level == PROTOCOL_V5:
        return reason_code
    return _V311_RETURN_CODES.get(reason_code, ConnackReturnCode.SERVER_UNAVAILABLE)
