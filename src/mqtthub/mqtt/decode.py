"""Decoding of one control packet's variable header and payload [MQTT-3].

Each decoder reads ``buf[pos:end]`` (the bytes after the fixed header) by offset and must consume it exactly;
:class:`~mqtthub.mqtt.codec.PacketReader` has already checked the fixed header flags [MQTT-2.2.2-2].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mqtthub.errors import MalformedPacketError, ProtocolError
from mqtthub.mqtt.packets import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Unsuback,
    Unsubscribe,
    Will,
)
from mqtthub.mqtt.primitives import read_binary, read_uint16, read_utf8, truncated
from mqtthub.mqtt.properties import WILL, decode_properties
from mqtthub.mqtt.reason_codes import ReasonCode

Decoder = Callable[[bytes, int, int, int, int], Packet]

_P = TypeVar("_P", bound=Packet)

_PROTOCOL_NAMES = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}


def _done(pos: int, end: int, packet: _P) -> _P:
    if pos != end:
        raise MalformedPacketError(f"{type(packet).__name__} has {end - pos} trailing bytes")
    return packet


def _packet_id(buf: bytes, pos: int, end: int) -> int:
    packet_id = read_uint16(buf, pos, end)
    if not packet_id:
        raise MalformedPacketError("packet identifier 0 [MQTT-2.2.1-3]")
    return packet_id


def decode_publish(buf: bytes, pos: int, end: int, flags: int, level: int) -> Publish:
    """Decode PUBLISH [MQTT-3.3]. The broker's hot path: reads are inlined and checks ordered by frequency."""
    if pos + 2 > end:
        raise truncated("topic name")
    stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise truncated("topic name")
    try:
        topic = buf[pos + 2 : stop].decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacketError("topic name is not well-formed UTF-8 [MQTT-1.5.4-1]") from exc
    if "\x00" in topic or "+" in topic or "#" in topic:
        raise _bad_topic(topic)
    qos = flags >> 1 & 3
    packet_id = None
    if qos:
        if qos == 3:
            raise MalformedPacketError("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
        if stop + 2 > end:
            raise truncated("packet identifier")
        packet_id = buf[stop] << 8 | buf[stop + 1]
        if not packet_id:
            raise MalformedPacketError("packet identifier 0 [MQTT-2.2.1-3]")
        stop += 2
    elif flags & 8:
        raise MalformedPacketError("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
    properties = None
    if level == PROTOCOL_V5:
        if stop < end and not buf[stop]:
            stop += 1  # no properties, the common case
        else:
            properties, stop = decode_properties(buf, stop, end, PacketType.PUBLISH)
        if not topic and (properties is None or properties.topic_alias is None):
            raise ProtocolError("empty topic name without topic alias [MQTT-3.3.2-8]")
    elif not topic:
        raise ProtocolError("empty topic name [MQTT-4.7.3-1]")
    return Publish(topic, buf[stop:end], qos, flags & 1 == 1, flags & 8 == 8, packet_id, properties)


def _bad_topic(topic: str) -> ProtocolError:
    if "\x00" in topic:
        return MalformedPacketError("topic name contains U+0000 [MQTT-1.5.4-2]")
    return ProtocolError("wildcard in PUBLISH topic [MQTT-3.3.2-2]", reason_code=ReasonCode.TOPIC_NAME_INVALID)


def decode_connect(buf: bytes, pos: int, end: int, flags: int, level: int) -> Connect:
    """Decode CONNECT [MQTT-3.1]; the protocol level comes from the packet, not from ``level``.

    A level or protocol name the broker does not speak raises :class:`ProtocolError` 0x84 with
    ``connack_level`` set, so the broker answers CONNACK before closing [MQTT-3.1.2-2]: in the 5.0 layout
    for a level-5 CONNECT, otherwise in the 3.1.1 layout (return code 1), the one every version reads.
    Any other error in a level-5 CONNECT also carries ``connack_level`` 5: a 5.0 client may be told why
    before the close [MQTT-3.1.4-1] [MQTT-4.13.1-1]. 3.1.1 has no CONNACK for a malformed CONNECT.
    """
    name, pos = read_utf8(buf, pos, end)
    if pos + 4 > end:
        raise truncated("CONNECT variable header")
    level = buf[pos]
    connect_flags = buf[pos + 1]
    keep_alive = buf[pos + 2] << 8 | buf[pos + 3]
    pos += 4
    if level not in _PROTOCOL_NAMES or name != _PROTOCOL_NAMES[level]:
        raise ProtocolError(
            f"unsupported protocol {name!r} level {level} [MQTT-3.1.2-1] [MQTT-3.1.2-2]",
            reason_code=ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
            connack_level=PROTOCOL_V5 if level == PROTOCOL_V5 else PROTOCOL_V311,
        )
    if level != PROTOCOL_V5:
        return _connect_body(buf, pos, end, name, level, connect_flags, keep_alive)
    try:
        return _connect_body(buf, pos, end, name, level, connect_flags, keep_alive)
    except ProtocolError as exc:
        exc.connack_level = PROTOCOL_V5
        raise


def _connect_body(
    buf: bytes, pos: int, end: int, name: str, level: int, connect_flags: int, keep_alive: int
) -> Connect:
    if connect_flags & 1:
        raise MalformedPacketError("reserved CONNECT flag set [MQTT-3.1.2-3]")
    will_qos = (connect_flags >> 3) & 3
    has_will = bool(connect_flags & 4)
    if will_qos == 3:
        raise MalformedPacketError("will QoS 3 [MQTT-3.1.2-12]")
    if not has_will and (will_qos or connect_flags & 0x20):
        raise MalformedPacketError("will QoS or retain without will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13]")
    if level != PROTOCOL_V5 and connect_flags & 0x40 and not connect_flags & 0x80:
        raise MalformedPacketError("password without user name [MQTT-3.1.2-22]")
    properties = None
    if level == PROTOCOL_V5:
        properties, pos = decode_properties(buf, pos, end, PacketType.CONNECT)
    client_id, pos = read_utf8(buf, pos, end)
    will = None
    if has_will:
        will_properties = None
        if level == PROTOCOL_V5:
            will_properties, pos = decode_properties(buf, pos, end, WILL)
        will_topic, pos = read_utf8(buf, pos, end)
        will_payload, pos = read_binary(buf, pos, end)
        will = Will(will_topic, will_payload, will_qos, bool(connect_flags & 0x20), will_properties)
    username = password = None
    if connect_flags & 0x80:
        username, pos = read_utf8(buf, pos, end)
    if connect_flags & 0x40:
        password, pos = read_binary(buf, pos, end)
    packet = Connect(client_id, level, name, bool(connect_flags & 2), keep_alive, username, password, will, properties)
    return _done(pos, end, packet)


def decode_connack(buf: bytes, pos: int, end: int, flags: int, level: int) -> Connack:
    """Decode CONNACK [MQTT-3.2]."""
    if pos + 2 > end:
        raise truncated("CONNACK")
    if buf[pos] & 0xFE:
        raise MalformedPacketError("reserved CONNACK flags set [MQTT-3.2.2-1]")
    packet = Connack(bool(buf[pos] & 1), buf[pos + 1])
    pos += 2
    if level == PROTOCOL_V5:
        packet.properties, pos = decode_properties(buf, pos, end, PacketType.CONNACK)
    return _done(pos, end, packet)


def _ack_decoder(cls: type[Puback | Pubrec | Pubrel | Pubcomp], ptype: PacketType) -> Decoder:
    def decode(buf: bytes, pos: int, end: int, flags: int, level: int) -> Packet:
        packet = cls(_packet_id(buf, pos, end))
        pos += 2
        # 5.0 may omit the reason code (0x00) and the properties (none) [MQTT-3.4.2.1].
        if level == PROTOCOL_V5 and pos < end:
            packet.reason_code = buf[pos]
            if pos + 1 < end:
                packet.properties, pos = decode_properties(buf, pos + 1, end, ptype)
            else:
                pos += 1
        return _done(pos, end, packet)

    return decode


def decode_subscribe(buf: bytes, pos: int, end: int, flags: int, level: int) -> Subscribe:
    """Decode SUBSCRIBE [MQTT-3.8]. Filters are not validated here: 5.0 refuses them one by one in SUBACK."""
    packet = Subscribe(_packet_id(buf, pos, end), [])
    pos += 2
    if level == PROTOCOL_V5:
        packet.properties, pos = decode_properties(buf, pos, end, PacketType.SUBSCRIBE)
    reserved = 0xC0 if level == PROTOCOL_V5 else 0xFC
    while pos < end:
        topic_filter, pos = read_utf8(buf, pos, end)
        if pos >= end:
            raise truncated("subscription options")
        options = buf[pos]
        pos += 1
        if options & reserved:
            raise MalformedPacketError("reserved subscription option bits set [MQTT-3.8.3-5]")
        if options & 3 == 3:
            raise MalformedPacketError("subscription with QoS 3 [MQTT-3-8.3-4]")
        if options & 0x30 == 0x30:
            raise ProtocolError("retain handling 3 [MQTT-3.8.3.1]")
        packet.subscriptions.append(
            SubscriptionRequest(topic_filter, options & 3, bool(options & 4), bool(options & 8), options >> 4)
        )
    if not packet.subscriptions:
        raise ProtocolError("SUBSCRIBE without topic filter [MQTT-3.8.3-2]")
    return packet


def decode_suback(buf: bytes, pos: int, end: int, flags: int, level: int) -> Suback:
    """Decode SUBACK [MQTT-3.9]."""
    packet = Suback(_packet_id(buf, pos, end), [])
    pos += 2
    if level == PROTOCOL_V5:
        packet.properties, pos = decode_properties(buf, pos, end, PacketType.SUBACK)
    packet.reason_codes = list(buf[pos:end])
    return packet


def decode_unsubscribe(buf: bytes, pos: int, end: int, flags: int, level: int) -> Unsubscribe:
    """Decode UNSUBSCRIBE [MQTT-3.10]."""
    packet = Unsubscribe(_packet_id(buf, pos, end), [])
    pos += 2
    if level == PROTOCOL_V5:
        packet.properties, pos = decode_properties(buf, pos, end, PacketType.UNSUBSCRIBE)
    while pos < end:
        topic_filter, pos = read_utf8(buf, pos, end)
        packet.topic_filters.append(topic_filter)
    if not packet.topic_filters:
        raise ProtocolError("UNSUBSCRIBE without topic filter [MQTT-3.10.3-2]")
    return packet


def decode_unsuback(buf: bytes, pos: int, end: int, flags: int, level: int) -> Unsuback:
    """Decode UNSUBACK [MQTT-3.11]; 3.1.1 has no reason codes."""
    packet = Unsuback(_packet_id(buf, pos, end))
    pos += 2
    if level == PROTOCOL_V5:
        packet.properties, pos = decode_properties(buf, pos, end, PacketType.UNSUBACK)
        packet.reason_codes = list(buf[pos:end])
        pos = end
    return _done(pos, end, packet)


def _empty_decoder(cls: type[Pingreq | Pingresp]) -> Decoder:
    def decode(buf: bytes, pos: int, end: int, flags: int, level: int) -> Packet:
        return _done(pos, end, cls())

    return decode


def _reason_decoder(cls: type[Disconnect | Auth], ptype: PacketType) -> Decoder:
    def decode(buf: bytes, pos: int, end: int, flags: int, level: int) -> Packet:
        packet = cls()
        # 5.0 may omit the reason code (0x00) and the properties [MQTT-3.14.2.1] [MQTT-3.15.2.1].
        if level == PROTOCOL_V5 and pos < end:
            packet.reason_code = buf[pos]
            if pos + 1 < end:
                packet.properties, pos = decode_properties(buf, pos + 1, end, ptype)
            else:
                pos += 1
        return _done(pos, end, packet)

    return decode


DECODERS: dict[int, Decoder] = {
    PacketType.CONNECT: decode_connect,
    PacketType.CONNACK: decode_connack,
    PacketType.PUBLISH: decode_publish,
    PacketType.PUBACK: _ack_decoder(Puback, PacketType.PUBACK),
    PacketType.PUBREC: _ack_decoder(Pubrec, PacketType.PUBREC),
    PacketType.PUBREL: _ack_decoder(Pubrel, PacketType.PUBREL),
    PacketType.PUBCOMP: _ack_decoder(Pubcomp, PacketType.PUBCOMP),
    PacketType.SUBSCRIBE: decode_subscribe,
    PacketType.SUBACK: decode_suback,
    PacketType.UNSUBSCRIBE: decode_unsubscribe,
    PacketType.UNSUBACK: decode_unsuback,
    PacketType.PINGREQ: _empty_decoder(Pingreq),
    PacketType.PINGRESP: _empty_decoder(Pingresp),
    PacketType.DISCONNECT: _reason_decoder(Disconnect, PacketType.DISCONNECT),
    PacketType.AUTH: _reason_decoder(Auth, PacketType.AUTH),
}
"""Decoder per packet type; AUTH is only reachable at protocol level 5."""
