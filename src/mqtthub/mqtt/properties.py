"""MQTT 5.0 properties [MQTT-2.2.2]: the identifier table, per-packet rules, encoding and decoding.

A property set travels as a variable byte integer length followed by identifier/value pairs. Which
identifiers a packet may carry is fixed by the spec's table in section 2.2.2.2; :data:`WILL` names the
will-properties context of CONNECT, which has its own set [MQTT-3.1.3.2].
"""

from __future__ import annotations

from enum import Enum

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt.packets import PacketType, Properties
from mqtthub.mqtt.primitives import (
    UINT16,
    UINT32,
    encode_binary,
    encode_utf8,
    encode_varint,
    read_binary,
    read_uint16,
    read_uint32,
    read_utf8,
    read_varint,
    truncated,
)

WILL = 0
"""Context key for will properties, which are not a packet type."""

EMPTY = b"\x00"
"""An encoded empty property set."""


class Kind(Enum):
    """Data representation of a property value [MQTT-2.2.2.2]."""

    BYTE = 1
    UINT16 = 2
    UINT32 = 3
    VARINT = 4
    UTF8 = 5
    BINARY = 6
    PAIR = 7


_P = PacketType
_ACKS = (_P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP)
_ALL = (WILL, *PacketType)

# identifier: (attribute, kind, contexts). The table order is the encoding order.
_TABLE: dict[int, tuple[str, Kind, tuple[int, ...]]] = {
    0x01: ("payload_format_indicator", Kind.BYTE, (_P.PUBLISH, WILL)),
    0x02: ("message_expiry_interval", Kind.UINT32, (_P.PUBLISH, WILL)),
    0x03: ("content_type", Kind.UTF8, (_P.PUBLISH, WILL)),
    0x08: ("response_topic", Kind.UTF8, (_P.PUBLISH, WILL)),
    0x09: ("correlation_data", Kind.BINARY, (_P.PUBLISH, WILL)),
    0x0B: ("subscription_identifiers", Kind.VARINT, (_P.PUBLISH, _P.SUBSCRIBE)),
    0x11: ("session_expiry_interval", Kind.UINT32, (_P.CONNECT, _P.CONNACK, _P.DISCONNECT)),
    0x12: ("assigned_client_identifier", Kind.UTF8, (_P.CONNACK,)),
    0x13: ("server_keep_alive", Kind.UINT16, (_P.CONNACK,)),
    0x15: ("authentication_method", Kind.UTF8, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    0x16: ("authentication_data", Kind.BINARY, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    0x17: ("request_problem_information", Kind.BYTE, (_P.CONNECT,)),
    0x18: ("will_delay_interval", Kind.UINT32, (WILL,)),
    0x19: ("request_response_information", Kind.BYTE, (_P.CONNECT,)),
    0x1A: ("response_information", Kind.UTF8, (_P.CONNACK,)),
    0x1C: ("server_reference", Kind.UTF8, (_P.CONNACK, _P.DISCONNECT)),
    0x1F: ("reason_string", Kind.UTF8, (_P.CONNACK, *_ACKS, _P.SUBACK, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH)),
    0x21: ("receive_maximum", Kind.UINT16, (_P.CONNECT, _P.CONNACK)),
    0x22: ("topic_alias_maximum", Kind.UINT16, (_P.CONNECT, _P.CONNACK)),
    0x23: ("topic_alias", Kind.UINT16, (_P.PUBLISH,)),
    0x24: ("maximum_qos", Kind.BYTE, (_P.CONNACK,)),
    0x25: ("retain_available", Kind.BYTE, (_P.CONNACK,)),
    0x26: ("user_properties", Kind.PAIR, _ALL),
    0x27: ("maximum_packet_size", Kind.UINT32, (_P.CONNECT, _P.CONNACK)),
    0x28: ("wildcard_subscription_available", Kind.BYTE, (_P.CONNACK,)),
    0x29: ("subscription_identifier_available", Kind.BYTE, (_P.CONNACK,)),
    0x2A: ("shared_subscription_available", Kind.BYTE, (_P.CONNACK,)),
}

ALLOWED: dict[int, frozenset[int]] = {
    context: frozenset(ident for ident, (_, _, contexts) in _TABLE.items() if context in contexts) for context in _ALL
}
"""Property identifiers each packet type (and :data:`WILL`) may carry [MQTT-2.2.2.2]."""

# Byte properties that are booleans, and numeric ones for which 0 is a protocol error.
_BOOLEAN = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
_NON_ZERO = frozenset({0x0B, 0x21, 0x23, 0x27})
_MULTIPLE = frozenset({0x0B, 0x26})


def decode_properties(buf: bytes, pos: int, end: int, context: int) -> tuple[Properties | None, int]:
    """Decode the property set at ``pos``; ``None`` when it is empty.

    Args:
        buf: The buffer holding the packet.
        pos: Offset of the property length.
        end: End of the packet.
        context: A :class:`PacketType` or :data:`WILL`, selecting the allowed identifiers.

    Returns:
        The properties and the offset after them.

    Raises:
        MalformedPacketError: Truncated, unknown identifier, identifier not allowed in ``context``, or a
            property other than user property and subscription identifier given twice [MQTT-2.2.2.2].
        ProtocolError: A value the spec forbids (0 where it must be non-zero, a boolean not 0 or 1, more than
            one subscription identifier in SUBSCRIBE [MQTT-3.8.2.1.2]).
    """
    length, pos = read_varint(buf, pos, end)
    if not length:
        return None, pos
    stop = pos + length
    if stop > end:
        raise truncated("properties")
    allowed = ALLOWED[context]
    props = Properties()
    seen: set[int] = set()
    while pos < stop:
        ident = buf[pos]
        pos += 1
        entry = _TABLE.get(ident)
        if entry is None:
            raise MalformedPacketError(f"unknown property 0x{ident:02X}")
        if ident not in allowed:
            raise MalformedPacketError(f"property 0x{ident:02X} not allowed in {_context_name(context)}")
        if ident in seen and ident not in _MULTIPLE:
            raise MalformedPacketError(f"property 0x{ident:02X} given twice")
        seen.add(ident)
        attribute, kind, _ = entry
        value: int | str | bytes
        if kind is Kind.BYTE:
            if pos >= stop:
                raise truncated("byte property")
            value = buf[pos]
            pos += 1
        elif kind is Kind.UINT16:
            value = read_uint16(buf, pos, stop)
            pos += 2
        elif kind is Kind.UINT32:
            value = read_uint32(buf, pos, stop)
            pos += 4
        elif kind is Kind.VARINT:
            value, pos = read_varint(buf, pos, stop)
        elif kind is Kind.UTF8:
            value, pos = read_utf8(buf, pos, stop)
        elif kind is Kind.BINARY:
            value, pos = read_binary(buf, pos, stop)
        else:
            name, pos = read_utf8(buf, pos, stop)
            text, pos = read_utf8(buf, pos, stop)
            props.user_properties.append((name, text))
            continue
        if ident in _BOOLEAN and value not in (0, 1):
            raise ProtocolError(f"property 0x{ident:02X} must be 0 or 1, got {value!r}")
        if ident in _NON_ZERO and value == 0:
            raise ProtocolError(f"property 0x{ident:02X} must not be 0")
        if ident == 0x0B:
            if context == _P.SUBSCRIBE and props.subscription_identifiers:
                raise ProtocolError("more than one subscription identifier [MQTT-3.8.2.1.2]")
            props.subscription_identifiers.append(value)  # type: ignore[arg-type]
        else:
            setattr(props, attribute, value)
    return props, pos


def encode_properties(props: Properties | None, context: int) -> bytes:
    """Encode a property set with its length; :data:`EMPTY` for ``None`` or no property set.

    Raises:
        ValueError: A property set that ``context`` does not allow [MQTT-2.2.2.2].
    """
    if props is None:
        return EMPTY
    parts: list[bytes] = []
    allowed = ALLOWED[context]
    for ident, (attribute, kind, _) in _TABLE.items():
        value = getattr(props, attribute)
        if value is None or value == []:
            continue
        if ident not in allowed:
            raise ValueError(f"property {attribute} not allowed in {_context_name(context)}")
        if kind is Kind.PAIR:
            parts.extend(b"\x26" + encode_utf8(name) + encode_utf8(text) for name, text in value)
        elif kind is Kind.VARINT:
            parts.extend(b"\x0b" + encode_varint(number) for number in value)
        elif kind is Kind.BYTE:
            parts.append(bytes((ident, value)))
        elif kind is Kind.UINT16:
            parts.append(bytes((ident,)) + UINT16.pack(value))
        elif kind is Kind.UINT32:
            parts.append(bytes((ident,)) + UINT32.pack(value))
        elif kind is Kind.UTF8:
            parts.append(bytes((ident,)) + encode_utf8(value))
        else:
            parts.append(bytes((ident,)) + encode_binary(value))
    if not parts:
        return EMPTY
    body = b"".join(parts)
    return encode_varint(len(body)) + body


def _context_name(context: int) -> str:
    return "will properties" if context == WILL else PacketType(context).name
