"""MQTT 5.0 properties [MQTT-2.2.2]: the identifier table, per-packet rules, encoding and decoding.

A property set travels as a variable byte integer length followed by identifier/value pairs. Which
identifiers a packet may carry is fixed by the spec's table in section 2.2.2.2; :data:`WILL` names the
will-properties context of CONNECT, which has its own set [MQTT-3.1.3.2].
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import attrgetter
from struct import Struct
from typing import Any

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt.packets import PacketType, Properties
from mqtthub.mqtt.primitives import (
    encode_binary,
    encode_utf8,
    encode_varint,
    read_binary,
    read_utf8,
    read_varint,
    truncated,
)

WILL = 0
"""Context key for will properties, which are not a packet type."""

EMPTY = b"\x00"
"""An encoded empty property set."""


# Data representations of property values [MQTT-2.2.2.2]; plain ints keep the decode loop cheap.
_BYTE, _UINT16, _UINT32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)


_P = PacketType
_ACKS = (_P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP)
_ALL = (WILL, *PacketType)

# identifier: (attribute, kind, contexts). The table order is the encoding order.
_TABLE: dict[int, tuple[str, int, tuple[int, ...]]] = {
    0x01: ("payload_format_indicator", _BYTE, (_P.PUBLISH, WILL)),
    0x02: ("message_expiry_interval", _UINT32, (_P.PUBLISH, WILL)),
    0x03: ("content_type", _UTF8, (_P.PUBLISH, WILL)),
    0x08: ("response_topic", _UTF8, (_P.PUBLISH, WILL)),
    0x09: ("correlation_data", _BINARY, (_P.PUBLISH, WILL)),
    0x0B: ("subscription_identifiers", _VARINT, (_P.PUBLISH, _P.SUBSCRIBE)),
    0x11: ("session_expiry_interval", _UINT32, (_P.CONNECT, _P.CONNACK, _P.DISCONNECT)),
    0x12: ("assigned_client_identifier", _UTF8, (_P.CONNACK,)),
    0x13: ("server_keep_alive", _UINT16, (_P.CONNACK,)),
    0x15: ("authentication_method", _UTF8, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    0x16: ("authentication_data", _BINARY, (_P.CONNECT, _P.CONNACK, _P.AUTH)),
    0x17: ("request_problem_information", _BYTE, (_P.CONNECT,)),
    0x18: ("will_delay_interval", _UINT32, (WILL,)),
    0x19: ("request_response_information", _BYTE, (_P.CONNECT,)),
    0x1A: ("response_information", _UTF8, (_P.CONNACK,)),
    0x1C: ("server_reference", _UTF8, (_P.CONNACK, _P.DISCONNECT)),
    0x1F: ("reason_string", _UTF8, (_P.CONNACK, *_ACKS, _P.SUBACK, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH)),
    0x21: ("receive_maximum", _UINT16, (_P.CONNECT, _P.CONNACK)),
    0x22: ("topic_alias_maximum", _UINT16, (_P.CONNECT, _P.CONNACK)),
    0x23: ("topic_alias", _UINT16, (_P.PUBLISH,)),
    0x24: ("maximum_qos", _BYTE, (_P.CONNACK,)),
    0x25: ("retain_available", _BYTE, (_P.CONNACK,)),
    0x26: ("user_properties", _PAIR, _ALL),
    0x27: ("maximum_packet_size", _UINT32, (_P.CONNECT, _P.CONNACK)),
    0x28: ("wildcard_subscription_available", _BYTE, (_P.CONNACK,)),
    0x29: ("subscription_identifier_available", _BYTE, (_P.CONNACK,)),
    0x2A: ("shared_subscription_available", _BYTE, (_P.CONNACK,)),
}

ALLOWED: dict[int, frozenset[int]] = {
    context: frozenset(ident for ident, (_, _, contexts) in _TABLE.items() if context in contexts) for context in _ALL
}
"""Property identifiers each packet type (and :data:`WILL`) may carry [MQTT-2.2.2.2]."""

# Allowed values where the spec restricts them: booleans must be 0 or 1, and a receive maximum, topic alias
# or maximum packet size of 0 is a protocol error [MQTT-3.1.2.11] [MQTT-3.3.2.3.4].
_BOOLEAN, _NON_ZERO = 1, 2
_CHECK_OF = dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), _BOOLEAN) | dict.fromkeys(
    (0x21, 0x23, 0x27), _NON_ZERO
)

# Per context, identifier -> (attribute, kind, check): one dict lookup per property while decoding.
_RULES: dict[int, dict[int, tuple[str, int, int]]] = {
    context: {
        ident: (attribute, kind, _CHECK_OF.get(ident, 0))
        for ident, (attribute, kind, contexts) in _TABLE.items()
        if context in contexts
    }
    for context in _ALL
}
_ID_UINT16 = Struct(">BH")
_ID_UINT32 = Struct(">BI")


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
    if pos >= end:
        raise truncated("property length")
    length = buf[pos]
    if length < 0x80:
        pos += 1
    else:
        length, pos = read_varint(buf, pos, end)
    if not length:
        return None, pos
    stop = pos + length
    if stop > end:
        raise truncated("properties")
    rules = _RULES[context]
    props = Properties()
    while pos < stop:
        ident = buf[pos]
        pos += 1
        rule = rules.get(ident)
        if rule is None:
            raise _refused(ident, context)
        attribute, kind, check = rule
        value: int | str | bytes
        if kind == _BYTE:
            if pos >= stop:
                raise truncated("byte property")
            value = buf[pos]
            pos += 1
        elif kind == _UINT32:
            if pos + 4 > stop:
                raise truncated("four byte integer property")
            value = buf[pos] << 24 | buf[pos + 1] << 16 | buf[pos + 2] << 8 | buf[pos + 3]
            pos += 4
        elif kind == _UINT16:
            if pos + 2 > stop:
                raise truncated("two byte integer property")
            value = buf[pos] << 8 | buf[pos + 1]
            pos += 2
        elif kind == _UTF8:
            value, pos = read_utf8(buf, pos, stop)
        elif kind == _BINARY:
            value, pos = read_binary(buf, pos, stop)
        elif kind == _PAIR:
            name, pos = read_utf8(buf, pos, stop)
            text, pos = read_utf8(buf, pos, stop)
            props.user_properties.append((name, text))
            continue
        else:
            number, pos = read_varint(buf, pos, stop)
            if not number:
                raise ProtocolError("subscription identifier 0 [MQTT-3.8.2.1.2]")
            if context == PacketType.SUBSCRIBE and props.subscription_identifiers:
                raise ProtocolError("more than one subscription identifier [MQTT-3.8.2.1.2]")
            props.subscription_identifiers.append(number)
            continue
        if check and (value not in (0, 1) if check == _BOOLEAN else not value):
            raise ProtocolError(f"property 0x{ident:02X} may not be {value!r} [MQTT-2.2.2.2]")
        if getattr(props, attribute) is not None:
            raise MalformedPacketError(f"property 0x{ident:02X} given twice [MQTT-2.2.2.2]")
        setattr(props, attribute, value)
    return props, pos


def encode_properties(props: Properties | None, context: int) -> bytes:
    """Encode the properties ``context`` allows, with their length; :data:`EMPTY` if there are none.

    Properties the packet type cannot carry are left out rather than refused, so the broker can pass on a
    received set (say a will's, into a PUBLISH) and the output is never malformed [MQTT-2.2.2.2].

    Raises:
        ValueError: A value out of the range of its data representation.
    """
    if props is None:
        return EMPTY
    parts: list[bytes] = []
    entries, getter = _ENCODERS[context]
    values = getter(props)
    if values.count(None) != len(values):
        try:
            for (ident, kind), value in zip(entries, values):  # noqa: B905 - same length by construction
                if value is None:
                    continue
                if kind == _BYTE:
                    parts.append(bytes((ident, value)))
                elif kind == _UINT32:
                    parts.append(_ID_UINT32.pack(ident, value))
                elif kind == _UINT16:
                    parts.append(_ID_UINT16.pack(ident, value))
                elif kind == _UTF8:
                    parts.append(bytes((ident,)) + encode_utf8(value))
                else:
                    parts.append(bytes((ident,)) + encode_binary(value))
        except (struct.error, ValueError) as exc:
            raise ValueError(f"property out of range: {exc}") from exc
    if props.subscription_identifiers and (context == PacketType.PUBLISH or context == PacketType.SUBSCRIBE):
        for number in props.subscription_identifiers:
            parts.append(b"\x0b" + encode_varint(number))
    if props.user_properties:
        for name, text in props.user_properties:
            parts.append(b"\x26" + encode_utf8(name) + encode_utf8(text))
    if not parts:
        return EMPTY
    body = b"".join(parts)
    return (bytes((len(body),)) if len(body) < 0x80 else encode_varint(len(body))) + body


def _scalar_encoder(context: int) -> tuple[tuple[tuple[int, int], ...], Callable[[Properties], tuple[Any, ...]]]:
    """The allowed single-valued properties of ``context`` and a getter returning their values as a tuple."""
    scalars = tuple((ident, kind) for ident, (_, kind, _) in _RULES[context].items() if kind not in (_VARINT, _PAIR))
    names = [_TABLE[ident][0] for ident, _ in scalars]
    if len(names) > 1:
        return scalars, attrgetter(*names)
    if names:
        single = attrgetter(names[0])
        return scalars, lambda props: (single(props),)
    return scalars, lambda props: ()


_ENCODERS = {context: _scalar_encoder(context) for context in _ALL}


def _refused(ident: int, context: int) -> MalformedPacketError:
    if ident in _TABLE:
        return MalformedPacketError(f"property 0x{ident:02X} not allowed in {_context_name(context)} [MQTT-2.2.2.2]")
    return MalformedPacketError(f"unknown property 0x{ident:02X} [MQTT-2.2.2.2]")


def _context_name(context: int) -> str:
    return "will properties" if context == WILL else PacketType(context).name
