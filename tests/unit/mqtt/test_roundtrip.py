"""Encode/decode round trips of every packet type at 3.1.1 and 5.0, explicit and property-based."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtthub.mqtt import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
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
    encode,
    encode_publish,
)
from mqtthub.mqtt.primitives import encode_varint
from tests.unit.mqtt.strategies import connects, packets, publishes

LEVELS = [PROTOCOL_V311, PROTOCOL_V5]


def roundtrip(packet: Packet, level: int) -> Packet:
    """Encode at ``level`` and decode with a reader at ``level``; exactly one packet must come out."""
    decoded = PacketReader(protocol_level=level).feed(encode(packet, level))
    assert len(decoded) == 1
    return decoded[0]


V311_PACKETS: list[Packet] = [
    Connect("client-1", keep_alive=30, username="user", password=b"secret", will=Will("w/t", b"bye", 1, True)),
    Connect("", clean_start=False, keep_alive=0),
    Connack(session_present=True, reason_code=5),
    Publish("a/b", b"payload"),
    Publish("a/b", b"", qos=1, retain=True, dup=True, packet_id=1),
    Publish("\u00e9t\u00e9/\U0001f600", b"x" * 300, qos=2, packet_id=0xFFFF),
    Puback(7),
    Pubrec(8),
    Pubrel(9),
    Pubcomp(10),
    Subscribe(11, [SubscriptionRequest("a/+", 1), SubscriptionRequest("#", 2)]),
    Suback(11, [1, 2, 0x80]),
    Unsubscribe(12, ["a/+", "#"]),
    Unsuback(12),
    Pingreq(),
    Pingresp(),
    Disconnect(),
]

FULL = Properties(user_properties=[("k", "v"), ("k", "v2")], reason_string="why")

V5_PACKETS: list[Packet] = [
    Connect(
        "client-5",
        protocol_level=PROTOCOL_V5,
        password=b"no-user-is-fine-in-5",
        will=Will("w", b"", 2, False, Properties(will_delay_interval=5, content_type="text/plain")),
        properties=Properties(session_expiry_interval=3600, receive_maximum=10, authentication_method="SCRAM"),
    ),
    Connack(False, 0x87, Properties(reason_string="no", maximum_qos=1, assigned_client_identifier="gen-1")),
    Publish("a", b"p", 1, packet_id=5, properties=Properties(topic_alias=3, subscription_identifiers=[1, 2**28 - 1])),
    Publish("", b"aliased", properties=Properties(topic_alias=1)),
    Puback(1, 0x10),
    Puback(1, 0x80, FULL),
    Pubrec(2, 0, Properties(reason_string="ok")),
    Pubrel(3, 0x92),
    Pubcomp(4),
    Subscribe(
        5,
        [SubscriptionRequest("a/#", 2, no_local=True, retain_as_published=True, retain_handling=2)],
        Properties(subscription_identifiers=[42]),
    ),
    Suback(5, [0, 1, 2, 0x8F], Properties(reason_string="partly")),
    Unsubscribe(6, ["x"], Properties(user_properties=[("a", "b")])),
    Unsuback(6, [0, 0x11]),
    Disconnect(0x8E),
    Disconnect(0, Properties(session_expiry_interval=0, server_reference="elsewhere")),
    Auth(0x18, Properties(authentication_method="SCRAM", authentication_data=b"\x00\x01")),
    Auth(),
]


@pytest.mark.parametrize("packet", V311_PACKETS, ids=lambda p: type(p).__name__)
def test_v311_round_trip(packet: Packet) -> None:
    assert roundtrip(packet, PROTOCOL_V311) == packet


@pytest.mark.parametrize("packet", V5_PACKETS, ids=lambda p: type(p).__name__)
def test_v5_round_trip(packet: Packet) -> None:
    assert roundtrip(packet, PROTOCOL_V5) == packet


def test_mqtt31_connect_round_trip() -> None:
    packet = Connect("legacy", protocol_level=3, protocol_name="MQIsdp", username="u")
    assert roundtrip(packet, 4) == packet


def test_v311_drops_what_it_cannot_carry() -> None:
    props = Properties(reason_string="dropped")
    assert roundtrip(Puback(1, 0x80, props), PROTOCOL_V311) == Puback(1)
    assert roundtrip(Disconnect(0x8E, props), PROTOCOL_V311) == Disconnect()
    assert roundtrip(Unsuback(2, [0x11]), PROTOCOL_V311) == Unsuback(2)
    sub = Subscribe(3, [SubscriptionRequest("t", 1, no_local=True, retain_handling=1)])
    assert roundtrip(sub, PROTOCOL_V311) == Subscribe(3, [SubscriptionRequest("t", 1)])
    assert roundtrip(Publish("t", b"", properties=props), PROTOCOL_V311) == Publish("t")


def test_empty_properties_decode_as_none() -> None:
    assert roundtrip(Publish("t", b"x", properties=Properties()), PROTOCOL_V5) == Publish("t", b"x")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_encode_publish_matches_encode(level: int, qos: int) -> None:
    packet_id = 77 if qos else None
    props = Properties(message_expiry_interval=9) if level == PROTOCOL_V5 else None
    expected = encode(Publish("s/t", b"body", qos, True, bool(qos), packet_id, props), level)
    for topic in ("s/t", b"s/t"):
        assert encode_publish(topic, b"body", qos, True, bool(qos), packet_id, props, level) == expected


def test_large_publish_uses_long_remaining_length() -> None:
    packet = Publish("big", b"\xab" * (2_097_152 - 7), 1, packet_id=9)
    wire = encode(packet, PROTOCOL_V311)
    assert wire[1:5] == bytes((0x80, 0x80, 0x80, 0x01))  # 2 097 152, from the spec's table in 1.5.5
    assert roundtrip(packet, PROTOCOL_V311) == packet


@settings(max_examples=200)
@given(st.sampled_from(LEVELS).flatmap(lambda level: st.tuples(st.just(level), packets(level))))
def test_any_packet_round_trips(case: tuple[int, Packet]) -> None:
    level, packet = case
    assert roundtrip(packet, level) == packet


@settings(max_examples=100)
@given(st.sampled_from([3, 4, 5]).flatmap(connects))
def test_any_connect_round_trips(packet: Connect) -> None:
    reader = PacketReader()
    assert reader.feed(encode(packet, PROTOCOL_V311)) == [packet]
    assert reader.protocol_level == packet.protocol_level


@settings(max_examples=100)
@given(st.sampled_from(LEVELS).flatmap(lambda level: st.tuples(st.just(level), publishes(level))))
def test_any_publish_fast_path_round_trips(case: tuple[int, Publish]) -> None:
    level, p = case
    wire = encode_publish(p.topic.encode(), p.payload, p.qos, p.retain, p.dup, p.packet_id, p.properties, level)
    assert PacketReader(protocol_level=level).feed(wire) == [p]


@pytest.mark.parametrize(
    "packet",
    [
        Publish("t" * 65536),
        Publish("t", b"", 1),
        Publish("t", dup=True),
        Publish("t", packet_id=1),
        Subscribe(1, [SubscriptionRequest("f" * 65536)]),
        Connect("c", password=b"p" * 65536),
        Connect("c", keep_alive=65536),
        Puback(65536),
    ],
    ids=["topic", "qos1-no-id", "qos0-dup", "qos0-id", "filter", "password", "keep-alive", "packet-id"],
)
def test_encode_refuses_what_the_wire_cannot_carry(packet: Packet) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the field
        encode(packet, PROTOCOL_V311)


@pytest.mark.parametrize(
    "props",
    [
        Properties(topic_alias=65536),
        Properties(message_expiry_interval=2**32),
        Properties(payload_format_indicator=256),
    ],
    ids=["uint16", "uint32", "byte"],
)
def test_property_out_of_range(props: Properties) -> None:
    with pytest.raises(ValueError, match="property out of range"):
        encode(Publish("t", properties=props), PROTOCOL_V5)


def test_remaining_length_has_a_ceiling() -> None:
    assert encode_varint(268_435_455) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError, match="variable byte integer"):
        encode_varint(268_435_456)


def test_auth_does_not_exist_in_v311() -> None:
    with pytest.raises(ValueError, match="AUTH"):
        encode(Auth(), PROTOCOL_V311)
