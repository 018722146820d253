"""Hypothesis strategies for MQTT packets, written from the spec's tables rather than from the codec's."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from mqtthub.mqtt import (
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
    SubscriptionRequest,
    Unsuback,
    Unsubscribe,
    Will,
)
from mqtthub.mqtt.properties import ALLOWED, WILL

texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
topic_names = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00+#"), min_size=1, max_size=20)
topic_filters = st.one_of(topic_names, st.sampled_from(["#", "+", "a/+/b", "a/#", "+/+", "$SYS/#"]))
packet_ids = st.integers(1, 0xFFFF)
byte = st.integers(0, 0xFF)
uint16 = st.integers(0, 0xFFFF)
uint32 = st.integers(0, 0xFFFF_FFFF)
boolean = st.integers(0, 1)

# identifier -> (attribute, value strategy), from MQTT 5.0 section 2.2.2.2.
PROPERTY_VALUES: dict[int, tuple[str, st.SearchStrategy[Any]]] = {
    0x01: ("payload_format_indicator", boolean),
    0x02: ("message_expiry_interval", uint32),
    0x03: ("content_type", texts),
    0x08: ("response_topic", topic_names),
    0x09: ("correlation_data", st.binary(max_size=16)),
    0x0B: ("subscription_identifiers", st.lists(st.integers(1, 268_435_455), min_size=1, max_size=3)),
    0x11: ("session_expiry_interval", uint32),
    0x12: ("assigned_client_identifier", texts),
    0x13: ("server_keep_alive", uint16),
    0x15: ("authentication_method", texts),
    0x16: ("authentication_data", st.binary(max_size=16)),
    0x17: ("request_problem_information", boolean),
    0x18: ("will_delay_interval", uint32),
    0x19: ("request_response_information", boolean),
    0x1A: ("response_information", texts),
    0x1C: ("server_reference", texts),
    0x1F: ("reason_string", texts),
    0x21: ("receive_maximum", st.integers(1, 0xFFFF)),
    0x22: ("topic_alias_maximum", uint16),
    0x23: ("topic_alias", st.integers(1, 0xFFFF)),
    0x24: ("maximum_qos", boolean),
    0x25: ("retain_available", boolean),
    0x26: ("user_properties", st.lists(st.tuples(texts, texts), min_size=1, max_size=3)),
    0x27: ("maximum_packet_size", st.integers(1, 0xFFFF_FFFF)),
    0x28: ("wildcard_subscription_available", boolean),
    0x29: ("subscription_identifier_available", boolean),
    0x2A: ("shared_subscription_available", boolean),
}


@st.composite
def properties(draw: st.DrawFn, context: int) -> Properties | None:
    """A non-empty property set that ``context`` allows, or ``None`` (the two forms that round-trip)."""
    idents = draw(st.sets(st.sampled_from(sorted(ALLOWED[context])), max_size=5))
    if not idents:
        return None
    props = Properties()
    for ident in idents:
        attribute, values = PROPERTY_VALUES[ident]
        value = draw(values)
        if ident == 0x0B and context == PacketType.SUBSCRIBE:
            value = value[:1]
        setattr(props, attribute, value)
    return props


def _props(level: int, context: int) -> st.SearchStrategy[Properties | None]:
    return properties(context) if level == PROTOCOL_V5 else st.none()


def _code(level: int) -> st.SearchStrategy[int]:
    return byte if level == PROTOCOL_V5 else st.just(0)


@st.composite
def connects(draw: st.DrawFn, level: int) -> Connect:
    """CONNECT at ``level`` (3, 4 or 5)."""
    will = None
    if draw(st.booleans()):
        will = Will(
            draw(topic_names), draw(st.binary(max_size=20)), draw(st.integers(0, 2)), draw(st.booleans()),
            draw(_props(level, WILL)),
        )  # fmt: skip
    username = draw(st.none() | texts)
    password = draw(st.none() | st.binary(max_size=12))
    if level != PROTOCOL_V5 and username is None:
        password = None  # 3.1.1 has no password without a user name [MQTT-3.1.2-22]
    return Connect(
        client_id=draw(texts),
        protocol_level=level,
        protocol_name="MQIsdp" if level == 3 else "MQTT",
        clean_start=draw(st.booleans()),
        keep_alive=draw(uint16),
        username=username,
        password=password,
        will=will,
        properties=draw(_props(level, PacketType.CONNECT)),
    )


@st.composite
def publishes(draw: st.DrawFn, level: int) -> Publish:
    """PUBLISH at ``level`` with consistent QoS, packet identifier and DUP."""
    qos = draw(st.integers(0, 2))
    return Publish(
        topic=draw(topic_names),
        payload=draw(st.binary(max_size=300)),
        qos=qos,
        retain=draw(st.booleans()),
        dup=draw(st.booleans()) if qos else False,
        packet_id=draw(packet_ids) if qos else None,
        properties=draw(_props(level, PacketType.PUBLISH)),
    )


@st.composite
def subscribes(draw: st.DrawFn, level: int) -> Subscribe:
    """SUBSCRIBE at ``level``; 5.0 subscription options only at 5.0."""
    v5 = level == PROTOCOL_V5
    requests = [
        SubscriptionRequest(
            draw(topic_filters),
            draw(st.integers(0, 2)),
            draw(st.booleans()) if v5 else False,
            draw(st.booleans()) if v5 else False,
            draw(st.integers(0, 2)) if v5 else 0,
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    return Subscribe(draw(packet_ids), requests, draw(_props(level, PacketType.SUBSCRIBE)))


def packets(level: int) -> st.SearchStrategy[Packet]:
    """Any control packet that exists at ``level``."""
    v5 = level == PROTOCOL_V5
    acks = [
        st.builds(cls, packet_ids, _code(level), _props(level, ptype))
        for cls, ptype in (
            (Puback, PacketType.PUBACK),
            (Pubrec, PacketType.PUBREC),
            (Pubrel, PacketType.PUBREL),
            (Pubcomp, PacketType.PUBCOMP),
        )
    ]
    options: list[st.SearchStrategy[Any]] = [
        publishes(level),
        st.builds(Connack, st.booleans(), byte, _props(level, PacketType.CONNACK)),
        *acks,
        subscribes(level),
        st.builds(Suback, packet_ids, st.lists(byte, min_size=1, max_size=4), _props(level, PacketType.SUBACK)),
        st.builds(
            Unsubscribe,
            packet_ids,
            st.lists(topic_filters, min_size=1, max_size=4),
            _props(level, PacketType.UNSUBSCRIBE),
        ),
        st.builds(
            Unsuback,
            packet_ids,
            st.lists(byte, min_size=1, max_size=4) if v5 else st.just([]),
            _props(level, PacketType.UNSUBACK),
        ),
        st.builds(Pingreq),
        st.builds(Pingresp),
        st.builds(Disconnect, _code(level), _props(level, PacketType.DISCONNECT)),
    ]
    if v5:
        options.append(st.builds(Auth, byte, _props(level, PacketType.AUTH)))
    return st.one_of(options)
