"""Encoding of control packets for MQTT 3.1.1 (levels 3 and 4) and 5.0 [MQTT-3].

At 3.1.1 the fields 5.0 added (properties, reason codes of acknowledgements, DISCONNECT and UNSUBACK reason
codes, subscription options above the QoS) are dropped. At 5.0 a reason code of 0 with no properties is
omitted where the spec allows [MQTT-3.4.2.1] [MQTT-3.14.2.1] [MQTT-3.15.2.1].
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from struct import Struct
from typing import Any

from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from mqtthub.mqtt.primitives import UINT16, encode_binary, encode_utf8, encode_varint, read_varint
from mqtthub.mqtt.properties import EMPTY, WILL, encode_properties

_HEAD_SHORT = Struct(">BBH")  # first byte, one-byte remaining length, topic length


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def encode_publish(
    topic: str | bytes,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties | None,
    protocol_level: int,
) -> bytes:
    """Encode a PUBLISH without building a :class:`Publish` first [MQTT-3.3].

    For fan-out, pass ``topic`` already UTF-8 encoded (``topic.encode()``) and encode it once for all
    subscribers; ``payload`` is never copied before the final join.

    Args:
        topic: The topic name, as text or as its UTF-8 bytes (without length prefix).
        payload: The application message.
        qos: 0, 1 or 2.
        retain: The RETAIN flag [MQTT-3.3.1-5].
        dup: The DUP flag; must be false at QoS 0 [MQTT-3.3.1-2].
        packet_id: Required at QoS 1 and 2, ``None`` at QoS 0 [MQTT-2.2.1-2].
        properties: 5.0 properties; ignored below level 5.
        protocol_level: The receiver's protocol level.

    Returns:
        The encoded packet.

    Raises:
        ValueError: Inconsistent QoS, packet identifier and DUP.
    """
    if isinstance(topic, str):
        topic = topic.encode()
    if qos:
        if not packet_id or packet_id > 0xFFFF or qos > 2:
            raise ValueError(f"QoS {qos} PUBLISH needs a packet identifier in 1..65535, got {packet_id!r}")
        # The packet identifier rides after the topic [MQTT-3.3.2.2].
        tail = UINT16.pack(packet_id)
        if protocol_level == PROTOCOL_V5:
            tail += encode_properties(properties, PacketType.PUBLISH) if properties is not None else EMPTY
    else:
        if packet_id is not None or dup:
            raise ValueError("QoS 0 PUBLISH has neither packet identifier nor DUP [MQTT-2.2.1-2] [MQTT-3.3.1-2]")
        if protocol_level == PROTOCOL_V5:
            tail = encode_properties(properties, PacketType.PUBLISH) if properties is not None else EMPTY
        else:
            tail = b""
    first = 0x30 | qos << 1 | retain | dup << 3
    remaining = 2 + len(topic) + len(tail) + len(payload)
    if remaining < 0x80:
        return b"".join((_HEAD_SHORT.pack(first, remaining, len(topic)), topic, tail, payload))
    return b"".join((publish_head(first, topic, remaining), tail, payload))


def encode_aliased_publish(
    topic: bytes,
    alias: int,
    payload: bytes,
    qos: int,
    retain: bool,
    packet_id: int | None,
    properties: Properties | None,
) -> bytes:
    """Encode a 5.0 PUBLISH carrying a Topic Alias [MQTT-3.3.2.3.4].

    Args:
        topic: The topic name as UTF-8 bytes while the alias is being set; ``b""`` once the receiver
            knows the alias.
        alias: The topic alias, 1 to the receiver's Topic Alias Maximum [MQTT-3.3.2-9].
        payload: The application message.
        qos: 0, 1 or 2.
        retain: The RETAIN flag.
        packet_id: Required at QoS 1 and 2 [MQTT-2.2.1-2].
        properties: The message's other properties, without a topic alias.

    Returns:
        The encoded packet.

    Raises:
        ValueError: Inconsistent QoS and packet identifier, or a field past its wire limit.
    """
    if (not qos) != (packet_id is None) or (packet_id is not None and not 0 < packet_id <= 0xFFFF) or qos > 2:
        raise ValueError(f"QoS {qos} PUBLISH with packet identifier {packet_id!r}")
    rest = encode_properties(properties, PacketType.PUBLISH) if properties is not None else EMPTY
    alias_property = b"\x23" + UINT16.pack(alias)
    if rest is EMPTY:
        props = b"\x03" + alias_property
    else:
        length, start = read_varint(rest, 0, len(rest))
        props = encode_varint(length + 3) + alias_property + rest[start:]
    tail = UINT16.pack(packet_id) + props if packet_id is not None else props
    first = 0x30 | qos << 1 | retain
    return b"".join((publish_head(first, topic, 2 + len(topic) + len(tail) + len(payload)), tail, payload))


def publish_head(first: int, topic: bytes, remaining: int) -> bytes:
    """Fixed header and topic name of a PUBLISH whose remaining length is ``remaining`` [MQTT-3.3.1]."""
    if remaining < 0x80:
        return _HEAD_SHORT.pack(first, remaining, len(topic)) + topic
    return bytes((first,)) + encode_varint(remaining) + encode_binary(topic)


def _publish(packet: Publish, level: int) -> bytes:
    return encode_publish(
        packet.topic,
        packet.payload,
        packet.qos,
        packet.retain,
        packet.dup,
        packet.packet_id,
        packet.properties,
        level,
    )


def _connect(packet: Connect, level: int) -> bytes:
    # CONNECT carries its own protocol level; the ``level`` argument cannot contradict it.
    level = packet.protocol_level
    v5 = level == PROTOCOL_V5
    will = packet.will
    flags = (packet.username is not None) << 7 | (packet.password is not None) << 6 | packet.clean_start << 1
    if will is not None:
        flags |= will.retain << 5 | will.qos << 3 | 4
    parts = [encode_utf8(packet.protocol_name), bytes((level, flags)), UINT16.pack(packet.keep_alive)]
    if v5:
        parts.append(encode_properties(packet.properties, PacketType.CONNECT))
    parts.append(encode_utf8(packet.client_id))
    if will is not None:
        if v5:
            parts.append(encode_properties(will.properties, WILL))
        parts += (encode_utf8(will.topic), encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_utf8(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return _packet(0x10, b"".join(parts))


def _connack(packet: Connack, level: int) -> bytes:
    body = bytes((packet.session_present, packet.reason_code))
    if level == PROTOCOL_V5:
        body += encode_properties(packet.properties, PacketType.CONNACK)
    return _packet(0x20, body)


def _ack_encoder(first: int, ptype: PacketType) -> Callable[[Any, int], bytes]:
    def encode(packet: Puback | Pubrec | Pubrel | Pubcomp, level: int) -> bytes:
        body = UINT16.pack(packet.packet_id)
        if level == PROTOCOL_V5:
            props = encode_properties(packet.properties, ptype)
            if props is not EMPTY:
                body += bytes((packet.reason_code,)) + props
            elif packet.reason_code:
                body += bytes((packet.reason_code,))
        return _packet(first, body)

    return encode


def _subscribe(packet: Subscribe, level: int) -> bytes:
    parts = [UINT16.pack(packet.packet_id)]
    v5 = level == PROTOCOL_V5
    if v5:
        parts.append(encode_properties(packet.properties, PacketType.SUBSCRIBE))
    for sub in packet.subscriptions:
        options = sub.qos
        if v5:
            options |= sub.no_local << 2 | sub.retain_as_published << 3 | sub.retain_handling << 4
        parts += (encode_utf8(sub.topic_filter), bytes((options,)))
    return _packet(0x82, b"".join(parts))


def _suback(packet: Suback, level: int) -> bytes:
    body = UINT16.pack(packet.packet_id)
    if level == PROTOCOL_V5:
        body += encode_properties(packet.properties, PacketType.SUBACK)
    return _packet(0x90, body + bytes(packet.reason_codes))


def _unsubscribe(packet: Unsubscribe, level: int) -> bytes:
    parts = [UINT16.pack(packet.packet_id)]
    if level == PROTOCOL_V5:
        parts.append(encode_properties(packet.properties, PacketType.UNSUBSCRIBE))
    parts += map(encode_utf8, packet.topic_filters)
    return _packet(0xA2, b"".join(parts))


def _unsuback(packet: Unsuback, level: int) -> bytes:
    body = UINT16.pack(packet.packet_id)
    if level == PROTOCOL_V5:
        body += encode_properties(packet.properties, PacketType.UNSUBACK) + bytes(packet.reason_codes)
    return _packet(0xB0, body)


def _reason_encoder(first: int, ptype: PacketType) -> Callable[[Any, int], bytes]:
    def encode(packet: Disconnect | Auth, level: int) -> bytes:
        if level != PROTOCOL_V5:
            if ptype == PacketType.AUTH:
                raise ValueError("AUTH exists only in MQTT 5.0 [MQTT-3.15]")
            return bytes((first, 0))
        props = encode_properties(packet.properties, ptype)
        if props is not EMPTY:
            return _packet(first, bytes((packet.reason_code,)) + props)
        if packet.reason_code:
            return bytes((first, 1, packet.reason_code))
        return bytes((first, 0))

    return encode


_PINGREQ = b"\xc0\x00"
_PINGRESP = b"\xd0\x00"

_ENCODERS: dict[type[Any], Callable[[Any, int], bytes]] = {
    Publish: _publish,
    Connect: _connect,
    Connack: _connack,
    Puback: _ack_encoder(0x40, PacketType.PUBACK),
    Pubrec: _ack_encoder(0x50, PacketType.PUBREC),
    Pubrel: _ack_encoder(0x62, PacketType.PUBREL),
    Pubcomp: _ack_encoder(0x70, PacketType.PUBCOMP),
    Subscribe: _subscribe,
    Suback: _suback,
    Unsubscribe: _unsubscribe,
    Unsuback: _unsuback,
    Pingreq: lambda packet, level: _PINGREQ,
    Pingresp: lambda packet, level: _PINGRESP,
    Disconnect: _reason_encoder(0xE0, PacketType.DISCONNECT),
    Auth: _reason_encoder(0xF0, PacketType.AUTH),
}


def encode(packet: Packet, protocol_level: int) -> bytes:
    """Encode any control packet for a peer at ``protocol_level`` (3, 4 or 5).

    A :class:`Connect` is encoded at its own ``protocol_level``. Fields the level has no place for are
    dropped (see the module docstring).

    Args:
        packet: The packet to encode.
        protocol_level: The peer's protocol level.

    Returns:
        The encoded packet, fixed header included.

    Raises:
        ValueError: A field the wire format cannot carry (AUTH below 5.0, QoS 0 with a packet identifier,
            an integer or a length out of its range, a packet above 268,435,455 bytes).
    """
    try:
        return _ENCODERS[type(packet)](packet, protocol_level)
    except struct.error as exc:  # an integer field out of its range
        raise ValueError(f"cannot encode {type(packet).__name__}: {exc}") from exc
