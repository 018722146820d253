"""Byte-exact encodings, checked against examples worked out by hand from the spec and captured from clients."""

from __future__ import annotations

import pytest

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
    Publish,
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

CASES: list[tuple[str, Packet, int, str]] = [
    # A paho-mqtt 3.1.1 CONNECT: client id "test", clean session, keep alive 60.
    ("connect-v311", Connect("test", keep_alive=60), 4, "10 10 0004 4d515454 04 02 003c 0004 74657374"),
    (
        "connect-v311-will-auth",
        Connect("c", keep_alive=10, username="u", password=b"p", will=Will("w", b"x", 1, True)),
        4,
        "10 19 0004 4d515454 04 ee 000a 0001 63 0001 77 0001 78 0001 75 0001 70",
    ),
    ("connect-v31", Connect("c", 3, "MQIsdp", keep_alive=60), 4, "10 0f 0006 4d5149736470 03 02 003c 0001 63"),
    # The spec's CONNECT variable header example (3.1.2.12), session expiry interval 10, with other flags.
    (
        "connect-v5",
        Connect("", PROTOCOL_V5, keep_alive=10, properties=Properties(session_expiry_interval=10)),
        5,
        "10 12 0004 4d515454 05 02 000a 05 11 0000000a 0000",
    ),
    # The whole variable header of that example (flags 0xCE: user name, password, will QoS 1, will, clean start).
    (
        "connect-v5-spec-example",
        Connect(
            "c",
            PROTOCOL_V5,
            keep_alive=10,
            username="u",
            password=b"p",
            will=Will("w", b"x", 1),
            properties=Properties(session_expiry_interval=10),
        ),
        5,
        "10 20 0004 4d515454 05 ce 000a 05 11 0000000a 0001 63 00 0001 77 0001 78 0001 75 0001 70",
    ),
    ("connack-v311", Connack(True, 0), 4, "20 02 01 00"),
    ("connack-v5", Connack(False, 0x86), 5, "20 03 00 86 00"),
    ("publish-qos0", Publish("a/b", b"hi"), 4, "30 07 0003 612f62 6869"),
    ("publish-qos1-dup-retain", Publish("a/b", b"hi", 1, True, True, 10), 4, "3b 09 0003 612f62 000a 6869"),
    ("publish-qos2-v5", Publish("a", b"", 2, packet_id=1), 5, "34 06 0001 61 0001 00"),
    (
        "publish-v5-props",
        Publish("a", b"z", properties=Properties(payload_format_indicator=1, topic_alias=2)),
        5,
        "30 0a 0001 61 05 01 01 23 0002 7a",
    ),
    ("puback-v311", Puback(7, 0x80), 4, "40 02 0007"),
    ("puback-v5-success", Puback(7), 5, "40 02 0007"),
    ("puback-v5-code", Puback(7, 0x10), 5, "40 03 0007 10"),
    ("puback-v5-props", Puback(7, 0, Properties(reason_string="r")), 5, "40 08 0007 00 04 1f 0001 72"),
    ("pubrel", Pubrel(1), 4, "62 02 0001"),
    ("subscribe-v311", Subscribe(1, [SubscriptionRequest("a/b", 1)]), 4, "82 08 0001 0003 612f62 01"),
    (
        "subscribe-v5-options",
        Subscribe(2, [SubscriptionRequest("a", 1, True, True, 2)], Properties(subscription_identifiers=[200])),
        5,
        "82 0a 0002 03 0b c801 0001 61 2d",
    ),
    ("suback", Suback(1, [1, 0x80]), 4, "90 04 0001 01 80"),
    ("unsubscribe", Unsubscribe(3, ["a"]), 4, "a2 05 0003 0001 61"),
    ("unsuback-v311", Unsuback(3, [0x11]), 4, "b0 02 0003"),
    ("unsuback-v5", Unsuback(3, [0x11]), 5, "b0 04 0003 00 11"),
    ("pingreq", Pingreq(), 4, "c0 00"),
    ("pingresp", Pingresp(), 5, "d0 00"),
    ("disconnect-v311", Disconnect(0x8E), 4, "e0 00"),
    ("disconnect-v5-normal", Disconnect(), 5, "e0 00"),
    ("disconnect-v5-code", Disconnect(0x8E), 5, "e0 01 8e"),
    ("disconnect-v5-props", Disconnect(0x8B, Properties(reason_string="bye")), 5, "e0 08 8b 06 1f 0003 627965"),
    ("auth-success", Auth(), 5, "f0 00"),
    ("auth-continue", Auth(0x18, Properties(authentication_method="M")), 5, "f0 06 18 04 15 0001 4d"),
]


@pytest.mark.parametrize(("packet", "level", "wire"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_encodes_to_exact_bytes(packet: Packet, level: int, wire: str) -> None:
    assert encode(packet, level).hex() == wire.replace(" ", "")


@pytest.mark.parametrize(("packet", "level", "wire"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decodes_exact_bytes(packet: Packet, level: int, wire: str) -> None:
    decoded = PacketReader(protocol_level=level).feed(bytes.fromhex(wire))
    assert len(decoded) == 1
    if level == PROTOCOL_V311:
        assert encode(decoded[0], level) == bytes.fromhex(wire)
    else:
        assert decoded[0] == packet


def test_puback_v5_reason_without_property_length_is_accepted() -> None:
    # [MQTT-3.4.2.1]: the property length may be left out when the remaining length is 3.
    assert PacketReader(protocol_level=5).feed(bytes.fromhex("40 03 0007 10")) == [Puback(7, 0x10)]


def test_publish_to_several_subscribers_from_one_topic_encoding() -> None:
    topic = b"room/1/temp"
    first = PacketReader().feed(encode(Publish("room/1/temp", b"21"), PROTOCOL_V311))

    wires = [encode_publish(topic, b"21", 0, False, False, None, None, level) for level in (4, 5)]
    assert PacketReader(protocol_level=4).feed(wires[0]) == first
    assert PacketReader(protocol_level=5).feed(wires[1]) == first
